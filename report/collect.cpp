#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "core/strings.h"
#include "policy/engine.h"
#include "report/report.h"
#include "report/text_util.h"
#include "storage/chain.h"
#include "storage/pipeline.h"
#include "storage/sqlite.h"

namespace tw::report {
namespace {

using storage::Db;

// Binds a period and an optional cluster the same way in every query: ?1 from, ?2 to, ?3 cluster.
struct Period {
  std::string from, to, cluster;
};

Result<storage::Stmt> query(Db& db, const std::string& sql, const Period& p) {
  auto st = db.prepare(sql);
  if (!st.ok()) return st.take_error();
  st->bind(1, p.from).bind(2, p.to).bind(3, p.cluster);
  return st;
}

// Runs `sql` (bound as above) and calls row() for each result row.
template <class F>
Status each_row(Db& db, const std::string& sql, const Period& p, F&& row) {
  auto st = query(db, sql, p);
  if (!st.ok()) return st.take_error();
  while (true) {
    auto r = st->step();
    if (!r.ok()) return r.take_error();
    if (!*r) return ok_status();
    row(*st);
  }
}

// The times in the first column of `sql` (bound as above), in order; unreadable ones skipped.
Status times(Db& db, const std::string& sql, const Period& p, std::vector<Timestamp>& out) {
  return each_row(db, sql, p, [&](storage::Stmt& s) {
    if (auto t = parse_rfc3339(s.view(0)); t.ok()) out.push_back(*t);
  });
}

const std::set<std::string>& remediating() {
  static const std::set<std::string> r{"compliant", "revoked", "restricted", "removed"};
  return r;
}

Status coverage(Db& db, const Request& req, const Context& ctx, const std::string& cluster,
                ClusterCoverage& cov) {
  cov.cluster = cluster;
  Period p{format_timestamp(req.from), format_timestamp(req.to), cluster};
  TW_RETURN_IF_ERROR(
      each_row(db,
               "SELECT outcome, count(*) FROM poll_runs WHERE cluster = ?3 AND finished_at >= ?1 "
               "AND finished_at <= ?2 GROUP BY outcome",
               p, [&](storage::Stmt& s) {
                 const std::string o = s.text(0);
                 const std::int64_t n = s.int64(1);
                 if (o == "ok")
                   cov.polls_ok = n;
                 else if (o == "failed")
                   cov.polls_failed = n;
                 else if (o == "suspect")
                   cov.polls_suspect = n;
               }));
  TW_RETURN_IF_ERROR(each_row(
      db, "SELECT min(started_at) FROM poll_runs WHERE cluster = ?3", p,
      [&](storage::Stmt& s) { cov.monitored_since = parse_optional_timestamp(s.opt_text(0)); }));
  // The poll interval: configured, else the median spacing of the period's polls.
  auto cfg = ctx.clusters.find(cluster);
  if (cfg != ctx.clusters.end() && cfg->second.poll_interval.count() > 0) {
    cov.interval = cfg->second.poll_interval;
    cov.interval_source = "config";
  } else {
    std::vector<Timestamp> starts;
    TW_RETURN_IF_ERROR(
        times(db,
              "SELECT started_at FROM poll_runs WHERE cluster = ?3 AND started_at >= ?1 AND "
              "started_at <= ?2 ORDER BY started_at",
              p, starts));
    std::vector<Duration> deltas;
    for (std::size_t i = 1; i < starts.size(); ++i) deltas.push_back(starts[i] - starts[i - 1]);
    if (!deltas.empty()) {
      std::nth_element(deltas.begin(),
                       deltas.begin() + static_cast<std::ptrdiff_t>(deltas.size() / 2),
                       deltas.end());
      cov.interval = std::max<Duration>(deltas[deltas.size() / 2], std::chrono::seconds(1));
      cov.interval_source = "observed";
    } else {
      cov.interval = std::chrono::minutes(1);
      cov.interval_source = "default";
    }
  }
  // Gaps: spans of more than 3 intervals without a successful poll, within the monitored part
  // of the period (from the cluster's first poll, to the end or now if earlier).
  std::optional<Timestamp> anchor;
  TW_RETURN_IF_ERROR(
      each_row(db,
               "SELECT max(finished_at) FROM poll_runs WHERE cluster = ?3 AND outcome = 'ok' AND "
               "finished_at < ?1",
               p, [&](storage::Stmt& s) { anchor = parse_optional_timestamp(s.opt_text(0)); }));
  std::vector<Timestamp> oks;
  TW_RETURN_IF_ERROR(
      times(db,
            "SELECT finished_at FROM poll_runs WHERE cluster = ?3 AND outcome = 'ok' AND "
            "finished_at >= ?1 AND finished_at <= ?2 ORDER BY finished_at",
            p, oks));
  cov.last_successful_poll = oks.empty() ? anchor : std::optional<Timestamp>(oks.back());
  if (!cov.monitored_since || *cov.monitored_since > req.to)
    return ok_status();  // not monitored yet
  const Timestamp start = std::max(req.from, *cov.monitored_since);
  const Timestamp end = std::min(req.to, std::max(req.generated_at, start));
  const Duration limit = cov.interval * 3;
  // The last successful poll before the period starts an outage that may reach into it.
  Timestamp prev = anchor.value_or(start);
  auto gap = [&](Timestamp a, Timestamp b) {
    if (b - a > limit) {
      Gap g{std::max(a, start), std::min(b, end)};
      if (g.to > g.from) {
        cov.gap_total += g.to - g.from;
        cov.gaps.push_back(g);
      }
    }
  };
  for (Timestamp t : oks) {
    gap(prev, t);
    prev = t;
  }
  gap(prev, end);
  return ok_status();
}

// The inventory at `at` and the status series, from one replay of the token events.
Status inventory_and_series(Db& db, const Request& req, ReportData& data,
                            const Progress& progress) {
  std::vector<Timestamp> samples;
  const std::size_t n = std::max<std::size_t>(req.samples, 2);
  for (std::size_t i = 0; i < n; ++i) {
    samples.push_back(req.from + (req.to - req.from) * static_cast<Duration::rep>(i) /
                                     static_cast<Duration::rep>(n - 1));
  }
  data.series.resize(samples.size());
  auto replay = std::make_shared<storage::InventoryReplay>();
  if (progress) progress("replaying the token history", 0, 0);
  std::size_t k = 0;
  TW_RETURN_IF_ERROR(replay->run(db, req.to, req.cluster, samples, [&](Timestamp t) {
    if (k < samples.size() && samples[k] == t) {
      data.series[k].at = t;
      data.series[k].tokens = replay->counts(t);
      ++k;
    }
  }));
  data.period_end = replay;
  // An inventory at another instant than the end needs its own replay.
  if (req.at != req.to) {
    auto at_replay = std::make_shared<storage::InventoryReplay>();
    TW_RETURN_IF_ERROR(at_replay->run(db, req.at, req.cluster, {}, {}));
    replay = std::move(at_replay);
  }
  InventorySection& inv = data.inventory;
  inv.at = req.at;
  inv.replay = replay;
  replay->summarize(req.at, [&](const storage::InventoryReplay::Summary& t) {
    ++inv.token_count;
    ++inv.by_status[static_cast<std::size_t>(t.status)];
    if (t.status != TokenStatus::kActive) return;
    bool all = false, writes = false;
    for (const auto& perm : *t.permissions) {
      all = all || perm.resource == "*";
      writes = writes || perm.action == "write";
    }
    inv.never_expire += t.expires ? 0 : 1;
    inv.all_databases += all ? 1 : 0;
    inv.writes += writes ? 1 : 0;
  });
  auto anomalies = storage::recorded_anomalies(db, req.cluster, req.at);
  if (!anomalies.ok()) return anomalies.take_error();
  inv.anomalies = std::move(*anomalies);
  return ok_status();
}

Status open_violation_series(Db& db, const Request& req, ReportData& data) {
  Period p{format_timestamp(req.from), format_timestamp(req.to), req.cluster};
  std::vector<std::string> opened, resolved;
  TW_RETURN_IF_ERROR(
      each_row(db,
               "SELECT opened_at, resolved_at FROM violation_records WHERE opened_at <= ?2 AND "
               "(resolved_at IS NULL OR resolved_at >= ?1) AND (?3 = '' OR cluster = ?3)",
               p, [&](storage::Stmt& s) {
                 opened.push_back(s.text(0));
                 if (auto r = s.opt_text(1)) resolved.push_back(*r);
               }));
  std::sort(opened.begin(), opened.end());
  std::sort(resolved.begin(), resolved.end());
  for (auto& point : data.series) {
    const std::string t = format_timestamp(point.at);
    auto o = std::upper_bound(opened.begin(), opened.end(), t) - opened.begin();
    auto r = std::upper_bound(resolved.begin(), resolved.end(), t) - resolved.begin();
    point.open_violations = o - r;
  }
  return ok_status();
}

Status compliance(Db& db, const Request& req, const Context& ctx, ReportData& data) {
  Period p{format_timestamp(req.from), format_timestamp(req.to), req.cluster};
  std::map<std::string, PolicyCompliance> by_name;
  std::vector<std::string> order;
  auto get = [&](const std::string& name) -> PolicyCompliance& {
    auto [it, created] = by_name.try_emplace(name);
    if (created) {
      it->second.policy = name;
      order.push_back(name);
    }
    return it->second;
  };
  for (const auto& spec : ctx.policies) {
    PolicyCompliance& pc = get(spec.name);
    pc.configured = true;
    pc.kind = std::string(policy::to_string(spec.kind));
    pc.severity = std::string(policy::to_string(spec.severity));
    pc.action = std::string(policy::to_string(spec.action));
    pc.mode = spec.mode ? std::string(policy::to_string(*spec.mode)) : "inherit";
  }
  const std::string cl = " AND (?3 = '' OR cluster = ?3)";
  TW_RETURN_IF_ERROR(
      each_row(db,
               "SELECT policy, max(severity), max(action), count(*) FROM violation_records "
               "WHERE opened_at >= ?1 AND opened_at <= ?2" +
                   cl + " GROUP BY policy",
               p, [&](storage::Stmt& s) {
                 PolicyCompliance& pc = get(s.text(0));
                 if (!pc.configured) {
                   pc.severity = s.text(1);
                   pc.action = s.text(2);
                 }
                 pc.opened = s.int64(3);
               }));
  TW_RETURN_IF_ERROR(
      each_row(db,
               "SELECT policy, resolution, count(*) FROM violation_records WHERE resolved_at >= ?1 "
               "AND resolved_at <= ?2" +
                   cl + " GROUP BY policy, resolution",
               p, [&](storage::Stmt& s) {
                 PolicyCompliance& pc = get(s.text(0));
                 const std::int64_t n = s.int64(2);
                 pc.resolved += n;
                 pc.resolutions[s.opt_text(1).value_or("unknown")] += n;
               }));
  TW_RETURN_IF_ERROR(
      each_row(db,
               "SELECT policy, count(*) FROM violation_records WHERE opened_at <= ?2 AND "
               "(resolved_at IS NULL OR resolved_at > ?2)" +
                   cl + " GROUP BY policy",
               p, [&](storage::Stmt& s) { get(s.text(0)).open_at_end = s.int64(1); }));
  // Time to remediate: opened to resolved, for violations remediated in the period.
  std::map<std::string, std::vector<double>> ttr;
  TW_RETURN_IF_ERROR(
      each_row(db,
               "SELECT policy, opened_at, resolved_at, resolution FROM violation_records WHERE "
               "resolved_at >= ?1 AND resolved_at <= ?2" +
                   cl,
               p, [&](storage::Stmt& s) {
                 if (!remediating().contains(s.opt_text(3).value_or(""))) return;
                 auto o = parse_rfc3339(s.text(1));
                 auto r = parse_rfc3339(s.text(2));
                 if (o.ok() && r.ok()) ttr[s.text(0)].push_back(seconds(*r - *o));
               }));
  for (auto& [name, v] : ttr) {
    std::sort(v.begin(), v.end());
    TimeToRemediate& t = get(name).time_to_remediate;
    t.count = static_cast<std::int64_t>(v.size());
    t.max_seconds = v.back();
    const std::size_t m = v.size() / 2;
    t.median_seconds = v.size() % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
  }
  TW_RETURN_IF_ERROR(
      each_row(db,
               "SELECT event, json_extract(detail, '$.policy'), coalesce(json_extract(detail, "
               "'$.final'), 1), count(*) "
               "FROM audit_events WHERE recorded_at >= ?1 AND recorded_at <= ?2 AND event IN "
               "('action_planned', "
               "'action_succeeded', 'action_failed', 'action_skipped') AND json_valid(detail)" +
                   cl + " GROUP BY 1, 2, 3",
               p, [&](storage::Stmt& s) {
                 auto name = s.opt_text(1);
                 if (!name) return;
                 PolicyCompliance& pc = get(*name);
                 const std::string e = s.text(0);
                 const std::int64_t n = s.int64(3);
                 if (e == "action_planned")
                   pc.actions_planned += n;
                 else if (e == "action_succeeded")
                   pc.actions_succeeded += n;
                 else if (e == "action_skipped")
                   pc.actions_skipped += n;
                 else if (e == "action_failed" && s.int64(2) != 0)
                   pc.actions_failed += n;  // gave up
               }));
  TW_RETURN_IF_ERROR(each_row(db,
                              "SELECT recorded_at, cluster, detail FROM audit_events WHERE event = "
                              "'enforcement_halted' AND recorded_at >= ?1 AND recorded_at <= ?2" +
                                  cl + " ORDER BY seq",
                              p, [&](storage::Stmt& s) {
                                HaltEvent h;
                                h.at = parse_rfc3339(s.text(0)).value_or(req.from);
                                h.cluster = s.opt_text(1).value_or("");
                                auto d = nlohmann::json::parse(s.text(2), nullptr, false);
                                if (d.is_object()) {
                                  if (d.contains("planned") && d["planned"].is_number_integer()) {
                                    h.planned = d["planned"].get<std::int64_t>();
                                  }
                                  if (d.contains("policies") && d["policies"].is_object()) {
                                    for (const auto& [name, v] : d["policies"].items()) {
                                      if (v.is_number_integer())
                                        get(name).actions_halted += v.get<std::int64_t>();
                                    }
                                  }
                                }
                                data.halts.push_back(std::move(h));
                              }));
  // Awaiting approval at the end of the period (not now): planned for approval by then, and not
  // yet approved, run or settled by then.
  TW_RETURN_IF_ERROR(each_row(
      db,
      "SELECT json_extract(a.detail, '$.policy'), count(*) FROM audit_events a WHERE a.event = "
      "'action_planned' "
      "AND json_valid(a.detail) AND json_extract(a.detail, '$.awaiting_approval') = 1 AND "
      "a.recorded_at <= ?2 AND "
      "(?3 = '' OR a.cluster = ?3) AND NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.token_id = "
      "a.token_id AND "
      "e.event IN ('action_approved', 'action_succeeded', 'action_failed', 'action_skipped') AND "
      "e.recorded_at <= ?2 AND json_valid(e.detail) AND json_extract(e.detail, '$.action_id') = "
      "json_extract(a.detail, '$.action_id')) "
      "GROUP BY 1",
      p, [&](storage::Stmt& s) {
        if (auto name = s.opt_text(0)) get(*name).awaiting_approval_at_end = s.int64(1);
      }));
  // Exemptions used: tokens whose violation an exemption suppressed, first recorded up to the
  // end, by exemptions still in force at the start of the period.
  std::map<std::string, std::int64_t> used_by_key;
  TW_RETURN_IF_ERROR(each_row(
      db,
      "SELECT json_extract(detail, '$.policy'), json_extract(detail, '$.exemption'), "
      "count(DISTINCT "
      "coalesce(cluster, '') || char(0) || coalesce(token_id, '')) FROM audit_events WHERE event = "
      "'exemption_applied' AND recorded_at <= ?2 AND json_valid(detail) AND "
      "coalesce(CASE WHEN json_valid(detail) THEN json_extract(detail, '$.expires') END, '9') > "
      "?1" +
          cl + " GROUP BY 1, 2",
      p, [&](storage::Stmt& s) {
        auto name = s.opt_text(0);
        if (name) get(*name).exemptions_used += s.int64(2);
        if (auto key = s.opt_text(1)) used_by_key[*key] += s.int64(2);
      }));
  // Configured exemptions in force at some point of the period, per policy ("*": every policy).
  if (!ctx.exemptions.empty()) {
    auto set = policy::PolicySet::compile(ctx.policies, ctx.exemptions);
    for (std::size_t i = 0; i < ctx.exemptions.size(); ++i) {
      const auto& e = ctx.exemptions[i];
      if (!req.cluster.empty() && !e.cluster.empty() && e.cluster != req.cluster) continue;
      ExemptionEntry x{e.policy, e.token_id, e.description, e.cluster, e.reason, e.expires, 0};
      if (set.ok()) {
        auto it = used_by_key.find((*set)->exemption_key(i));
        if (it != used_by_key.end()) x.used = it->second;
      }
      data.exemptions.push_back(x);
      if (e.expires <= req.from) continue;
      if (e.policy == "*") {
        for (auto& [name, pc] : by_name) {
          if (pc.configured) ++pc.exemptions_in_force;
        }
      } else {
        ++get(e.policy).exemptions_in_force;
      }
    }
  }
  // Tokens judged: active tokens in each policy's scope at the inventory's instant, evaluated
  // one cluster at a time (the visit is ordered by cluster).
  if (ctx.from_config && !ctx.policies.empty() && data.inventory.replay) {
    auto set = policy::PolicySet::compile(ctx.policies, {});
    if (set.ok()) {
      std::vector<std::int64_t> judged((*set)->specs().size(), 0);
      std::string current;
      std::vector<Token> tokens;
      std::vector<Timestamp> first_seen;
      auto flush = [&] {
        if (tokens.empty()) return;
        std::vector<policy::Subject> subjects(tokens.size());
        for (std::size_t i = 0; i < tokens.size(); ++i) {
          subjects[i].token = &tokens[i];
          subjects[i].first_seen = first_seen[i];
        }
        policy::ClusterInfo info{current, {}};
        if (auto c = ctx.clusters.find(current); c != ctx.clusters.end())
          info.labels = c->second.labels;
        auto ev = policy::evaluate(**set, info, subjects, data.inventory.at);
        for (std::size_t i = 0; i < ev.judged_by_policy.size(); ++i) {
          judged[i] += static_cast<std::int64_t>(ev.judged_by_policy[i]);
        }
        tokens.clear();
        first_seen.clear();
      };
      data.inventory.replay->for_each(
          data.inventory.at, TokenStatus::kActive, [&](const storage::InventoryRow& r) {
            if (r.cluster != current) {
              flush();
              current = r.cluster;
            }
            tokens.push_back(r.token);
            first_seen.push_back(parse_rfc3339(r.first_seen).value_or(data.inventory.at));
            return true;
          });
      flush();
      for (std::size_t i = 0; i < judged.size(); ++i)
        get((*set)->specs()[i].name).tokens_judged = judged[i];
    }
  }
  // Configured policies first (in configuration order), then the others by name.
  std::stable_sort(order.begin(), order.end(), [&](const std::string& a, const std::string& b) {
    const bool ca = by_name[a].configured, cb = by_name[b].configured;
    if (ca != cb) return ca;
    if (!ca) return a < b;
    return false;
  });
  for (const auto& name : order) data.policies.push_back(std::move(by_name[name]));
  return ok_status();
}

Status change_counts(Db& db, const Request& req, ReportData& data) {
  Period p{format_timestamp(req.from), format_timestamp(req.to), req.cluster};
  return each_row(
      db,
      "SELECT event, count(*) FROM audit_events WHERE recorded_at >= ?1 AND recorded_at <= ?2 AND "
      "event IN ('token_discovered', 'token_created', 'token_updated', 'token_revoked', "
      "'token_expired', 'token_removed', 'token_reappeared') AND (?3 = '' OR cluster = ?3) GROUP "
      "BY event",
      p, [&](storage::Stmt& s) {
        const std::string e = s.text(0);
        const std::int64_t n = s.int64(1);
        ChangeCounts& c = data.changes;
        if (e == "token_discovered")
          c.discovered = n;
        else if (e == "token_created")
          c.created = n;
        else if (e == "token_updated")
          c.updated = n;
        else if (e == "token_revoked")
          c.revoked = n;
        else if (e == "token_expired")
          c.expired = n;
        else if (e == "token_removed")
          c.removed = n;
        else if (e == "token_reappeared")
          c.reappeared = n;
      });
}

struct VerifyProgress {
  const Progress* progress;
  std::int64_t total;
};

void verify_progress(std::int64_t done, void* arg) {
  auto* vp = static_cast<VerifyProgress*>(arg);
  if (*vp->progress) (*vp->progress)("verifying the hash chain", done, vp->total);
}

// A change's detail as the report shows it: for token_updated its `before` and `after` objects,
// for token_created the whole detail as `after`; each exactly as recorded. A detail that is not
// valid JSON (a tampered row) shows nothing.
void split_detail(simdjson::ondemand::parser& parser, std::string& buffer, std::string_view detail,
                  bool updated, std::string& before, std::string& after) {
  buffer.assign(detail);
  buffer.append(simdjson::SIMDJSON_PADDING, '\0');
  simdjson::ondemand::document doc;
  simdjson::ondemand::object obj;
  if (parser.iterate(buffer.data(), detail.size(), buffer.size()).get(doc) ||
      doc.get_object().get(obj))
    return;
  if (!updated) {
    std::string_view raw;
    if (!obj.raw_json().get(raw)) after.assign(raw);
    return;
  }
  for (auto field : obj) {
    std::string_view key, raw;
    simdjson::ondemand::value v;
    simdjson::ondemand::object o;
    if (field.unescaped_key().get(key) || field.value().get(v)) break;
    if (key != "before" && key != "after") continue;
    if (v.get_object().get(o) || o.raw_json().get(raw)) break;
    (key == "before" ? before : after).assign(raw);
  }
}

}  // namespace

std::optional<Format> parse_format(std::string_view s) {
  if (s == "html") return Format::kHtml;
  if (s == "md" || s == "markdown") return Format::kMarkdown;
  if (s == "csv") return Format::kCsv;
  if (s == "json") return Format::kJson;
  return std::nullopt;
}

InventoryEntry make_entry(const storage::InventoryRow& row) {
  InventoryEntry e{row};
  e.never_expires = row.status == TokenStatus::kActive && !row.token.expires_at;
  for (const auto& perm : row.token.permissions) {
    if (perm.resource == "*") e.all_databases = true;
    if (perm.action == "write") e.writes = true;
  }
  return e;
}

void InventorySection::for_each_token(
    const std::function<bool(const InventoryEntry&)>& visit) const {
  if (!replay) return;
  replay->for_each(at, std::nullopt,
                   [&](const storage::InventoryRow& row) { return visit(make_entry(row)); });
}

std::string_view status_name(std::size_t index) {
  static constexpr std::string_view names[] = {"active", "expired", "revoked", "removed"};
  return index < 4 ? names[index] : "unknown";
}

Result<ReportData> collect(Db& db, const Request& request, const Context& context,
                           const Progress& progress) {
  if (request.to < request.from) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the period ends (--to " + format_timestamp(request.to) +
                          ") before it starts (--from " + format_timestamp(request.from) + ")");
  }
  ReportData data;
  data.request = request;
  data.context = context;
  std::set<std::string> clusters;
  {
    Period p{"", "", ""};
    TW_RETURN_IF_ERROR(each_row(db, "SELECT DISTINCT cluster FROM poll_runs", p,
                                [&](storage::Stmt& s) { clusters.insert(s.text(0)); }));
    for (const auto& [name, settings] : context.clusters) clusters.insert(name);
  }
  if (!request.cluster.empty()) {
    if (!clusters.contains(request.cluster)) {
      return make_error(ErrorCode::kInvalidArgument, "no cluster named \"" +
                                                         printable(request.cluster, 64) +
                                                         "\" in the database or configuration");
    }
    clusters = {request.cluster};
  }
  data.clusters.assign(clusters.begin(), clusters.end());
  // The chain check reads the whole log; it runs on a second read-only connection (the other
  // core) while the rest is collected here. Both must have read the same snapshot — the same
  // chain head — or the check is redone on this connection.
  std::optional<std::int64_t> snapshot_head;
  TW_RETURN_IF_ERROR(each_row(db, "SELECT seq FROM chain_head WHERE id = 1", Period{"", "", ""},
                              [&](storage::Stmt& s) { snapshot_head = s.int64(0); }));
  std::future<Result<storage::VerifyReport>> parallel;
  if (!db.path().empty() && db.path() != ":memory:") {
    parallel =
        std::async(std::launch::async, [path = db.path()]() -> Result<storage::VerifyReport> {
          auto other = Db::open(path, Db::Mode::kReadOnly);
          if (!other.ok()) return other.take_error();
          TW_RETURN_IF_ERROR((*other)->exec("BEGIN"));
          return storage::verify_chain(**other, nullptr, nullptr);
        });
  }
  if (progress) progress("reading polls", 0, 0);
  for (const auto& c : data.clusters) {
    ClusterCoverage cov;
    TW_RETURN_IF_ERROR(coverage(db, request, context, c, cov));
    data.coverage.push_back(std::move(cov));
  }
  TW_RETURN_IF_ERROR(inventory_and_series(db, request, data, progress));
  if (progress) progress("reading violations and actions", 0, 0);
  TW_RETURN_IF_ERROR(open_violation_series(db, request, data));
  TW_RETURN_IF_ERROR(change_counts(db, request, data));
  TW_RETURN_IF_ERROR(compliance(db, request, context, data));
  data.pending = std::make_shared<PendingIntegrity>();
  data.pending->parallel = std::move(parallel);
  data.pending->snapshot_head = snapshot_head;
  data.pending->progress = progress;
  if (!request.integrity_in_background) {
    auto g = integrity_of(db, data);
    if (!g.ok()) return g.take_error();
  }
  return data;
}

Result<Integrity> integrity_of(Db& db, const ReportData& data) {
  if (!data.pending) return data.integrity;
  PendingIntegrity& p = *data.pending;
  std::lock_guard lock(p.mu);
  if (p.result) return *p.result;
  std::optional<storage::VerifyReport> verified;
  if (p.parallel.valid()) {
    if (p.progress) p.progress("verifying the hash chain", 0, 0);
    auto v = p.parallel.get();
    const std::optional<std::int64_t> their_head =
        v.ok() && v->head_seq > 0 ? std::optional<std::int64_t>(v->head_seq) : std::nullopt;
    if (v.ok() && (!v->ok || their_head == p.snapshot_head)) verified = std::move(*v);
  }
  if (!verified) {
    // No second connection, or it saw another snapshot: check on this one.
    std::int64_t total = 0;
    TW_RETURN_IF_ERROR(each_row(db, "SELECT count(*) FROM audit_events", Period{"", "", ""},
                                [&](storage::Stmt& s) { total = s.int64(0); }));
    VerifyProgress vp{&p.progress, total};
    if (p.progress) p.progress("verifying the hash chain", 0, total);
    auto v = storage::verify_chain(db, &verify_progress, &vp);
    if (!v.ok()) return v.take_error();
    verified = std::move(*v);
  }
  const auto& v = *verified;
  p.result = Integrity{
      v.ok, v.rows, v.head_seq, v.head_hash, v.bad_seq, v.problem, v.append_only_triggers};
  data.integrity = *p.result;
  return *p.result;
}

Status for_each_change(Db& db, const ReportData& data,
                       const std::function<bool(const ChangeEvent&)>& visit) {
  const Request& req = data.request;
  Period p{format_timestamp(req.from), format_timestamp(req.to), req.cluster};
  // The seq range of the period (through the time index), then one pass over it in seq order;
  // the `+` keeps SQLite from reading the rows through an index and sorting them.
  std::int64_t lo = 0, hi = -1;
  TW_RETURN_IF_ERROR(
      each_row(db,
               "SELECT min(seq), max(seq) FROM audit_events WHERE recorded_at >= ?1 AND "
               "recorded_at <= ?2",
               p, [&](storage::Stmt& s) {
                 if (!s.is_null(0)) {
                   lo = s.int64(0);
                   hi = s.int64(1);
                 }
               }));
  auto st = query(
      db,
      "SELECT e.seq, e.recorded_at, e.cluster, e.token_id, e.event, e.detail "
      "FROM audit_events e "
      "WHERE e.seq >= ?4 AND e.seq <= ?5 AND +e.recorded_at >= ?1 AND +e.recorded_at <= ?2 AND "
      "+e.event IN ('token_created', 'token_updated', 'token_revoked', 'token_expired', "
      "'token_removed', 'token_reappeared') AND (?3 = '' OR +e.cluster = ?3) ORDER BY e.seq",
      p);
  if (!st.ok()) return st.take_error();
  st->bind(4, lo).bind(5, hi);
  simdjson::ondemand::parser parser;
  std::string buffer;
  ChangeEvent ev;
  // Read on a second thread while the changes are rendered here.
  return storage::pipelined_rows(*st, 6, [&](const std::string_view* f) {
    ev.seq = 0;
    std::from_chars(f[0].data(), f[0].data() + f[0].size(), ev.seq);
    ev.time.assign(f[1]);
    ev.cluster.assign(f[2]);
    ev.token_id.assign(f[3]);
    ev.event.assign(f[4]);
    ev.before.clear();
    ev.after.clear();
    if (ev.event == "token_created" || ev.event == "token_updated" ||
        ev.event == "token_reappeared") {
      split_detail(parser, buffer, f[5], ev.event != "token_created", ev.before, ev.after);
    }
    // The description at the end of the period (so a report over a past period does not change
    // when tokens change later); a creation's own is in `after`.
    const std::string* description =
        data.period_end ? data.period_end->description(ev.cluster, ev.token_id) : nullptr;
    ev.description = description != nullptr ? *description : std::string();
    return visit(ev);
  });
}

Status write_report(Db& db, const ReportData& data, Format format, const Sink& sink) {
  switch (format) {
    case Format::kJson:
      return render_json(db, data, sink);
    case Format::kCsv:
      return render_csv(db, data, sink);
    case Format::kMarkdown:
      return render_markdown(db, data, sink);
    case Format::kHtml:
      return render_html(db, data, sink);
  }
  return make_error(ErrorCode::kInvalidArgument, "unknown report format");
}

}  // namespace tw::report

#include <simdjson.h>

#include <algorithm>
#include <future>
#include <mutex>
#include <set>

#include "core/strings.h"
#include "policy/engine.h"
#include "report/owners.h"
#include "report/report.h"
#include "report/text_util.h"
#include "storage/chain.h"
#include "storage/read_txn.h"
#include "storage/report_queries.h"

namespace tw::report {
namespace {

using storage::ReadTxn;
using storage::ReportPeriod;

ReportPeriod period_of(const Request& req, const std::string& cluster) {
  return ReportPeriod{req.from, req.to, cluster, req.team, req.owner};
}

// Status counts as of `t` of the tokens the report covers.
std::array<std::int64_t, 4> covered_counts(const storage::InventoryReplay& replay,
                                           const InventorySection& inv, Timestamp t) {
  if (!inv.only) return replay.counts(t);
  std::array<std::int64_t, 4> out{};
  replay.summarize(t, [&](const storage::InventoryReplay::Summary& s) {
    if (inv.covers(s.cluster, s.token_id)) ++out[static_cast<std::size_t>(s.status)];
  });
  return out;
}

// The poll interval: configured, else the median spacing of the period's polls.
Status poll_interval(ReadTxn& txn, const Request& req, const Context& ctx, ClusterCoverage& cov) {
  auto cfg = ctx.clusters.find(cov.cluster);
  if (cfg != ctx.clusters.end() && cfg->second.poll_interval.count() > 0) {
    cov.interval = cfg->second.poll_interval;
    cov.interval_source = "config";
    return ok_status();
  }
  auto starts = storage::poll_starts(txn, period_of(req, cov.cluster));
  if (!starts.ok()) return starts.take_error();
  std::vector<Duration> deltas;
  for (std::size_t i = 1; i < starts->size(); ++i)
    deltas.push_back((*starts)[i] - (*starts)[i - 1]);
  if (!deltas.empty()) {
    std::nth_element(deltas.begin(),
                     deltas.begin() + static_cast<std::ptrdiff_t>(deltas.size() / 2), deltas.end());
    cov.interval = std::max<Duration>(deltas[deltas.size() / 2], std::chrono::seconds(1));
    cov.interval_source = "observed";
  } else {
    cov.interval = std::chrono::minutes(1);
    cov.interval_source = "default";
  }
  return ok_status();
}

// Gaps: spans of more than 3 intervals without a successful poll, within the monitored part
// of the period (from the cluster's first poll, to the end or now if earlier).
void find_gaps(const Request& req, const storage::PollCoverage& polls, ClusterCoverage& cov) {
  if (!cov.monitored_since || *cov.monitored_since > req.to) return;  // not monitored yet
  const Timestamp start = std::max(req.from, *cov.monitored_since);
  const Timestamp end = std::min(req.to, std::max(req.generated_at, start));
  const Duration limit = cov.interval * 3;
  // The last successful poll before the period starts an outage that may reach into it.
  Timestamp prev = polls.last_ok_before.value_or(start);
  auto gap = [&](Timestamp a, Timestamp b) {
    if (b - a > limit) {
      Gap g{std::max(a, start), std::min(b, end)};
      if (g.to > g.from) {
        cov.gap_total += g.to - g.from;
        cov.gaps.push_back(g);
      }
    }
  };
  for (Timestamp t : polls.ok_finished) {
    gap(prev, t);
    prev = t;
  }
  gap(prev, end);
}

Status coverage(ReadTxn& txn, const Request& req, const Context& ctx, const std::string& cluster,
                ClusterCoverage& cov) {
  cov.cluster = cluster;
  auto polls = storage::poll_coverage(txn, period_of(req, cluster));
  if (!polls.ok()) return polls.take_error();
  cov.polls_ok = polls->ok;
  cov.polls_failed = polls->failed;
  cov.polls_suspect = polls->suspect;
  cov.monitored_since = polls->first_started;
  TW_RETURN_IF_ERROR(poll_interval(txn, req, ctx, cov));
  cov.last_successful_poll = polls->ok_finished.empty()
                                 ? polls->last_ok_before
                                 : std::optional<Timestamp>(polls->ok_finished.back());
  find_gaps(req, *polls, cov);
  return ok_status();
}

// The inventory at `at` and the status series, from one replay of the token events.
Status inventory_and_series(ReadTxn& txn, const Request& req, ReportData& data,
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
  TW_RETURN_IF_ERROR(replay->run(txn.db(), req.to, req.cluster, samples, [&](Timestamp t) {
    if (k < samples.size() && samples[k] == t) {
      data.series[k].at = t;
      data.series[k].tokens = covered_counts(*replay, data.inventory, t);
      ++k;
    }
  }));
  data.period_end = replay;
  // An inventory at another instant than the end needs its own replay.
  if (req.at != req.to) {
    auto at_replay = std::make_shared<storage::InventoryReplay>();
    TW_RETURN_IF_ERROR(at_replay->run(txn.db(), req.at, req.cluster, {}, {}));
    replay = std::move(at_replay);
  }
  InventorySection& inv = data.inventory;
  inv.at = req.at;
  inv.replay = replay;
  replay->summarize(req.at, [&](const storage::InventoryReplay::Summary& t) {
    if (!inv.covers(t.cluster, t.token_id)) return;
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
  auto anomalies = storage::recorded_anomalies(txn.db(), req.cluster, req.at);
  if (!anomalies.ok()) return anomalies.take_error();
  for (auto& a : *anomalies) {
    if (inv.covers(a.cluster, a.token_id)) inv.anomalies.push_back(std::move(a));
  }
  return ok_status();
}

Status open_violation_series(ReadTxn& txn, const Request& req, ReportData& data) {
  auto v = storage::violation_times(txn, period_of(req, req.cluster));
  if (!v.ok()) return v.take_error();
  const auto &opened = v->opened, &resolved = v->resolved;
  for (auto& point : data.series) {
    const std::string t = format_timestamp(point.at);
    auto o = std::upper_bound(opened.begin(), opened.end(), t) - opened.begin();
    auto r = std::upper_bound(resolved.begin(), resolved.end(), t) - resolved.begin();
    point.open_violations = o - r;
  }
  return ok_status();
}

// The compliance rows by policy name, created on first mention: configured policies first (in
// configuration order), then the others by name.
class PolicyTable {
 public:
  PolicyCompliance& get(const std::string& name) {
    auto [it, created] = by_name_.try_emplace(name);
    if (created) {
      it->second.policy = name;
      order_.push_back(name);
    }
    return it->second;
  }
  std::map<std::string, PolicyCompliance>& by_name() { return by_name_; }
  std::vector<PolicyCompliance> take_ordered() {
    std::stable_sort(order_.begin(), order_.end(), [&](const std::string& a, const std::string& b) {
      const bool ca = by_name_[a].configured, cb = by_name_[b].configured;
      if (ca != cb) return ca;
      if (!ca) return a < b;
      return false;
    });
    std::vector<PolicyCompliance> out;
    for (const auto& name : order_) out.push_back(std::move(by_name_[name]));
    return out;
  }

 private:
  std::map<std::string, PolicyCompliance> by_name_;
  std::vector<std::string> order_;
};

void configured_policies(const Context& ctx, PolicyTable& table) {
  for (const auto& spec : ctx.policies) {
    PolicyCompliance& pc = table.get(spec.name);
    pc.configured = true;
    pc.kind = std::string(policy::to_string(spec.kind));
    pc.severity = std::string(policy::to_string(spec.severity));
    pc.action = std::string(policy::to_string(spec.action));
    pc.mode = spec.mode ? std::string(policy::to_string(*spec.mode)) : "inherit";
  }
}

// Time to remediate: opened to resolved, for violations remediated in the period.
void remediation_times(const std::vector<storage::ResolvedViolation>& resolved,
                       PolicyTable& table) {
  std::map<std::string, std::vector<double>> ttr;
  for (const auto& v : resolved) {
    if (!remediates(v)) continue;
    auto o = parse_rfc3339(v.opened_at);
    auto r = parse_rfc3339(v.resolved_at);
    if (o.ok() && r.ok()) ttr[v.policy].push_back(seconds(*r - *o));
  }
  for (auto& [name, v] : ttr) table.get(name).time_to_remediate = time_to_remediate(std::move(v));
}

// Violations opened, resolved (by resolution; the rows in `resolved`) and open at the end, and
// the time to remediate.
Status violation_stats(ReadTxn& txn, const ReportPeriod& p, PolicyTable& table,
                       std::vector<storage::ResolvedViolation>& resolved) {
  auto opened = storage::violations_opened(txn, p);
  if (!opened.ok()) return opened.take_error();
  for (const auto& o : *opened) {
    PolicyCompliance& pc = table.get(o.policy);
    if (!pc.configured) {
      pc.severity = o.severity;
      pc.action = o.action;
    }
    pc.opened = o.opened;
  }
  auto rows = storage::violations_resolved(txn, p);
  if (!rows.ok()) return rows.take_error();
  resolved = std::move(*rows);
  for (const auto& v : resolved) {
    PolicyCompliance& pc = table.get(v.policy);
    ++pc.resolved;
    ++pc.resolutions[v.resolution.value_or("unknown")];
  }
  auto open = storage::violations_open_at_end(txn, p);
  if (!open.ok()) return open.take_error();
  for (const auto& c : *open) table.get(c.policy).open_at_end = c.count;
  remediation_times(resolved, table);
  return ok_status();
}

// Actions planned and carried out, held back by halts, and awaiting approval at the end of the
// period (not now).
Status action_stats(ReadTxn& txn, const Request& req, const ReportPeriod& p, PolicyTable& table,
                    ReportData& data) {
  auto counts = storage::action_event_counts(txn, p);
  if (!counts.ok()) return counts.take_error();
  for (const auto& c : *counts) {
    PolicyCompliance& pc = table.get(c.policy);
    if (c.event == "action_planned")
      pc.actions_planned += c.count;
    else if (c.event == "action_succeeded")
      pc.actions_succeeded += c.count;
    else if (c.event == "action_skipped")
      pc.actions_skipped += c.count;
    else if (c.event == "action_failed" && c.final)
      pc.actions_failed += c.count;  // gave up
  }
  auto halts = storage::halts(txn, p);
  if (!halts.ok()) return halts.take_error();
  for (const auto& h : *halts) {
    data.halts.push_back(
        HaltEvent{parse_rfc3339(h.recorded_at).value_or(req.from), h.cluster, h.planned});
    // A halt holds back a cluster's actions: not attributed to a team's or owner's tokens.
    if (data.inventory.only) continue;
    for (const auto& [name, n] : h.by_policy) table.get(name).actions_halted += n;
  }
  auto awaiting = storage::awaiting_approval_at_end(txn, p);
  if (!awaiting.ok()) return awaiting.take_error();
  for (const auto& c : *awaiting) table.get(c.policy).awaiting_approval_at_end = c.count;
  return ok_status();
}

// A team/owner report lists the exemptions used for its tokens, or naming one of them.
bool concerns_covered(const ReportData& data, const policy::ExemptionSpec& e, std::int64_t used) {
  if (!data.inventory.only || used > 0) return true;
  if (e.token_id.empty()) return false;
  if (!e.cluster.empty()) return data.inventory.covers(e.cluster, e.token_id);
  return std::any_of(data.clusters.begin(), data.clusters.end(),
                     [&](const std::string& c) { return data.inventory.covers(c, e.token_id); });
}

// Exemptions used (tokens whose violation an exemption suppressed, first recorded up to the end,
// by exemptions still in force at the start of the period) and the configured exemptions in
// force at some point of the period, per policy ("*": every policy).
Status exemption_stats(ReadTxn& txn, const Request& req, const Context& ctx, const ReportPeriod& p,
                       PolicyTable& table, ReportData& data) {
  auto uses = storage::exemption_uses(txn, p);
  if (!uses.ok()) return uses.take_error();
  std::map<std::string, std::int64_t> used_by_key;
  for (const auto& u : *uses) {
    if (u.policy) table.get(*u.policy).exemptions_used += u.tokens;
    if (u.exemption) used_by_key[*u.exemption] += u.tokens;
  }
  if (ctx.exemptions.empty()) return ok_status();
  auto set = policy::PolicySet::compile(ctx.policies, ctx.exemptions);
  for (std::size_t i = 0; i < ctx.exemptions.size(); ++i) {
    const auto& e = ctx.exemptions[i];
    if (!req.cluster.empty() && !e.cluster.empty() && e.cluster != req.cluster) continue;
    ExemptionEntry x{e.policy, e.token_id, e.description, e.cluster, e.reason, e.expires, 0};
    if (set.ok()) {
      auto it = used_by_key.find((*set)->exemption_key(i));
      if (it != used_by_key.end()) x.used = it->second;
    }
    if (!concerns_covered(data, e, x.used)) continue;
    data.exemptions.push_back(x);
    if (e.expires <= req.from) continue;
    if (e.policy == "*") {
      for (auto& [name, pc] : table.by_name()) {
        if (pc.configured) ++pc.exemptions_in_force;
      }
    } else {
      ++table.get(e.policy).exemptions_in_force;
    }
  }
  return ok_status();
}

// Tokens judged: active tokens in each policy's scope at the inventory's instant, evaluated
// one cluster at a time (the visit is ordered by cluster).
void tokens_judged(const Context& ctx, const ReportData& data, PolicyTable& table) {
  if (!ctx.from_config || ctx.policies.empty() || !data.inventory.replay) return;
  auto set = policy::PolicySet::compile(ctx.policies, {});
  if (!set.ok()) return;
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
        if (!data.inventory.covers(r.cluster, r.token.id)) return true;
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
    table.get((*set)->specs()[i].name).tokens_judged = judged[i];
}

Status compliance(ReadTxn& txn, const Request& req, const Context& ctx, const Owners& owners,
                  ReportData& data) {
  ReportPeriod p = period_of(req, req.cluster);
  p.owners_recorded = owners.recorded;
  PolicyTable table;
  configured_policies(ctx, table);
  std::vector<storage::ResolvedViolation> resolved;
  TW_RETURN_IF_ERROR(violation_stats(txn, p, table, resolved));
  TW_RETURN_IF_ERROR(owners_section(txn, p, owners, resolved, data));
  TW_RETURN_IF_ERROR(action_stats(txn, req, p, table, data));
  TW_RETURN_IF_ERROR(exemption_stats(txn, req, ctx, p, table, data));
  tokens_judged(ctx, data, table);
  data.policies = table.take_ordered();
  return ok_status();
}

Status change_counts(ReadTxn& txn, const Request& req, ReportData& data) {
  auto counts = storage::token_event_counts(txn, period_of(req, req.cluster));
  if (!counts.ok()) return counts.take_error();
  ChangeCounts& c = data.changes;
  for (const auto& [e, n] : *counts) {
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
  }
  return ok_status();
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

bool InventorySection::covers(std::string_view cluster, std::string_view token_id) const {
  return !only || only->contains(cluster, token_id);
}

void InventorySection::for_each_token(
    const std::function<bool(const InventoryEntry&)>& visit) const {
  if (!replay) return;
  replay->for_each(at, std::nullopt, [&](const storage::InventoryRow& row) {
    return !covers(row.cluster, row.token.id) || visit(make_entry(row));
  });
}

std::string_view status_name(std::size_t index) {
  static constexpr std::string_view names[] = {"active", "expired", "revoked", "removed"};
  return index < 4 ? names[index] : "unknown";
}

Result<ReportData> collect(ReadTxn& txn, const Request& request, const Context& context,
                           const Progress& progress) {
  if (request.to < request.from) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the period ends (--to " + format_timestamp(request.to) +
                          ") before it starts (--from " + format_timestamp(request.from) + ")");
  }
  ReportData data;
  data.request = request;
  data.context = context;
  auto polled = storage::polled_clusters(txn);
  if (!polled.ok()) return polled.take_error();
  std::set<std::string> clusters(polled->begin(), polled->end());
  for (const auto& [name, settings] : context.clusters) clusters.insert(name);
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
  auto snapshot_head = storage::chain_head_seq(txn);
  if (!snapshot_head.ok()) return snapshot_head.take_error();
  std::future<Result<storage::VerifyReport>> parallel;
  if (!txn.path().empty() && txn.path() != ":memory:") {
    parallel =
        std::async(std::launch::async, [path = txn.path()]() -> Result<storage::VerifyReport> {
          auto other = ReadTxn::open(path);
          if (!other.ok()) return other.take_error();
          return storage::verify_chain(other->db(), nullptr, nullptr);
        });
  }
  if (progress) progress("reading polls", 0, 0);
  for (const auto& c : data.clusters) {
    ClusterCoverage cov;
    TW_RETURN_IF_ERROR(coverage(txn, request, context, c, cov));
    data.coverage.push_back(std::move(cov));
  }
  auto owners = read_owners(txn, request.cluster);
  if (!owners.ok()) return owners.take_error();
  auto only = covered_tokens(*owners, request);
  if (!only.ok()) return only.take_error();
  data.inventory.only = std::move(*only);
  TW_RETURN_IF_ERROR(inventory_and_series(txn, request, data, progress));
  if (progress) progress("reading violations and actions", 0, 0);
  TW_RETURN_IF_ERROR(open_violation_series(txn, request, data));
  TW_RETURN_IF_ERROR(change_counts(txn, request, data));
  TW_RETURN_IF_ERROR(compliance(txn, request, context, *owners, data));
  data.pending = std::make_shared<PendingIntegrity>();
  data.pending->parallel = std::move(parallel);
  data.pending->snapshot_head = *snapshot_head;
  data.pending->progress = progress;
  if (!request.integrity_in_background) {
    auto g = integrity_of(txn, data);
    if (!g.ok()) return g.take_error();
  }
  return data;
}

Result<Integrity> integrity_of(ReadTxn& txn, const ReportData& data) {
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
    auto total = storage::audit_event_count(txn);
    if (!total.ok()) return total.take_error();
    VerifyProgress vp{&p.progress, *total};
    if (p.progress) p.progress("verifying the hash chain", 0, *total);
    auto v = storage::verify_chain(txn.db(), &verify_progress, &vp);
    if (!v.ok()) return v.take_error();
    verified = std::move(*v);
  }
  const auto& v = *verified;
  auto checkpoint = storage::last_checkpoint(txn, data.context.public_keys);
  if (!checkpoint.ok()) return checkpoint.take_error();
  // A valid signature over a head the chain no longer reaches proves nothing about these rows.
  if (auto& c = *checkpoint;
      c && c->checked && c->problem.empty() && !v.ok && (v.bad_seq == 0 || v.bad_seq <= c->seq)) {
    c->problem = "the hash chain is broken before it (" + v.problem + ")";
  }
  p.result = Integrity{v.ok,
                       v.rows,
                       v.head_seq,
                       v.head_hash,
                       v.bad_seq,
                       v.problem,
                       v.append_only_triggers,
                       std::move(*checkpoint)};
  data.integrity = *p.result;
  return *p.result;
}

Status for_each_change(ReadTxn& txn, const ReportData& data,
                       const std::function<bool(const ChangeEvent&)>& visit) {
  simdjson::ondemand::parser parser;
  std::string buffer;
  ChangeEvent ev;
  return storage::for_each_token_change(
      txn, period_of(data.request, data.request.cluster), [&](const storage::TokenChange& c) {
        ev.seq = c.seq;
        ev.time.assign(c.recorded_at);
        ev.cluster.assign(c.cluster);
        ev.token_id.assign(c.token_id);
        ev.event.assign(c.event);
        ev.before.clear();
        ev.after.clear();
        if (ev.event == "token_created" || ev.event == "token_updated" ||
            ev.event == "token_reappeared") {
          split_detail(parser, buffer, c.detail, ev.event != "token_created", ev.before, ev.after);
        }
        // The description at the end of the period (so a report over a past period does not
        // change when tokens change later); a creation's own is in `after`.
        const std::string* description =
            data.period_end ? data.period_end->description(ev.cluster, ev.token_id) : nullptr;
        ev.description = description != nullptr ? *description : std::string();
        return visit(ev);
      });
}

Status write_report(ReadTxn& txn, const ReportData& data, Format format, const Sink& sink) {
  switch (format) {
    case Format::kJson:
      return render_json(txn, data, sink);
    case Format::kCsv:
      return render_csv(txn, data, sink);
    case Format::kMarkdown:
      return render_markdown(txn, data, sink);
    case Format::kHtml:
      return render_html(txn, data, sink);
  }
  return make_error(ErrorCode::kInvalidArgument, "unknown report format");
}

std::string_view checkpoint_verification(const Integrity& g) {
  if (!g.checkpoint) return "none";
  if (!g.checkpoint->checked) return "not_checked";
  return g.checkpoint->problem.empty() ? "verified" : "invalid";
}

std::string checkpoint_note(const Integrity& g) {
  if (!g.checkpoint) return "no signed checkpoint in the audit log";
  if (!g.checkpoint->checked) {
    return "not checked: no public key (report --public-key or [audit] public_key_file)";
  }
  if (g.checkpoint->problem.empty()) return "verified with key " + g.checkpoint->key_id;
  return "not verified: " + g.checkpoint->problem;
}

}  // namespace tw::report

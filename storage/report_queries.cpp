#include "storage/report_queries.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "storage/checkpoints.h"
#include "storage/pipeline.h"
#include "storage/sqlite.h"

namespace tw::storage {
namespace {

// Every query binds a period the same way: ?1 from, ?2 to, ?3 cluster ("" = every cluster),
// ?6 team and ?7 owner ("" = any; a statement without them ignores them).
Result<Stmt> query(ReadTxn& txn, std::string_view sql, const ReportPeriod& p) {
  auto st = txn.db().prepare(sql);
  if (!st.ok()) return st.take_error();
  st->bind(1, format_timestamp(p.from)).bind(2, format_timestamp(p.to)).bind(3, p.cluster);
  st->bind(6, p.team).bind(7, p.owner);
  return st;
}

// The pieces concatenated (a statement with a filter fragment).
std::string cat(std::initializer_list<std::string_view> parts) {
  std::string s;
  for (auto part : parts) s.append(part);
  return s;
}

// True for the rows of `table` (a name or alias with cluster and token_id columns) whose token
// the period's team and owner have; "1" without them (the statement stays as it was).
std::string owned(const ReportPeriod& p, std::string_view table) {
  if (p.team.empty() && p.owner.empty()) return "1";
  return cat({"((?6 = '' AND ?7 = '') OR EXISTS (SELECT 1 FROM token_owners o WHERE o.cluster = ",
              table, ".cluster AND o.token_id = ", table,
              ".token_id AND o.owner_rule IS NOT NULL AND (?6 = '' OR o.team = ?6) AND (?7 = '' "
              "OR o.owner = ?7)))"});
}

// Runs `sql` (bound as above) and calls row() for each result row.
template <class F>
Status each_row(ReadTxn& txn, std::string_view sql, const ReportPeriod& p, F&& row) {
  auto st = query(txn, sql, p);
  if (!st.ok()) return st.take_error();
  while (true) {
    auto r = st->step();
    if (!r.ok()) return r.take_error();
    if (!*r) return ok_status();
    row(*st);
  }
}

// The times in the first column of `sql`, in order; unreadable ones skipped.
Result<std::vector<Timestamp>> times(ReadTxn& txn, std::string_view sql, const ReportPeriod& p) {
  std::vector<Timestamp> out;
  TW_RETURN_IF_ERROR(each_row(txn, sql, p, [&](Stmt& s) {
    if (auto t = parse_rfc3339(s.view(0)); t.ok()) out.push_back(*t);
  }));
  return out;
}

Result<std::vector<PolicyCount>> policy_counts(ReadTxn& txn, std::string_view sql,
                                               const ReportPeriod& p) {
  std::vector<PolicyCount> out;
  TW_RETURN_IF_ERROR(each_row(txn, sql, p, [&](Stmt& s) {
    if (auto policy = s.opt_text(0)) out.push_back({*policy, s.int64(1)});
  }));
  return out;
}

// True for the audit_log rows of a cluster where the period's team or owner has a token; "1"
// without them.
std::string owned_cluster(const ReportPeriod& p) {
  if (p.team.empty() && p.owner.empty()) return "1";
  return "EXISTS (SELECT 1 FROM token_owners o WHERE o.cluster = audit_log.cluster AND "
         "o.owner_rule IS NOT NULL AND (?6 = '' OR o.team = ?6) AND (?7 = '' OR o.owner = ?7))";
}

// `LEFT JOIN … w`: the recorded owner of violations v's token (none before schema 6).
std::string_view owners_join(const ReportPeriod& p) {
  if (!p.owners_recorded) {
    return "LEFT JOIN (SELECT NULL AS owner_rule, NULL AS team, NULL AS owner) w ON 0";
  }
  return "LEFT JOIN token_owners w ON w.cluster = v.cluster AND w.token_id = v.token_id";
}

}  // namespace

Result<bool> owners_recorded(ReadTxn& txn) {
  bool found = false;
  TW_RETURN_IF_ERROR(
      each_row(txn, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'token_owners'",
               ReportPeriod{}, [&](Stmt&) { found = true; }));
  return found;
}

Result<std::vector<std::string>> polled_clusters(ReadTxn& txn) {
  std::vector<std::string> out;
  TW_RETURN_IF_ERROR(each_row(txn, "SELECT DISTINCT cluster FROM polls ORDER BY cluster",
                              ReportPeriod{}, [&](Stmt& s) { out.push_back(s.text(0)); }));
  return out;
}

Result<PollCoverage> poll_coverage(ReadTxn& txn, const ReportPeriod& p) {
  PollCoverage c;
  TW_RETURN_IF_ERROR(each_row(txn,
                              "SELECT outcome, count(*) FROM polls WHERE cluster = ?3 AND "
                              "finished_at >= ?1 AND finished_at <= ?2 GROUP BY outcome",
                              p, [&](Stmt& s) {
                                const std::string_view o = s.view(0);
                                const std::int64_t n = s.int64(1);
                                if (o == "ok")
                                  c.ok = n;
                                else if (o == "failed")
                                  c.failed = n;
                                else if (o == "suspect")
                                  c.suspect = n;
                              }));
  TW_RETURN_IF_ERROR(
      each_row(txn, "SELECT min(started_at) FROM polls WHERE cluster = ?3", p,
               [&](Stmt& s) { c.first_started = parse_optional_timestamp(s.opt_text(0)); }));
  TW_RETURN_IF_ERROR(
      each_row(txn,
               "SELECT max(finished_at) FROM polls WHERE cluster = ?3 AND outcome = 'ok' AND "
               "finished_at < ?1",
               p, [&](Stmt& s) { c.last_ok_before = parse_optional_timestamp(s.opt_text(0)); }));
  auto oks = times(txn,
                   "SELECT finished_at FROM polls WHERE cluster = ?3 AND outcome = 'ok' AND "
                   "finished_at >= ?1 AND finished_at <= ?2 ORDER BY finished_at",
                   p);
  if (!oks.ok()) return oks.take_error();
  c.ok_finished = std::move(*oks);
  return c;
}

Result<std::vector<Timestamp>> poll_starts(ReadTxn& txn, const ReportPeriod& p) {
  return times(txn,
               "SELECT started_at FROM polls WHERE cluster = ?3 AND started_at >= ?1 AND "
               "started_at <= ?2 ORDER BY started_at",
               p);
}

Result<ViolationTimes> violation_times(ReadTxn& txn, const ReportPeriod& p) {
  ViolationTimes v;
  TW_RETURN_IF_ERROR(
      each_row(txn,
               cat({"SELECT opened_at, resolved_at FROM violations WHERE opened_at <= ?2 AND "
                    "(resolved_at IS NULL OR resolved_at >= ?1) AND (?3 = '' OR cluster = ?3) AND ",
                    owned(p, "violations")}),
               p, [&](Stmt& s) {
                 v.opened.push_back(s.text(0));
                 if (auto r = s.opt_text(1)) v.resolved.push_back(*r);
               }));
  std::sort(v.opened.begin(), v.opened.end());
  std::sort(v.resolved.begin(), v.resolved.end());
  return v;
}

Result<std::vector<OpenedByPolicy>> violations_opened(ReadTxn& txn, const ReportPeriod& p) {
  std::vector<OpenedByPolicy> out;
  TW_RETURN_IF_ERROR(each_row(
      txn,
      cat({"SELECT policy, max(severity), max(action), count(*) FROM violations WHERE opened_at >= "
           "?1 AND opened_at <= ?2 AND (?3 = '' OR cluster = ?3) AND ",
           owned(p, "violations"), " GROUP BY policy"}),
      p, [&](Stmt& s) {
        out.push_back({s.text(0), s.text(1), s.text(2), s.int64(3)});
      }));
  return out;
}

Result<std::vector<PolicyCount>> violations_open_at_end(ReadTxn& txn, const ReportPeriod& p) {
  return policy_counts(txn,
                       cat({"SELECT policy, count(*) FROM violations WHERE opened_at <= ?2 AND "
                            "(resolved_at IS NULL OR resolved_at > ?2) AND (?3 = '' OR cluster = "
                            "?3) AND ",
                            owned(p, "violations"), " GROUP BY policy"}),
                       p);
}

Result<std::vector<ResolvedViolation>> violations_resolved(ReadTxn& txn, const ReportPeriod& p) {
  std::vector<ResolvedViolation> out;
  TW_RETURN_IF_ERROR(each_row(
      txn,
      cat({"SELECT v.policy, v.resolution, v.opened_at, v.resolved_at, w.owner_rule IS NOT NULL, "
           "w.team, w.owner FROM violations v ",
           owners_join(p),
           " WHERE v.resolved_at >= ?1 AND v.resolved_at <= ?2 AND (?3 "
           "= '' OR v.cluster = ?3) AND ",
           owned(p, "v")}),
      p, [&](Stmt& s) {
        const bool is_owned = s.int64(4) != 0;
        out.push_back({s.text(0), s.opt_text(1), s.text(2), s.text(3), is_owned,
                       is_owned ? s.opt_text(5) : std::nullopt,
                       is_owned ? s.opt_text(6) : std::nullopt});
      }));
  return out;
}

Status for_each_token_owner(ReadTxn& txn, const ReportPeriod& p,
                            const std::function<void(const TokenOwnerRow&)>& visit) {
  if (!p.owners_recorded) return ok_status();
  TokenOwnerRow row;
  return each_row(txn,
                  "SELECT cluster, token_id, owner, team, owner_rule IS NOT NULL FROM token_owners "
                  "WHERE ?3 = '' OR cluster = ?3",
                  p, [&](Stmt& s) {
                    row.cluster.assign(s.view(0));
                    row.token_id.assign(s.view(1));
                    row.owned = s.int64(4) != 0;
                    row.owner = row.owned ? s.opt_text(2) : std::nullopt;
                    row.team = row.owned ? s.opt_text(3) : std::nullopt;
                    visit(row);
                  });
}

Result<std::vector<OwnerViolationCount>> violations_by_owner(ReadTxn& txn, const ReportPeriod& p) {
  std::vector<OwnerViolationCount> out;
  TW_RETURN_IF_ERROR(
      each_row(txn,
               cat({"SELECT w.owner_rule IS NOT NULL, w.team, w.owner, sum(v.opened_at >= ?1), "
                    "sum(v.resolved_at IS NULL OR v.resolved_at > ?2) FROM violations v ",
                    owners_join(p), " WHERE v.opened_at <= ?2 AND (?3 = '' OR v.cluster = ?3) AND ",
                    owned(p, "v"), " GROUP BY 1, 2, 3"}),
               p, [&](Stmt& s) {
                 const bool is_owned = s.int64(0) != 0;
                 out.push_back({is_owned, is_owned ? s.opt_text(1) : std::nullopt,
                                is_owned ? s.opt_text(2) : std::nullopt, s.int64(3), s.int64(4)});
               }));
  return out;
}

Result<std::vector<ActionEventCount>> action_event_counts(ReadTxn& txn, const ReportPeriod& p) {
  std::vector<ActionEventCount> out;
  TW_RETURN_IF_ERROR(each_row(
      txn,
      "SELECT event, json_extract(detail, '$.policy'), coalesce(json_extract(detail, '$.final'), "
      "1), count(*) FROM audit_log WHERE recorded_at >= ?1 AND recorded_at <= ?2 AND event IN "
      "('action_planned', 'action_succeeded', 'action_failed', 'action_skipped') AND "
      "json_valid(detail) AND (?3 = '' OR cluster = ?3) AND " +
          owned(p, "audit_log") + " GROUP BY 1, 2, 3",
      p, [&](Stmt& s) {
        auto policy = s.opt_text(1);
        if (policy) out.push_back({s.text(0), *policy, s.int64(2) != 0, s.int64(3)});
      }));
  return out;
}

Result<std::vector<HaltRecord>> halts(ReadTxn& txn, const ReportPeriod& p) {
  std::vector<HaltRecord> out;
  TW_RETURN_IF_ERROR(each_row(
      txn,
      "SELECT recorded_at, cluster, detail FROM audit_log WHERE event = 'enforcement_halted' AND "
      "recorded_at >= ?1 AND recorded_at <= ?2 AND (?3 = '' OR cluster = ?3) AND " +
          owned_cluster(p) + " ORDER BY seq",
      p, [&](Stmt& s) {
        HaltRecord h{s.text(0), s.opt_text(1).value_or(""), 0, {}};
        auto d = nlohmann::json::parse(s.view(2), nullptr, false);
        if (d.is_object()) {
          if (d.contains("planned") && d["planned"].is_number_integer())
            h.planned = d["planned"].get<std::int64_t>();
          if (d.contains("policies") && d["policies"].is_object()) {
            for (const auto& [name, v] : d["policies"].items()) {
              if (v.is_number_integer()) h.by_policy.emplace_back(name, v.get<std::int64_t>());
            }
          }
        }
        out.push_back(std::move(h));
      }));
  return out;
}

Result<std::vector<PolicyCount>> awaiting_approval_at_end(ReadTxn& txn, const ReportPeriod& p) {
  return policy_counts(
      txn,
      "SELECT json_extract(a.detail, '$.policy'), count(*) FROM audit_log a WHERE a.event = "
      "'action_planned' AND json_valid(a.detail) AND json_extract(a.detail, "
      "'$.awaiting_approval') = 1 AND a.recorded_at <= ?2 AND (?3 = '' OR a.cluster = ?3) AND "
      "NOT EXISTS (SELECT 1 FROM audit_log e WHERE e.token_id = a.token_id AND e.event IN "
      "('action_approved', 'action_succeeded', 'action_failed', 'action_skipped') AND "
      "e.recorded_at <= ?2 AND json_valid(e.detail) AND json_extract(e.detail, '$.action_id') = "
      "json_extract(a.detail, '$.action_id')) AND " +
          owned(p, "a") + " GROUP BY 1",
      p);
}

Result<std::vector<ExemptionUse>> exemption_uses(ReadTxn& txn, const ReportPeriod& p) {
  std::vector<ExemptionUse> out;
  TW_RETURN_IF_ERROR(each_row(
      txn,
      "SELECT json_extract(detail, '$.policy'), json_extract(detail, '$.exemption'), "
      "count(DISTINCT coalesce(cluster, '') || char(0) || coalesce(token_id, '')) FROM audit_log "
      "WHERE event = 'exemption_applied' AND recorded_at <= ?2 AND json_valid(detail) AND "
      "coalesce(CASE WHEN json_valid(detail) THEN json_extract(detail, '$.expires') END, '9') > "
      "?1 AND (?3 = '' OR cluster = ?3) AND " +
          owned(p, "audit_log") + " GROUP BY 1, 2",
      p, [&](Stmt& s) {
        out.push_back({s.opt_text(0), s.opt_text(1), s.int64(2)});
      }));
  return out;
}

Result<std::vector<EventCount>> token_event_counts(ReadTxn& txn, const ReportPeriod& p) {
  std::vector<EventCount> out;
  TW_RETURN_IF_ERROR(each_row(
      txn,
      "SELECT event, count(*) FROM audit_log WHERE recorded_at >= ?1 AND recorded_at <= ?2 AND "
      "event IN ('token_discovered', 'token_created', 'token_updated', 'token_revoked', "
      "'token_expired', 'token_removed', 'token_reappeared') AND (?3 = '' OR cluster = ?3) AND " +
          owned(p, "audit_log") + " GROUP BY event",
      p, [&](Stmt& s) {
        out.push_back({s.text(0), s.int64(1)});
      }));
  return out;
}

Status for_each_token_change(ReadTxn& txn, const ReportPeriod& p,
                             const std::function<bool(const TokenChange&)>& visit) {
  // The seq range of the period (through the time index), then one pass over it in seq order;
  // the `+` keeps SQLite from reading the rows through an index and sorting them.
  std::int64_t lo = 0, hi = -1;
  TW_RETURN_IF_ERROR(each_row(
      txn, "SELECT min(seq), max(seq) FROM audit_log WHERE recorded_at >= ?1 AND recorded_at <= ?2",
      p, [&](Stmt& s) {
        if (!s.is_null(0)) {
          lo = s.int64(0);
          hi = s.int64(1);
        }
      }));
  auto st = query(
      txn,
      "SELECT e.seq, e.recorded_at, e.cluster, e.token_id, e.event, e.detail FROM audit_log e "
      "WHERE e.seq >= ?4 AND e.seq <= ?5 AND +e.recorded_at >= ?1 AND +e.recorded_at <= ?2 AND "
      "+e.event IN ('token_created', 'token_updated', 'token_revoked', 'token_expired', "
      "'token_removed', 'token_reappeared') AND (?3 = '' OR +e.cluster = ?3) AND " +
          owned(p, "e") + " ORDER BY e.seq",
      p);
  if (!st.ok()) return st.take_error();
  st->bind(4, lo).bind(5, hi);
  TokenChange change;
  return pipelined_rows(*st, 6, [&](const std::string_view* f) {
    change.seq = 0;
    std::from_chars(f[0].data(), f[0].data() + f[0].size(), change.seq);
    change.recorded_at = f[1];
    change.cluster = f[2];
    change.token_id = f[3];
    change.event = f[4];
    change.detail = f[5];
    return visit(change);
  });
}

Result<std::optional<std::int64_t>> chain_head_seq(ReadTxn& txn) {
  std::optional<std::int64_t> seq;
  TW_RETURN_IF_ERROR(each_row(txn, "SELECT seq FROM chain_head WHERE id = 1", ReportPeriod{},
                              [&](Stmt& s) { seq = s.int64(0); }));
  return seq;
}

Result<std::int64_t> audit_event_count(ReadTxn& txn) {
  std::int64_t n = 0;
  TW_RETURN_IF_ERROR(each_row(txn, "SELECT count(*) FROM audit_log", ReportPeriod{},
                              [&](Stmt& s) { n = s.int64(0); }));
  return n;
}

Result<std::optional<CheckpointSummary>> last_checkpoint(
    ReadTxn& txn, const std::vector<ed25519::PublicKey>& keys) {
  auto row = read_last_checkpoint(txn.db());
  if (!row.ok()) return row.take_error();
  if (!*row) return std::optional<CheckpointSummary>();
  CheckpointSummary c;
  c.seq = (*row)->seq;
  if (auto d = parse_checkpoint_detail((*row)->detail)) {
    c.head_seq = d->head_seq;
    // Text from the database: control characters shown escaped, lengths bounded.
    c.signed_at = printable(d->signed_at, 64);
    c.key_id = printable(d->key_id, 64);
    c.host = printable(d->host, 255);
  }
  c.checked = !keys.empty();
  if (c.checked) c.problem = check_checkpoint(c.seq, (*row)->prev_hash, (*row)->detail, keys);
  return std::optional<CheckpointSummary>(std::move(c));
}

}  // namespace tw::storage

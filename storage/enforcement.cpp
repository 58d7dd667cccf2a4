#include "storage/enforcement.h"

#include <array>

#include "storage/audit_store.h"
#include "storage/sqlite.h"

namespace tw::storage {
namespace {

std::optional<std::string> ts_or_null(const std::optional<Timestamp>& t) {
  return t ? std::optional<std::string>(format_timestamp(*t)) : std::nullopt;
}

constexpr const char* kViolationColumns =
    "id, cluster, token_id, policy, severity, state, action, opened_at, due_at, resolved_at, "
    "resolution, detail, released";

ViolationRow read_violation(const Stmt& st) {
  ViolationRow v;
  v.id = st.int64(0);
  v.cluster = st.text(1);
  v.token_id = st.text(2);
  v.policy = st.text(3);
  v.severity = st.text(4);
  v.state = parse_violation_state(st.text(5)).value_or(ViolationState::kOpen);
  v.action = st.text(6);
  v.opened_at = parse_optional_timestamp(st.opt_text(7)).value_or(Timestamp{});
  v.due_at = parse_optional_timestamp(st.opt_text(8));
  v.resolved_at = parse_optional_timestamp(st.opt_text(9));
  if (auto r = st.opt_text(10)) v.resolution = parse_resolution(*r);
  v.detail = st.text(11);
  v.released = st.int64(12) != 0;
  return v;
}

constexpr const char* kActionColumns =
    "id, violation_id, cluster, token_id, policy, action, state, planned_at, completed_at, "
    "attempts, error, target_permissions, next_attempt_at, attempt_started_at, approved_by, "
    "attempt_pid";

ActionRow read_action(const Stmt& st) {
  ActionRow a;
  a.id = st.int64(0);
  a.violation_id = st.int64(1);
  a.cluster = st.text(2);
  a.token_id = st.text(3);
  a.policy = st.text(4);
  a.action = st.text(5);
  a.state = parse_action_state(st.text(6)).value_or(ActionState::kPlanned);
  a.planned_at = parse_optional_timestamp(st.opt_text(7)).value_or(Timestamp{});
  a.completed_at = parse_optional_timestamp(st.opt_text(8));
  a.attempts = static_cast<int>(st.int64(9));
  a.error = st.text(10);
  if (auto p = st.opt_text(11)) {
    auto perms = parse_permissions_json(*p);
    if (perms.ok()) a.target = std::move(*perms);
  }
  a.next_attempt_at = parse_optional_timestamp(st.opt_text(12));
  a.attempt_started_at = parse_optional_timestamp(st.opt_text(13));
  a.approved_by = st.text(14);
  a.attempt_pid = st.int64(15);
  return a;
}

template <class Row, class Read>
Result<std::vector<Row>> collect(Stmt& st, Read read) {
  std::vector<Row> out;
  while (true) {
    auto r = st.step();
    if (!r.ok()) return r.take_error();
    if (!*r) break;
    out.push_back(read(st));
  }
  return out;
}

Status exec_one(WriteTxn& txn, const std::string& sql,
                const std::vector<std::optional<std::string>>& args) {
  auto st = txn.db().cached(sql);
  if (!st.ok()) return st.take_error();
  for (std::size_t i = 0; i < args.size(); ++i) (*st)->bind(static_cast<int>(i + 1), args[i]);
  return (*st)->run();
}

}  // namespace

Result<std::int64_t> data_version(Db& db) {
  auto st = db.cached("PRAGMA data_version");
  if (!st.ok()) return st.take_error();
  auto row = (*st)->step();
  if (!row.ok()) return row.take_error();
  std::int64_t version = (*st)->int64(0);
  (*st)->reset();
  return version;
}

Result<std::vector<ViolationRow>> open_violations(Db& db, const std::string& cluster) {
  auto st =
      db.prepare(std::string("SELECT ") + kViolationColumns +
                 " FROM violation_records WHERE cluster = ? AND state != 'resolved' ORDER BY id");
  if (!st.ok()) return st.take_error();
  st->bind(1, cluster);
  return collect<ViolationRow>(*st, read_violation);
}

Result<std::optional<ViolationRow>> last_violation_resolved_as_removed(Db& db,
                                                                       const std::string& cluster,
                                                                       const std::string& token_id,
                                                                       const std::string& policy) {
  // The latest violation of the pair, only if it ended with the token's latest removal.
  auto st =
      db.prepare(std::string("SELECT ") + kViolationColumns +
                 " FROM violation_records WHERE cluster = ?1 AND token_id = ?2 AND policy = ?3 "
                 "ORDER BY id DESC LIMIT 1");
  if (!st.ok()) return st.take_error();
  st->bind(1, cluster).bind(2, token_id).bind(3, policy);
  auto rows = collect<ViolationRow>(*st, read_violation);
  if (!rows.ok()) return rows.take_error();
  if (rows->empty()) return std::optional<ViolationRow>();
  ViolationRow& v = rows->front();
  if (v.state != ViolationState::kResolved || v.resolution != Resolution::kRemoved ||
      !v.resolved_at) {
    return std::optional<ViolationRow>();
  }
  auto removed = db.prepare(
      "SELECT max(recorded_at) FROM audit_events WHERE token_id = ?2 AND +cluster = ?1 AND +event "
      "= 'token_removed'");
  if (!removed.ok()) return removed.take_error();
  removed->bind(1, cluster).bind(2, token_id);
  auto row = removed->step();
  if (!row.ok()) return row.take_error();
  auto last_removal = parse_optional_timestamp(removed->opt_text(0));
  if (!last_removal || *last_removal != *v.resolved_at) return std::optional<ViolationRow>();
  return std::optional<ViolationRow>(std::move(v));
}

Result<std::vector<ActionRow>> pending_actions(Db& db, const std::string& cluster) {
  auto st = db.prepare(std::string("SELECT ") + kActionColumns +
                       " FROM action_records WHERE cluster = ? AND state IN ('planned', "
                       "'awaiting_approval') ORDER BY id");
  if (!st.ok()) return st.take_error();
  st->bind(1, cluster);
  return collect<ActionRow>(*st, read_action);
}

Result<std::optional<ActionRow>> find_action(Db& db, std::int64_t id) {
  auto st =
      db.prepare(std::string("SELECT ") + kActionColumns + " FROM action_records WHERE id = ?");
  if (!st.ok()) return st.take_error();
  st->bind(1, id);
  auto rows = collect<ActionRow>(*st, read_action);
  if (!rows.ok()) return rows.take_error();
  if (rows->empty()) return std::optional<ActionRow>{};
  return std::optional<ActionRow>{std::move(rows->front())};
}

Result<bool> cluster_halted(Db& db, const std::string& cluster) {
  auto st = db.prepare("SELECT halted FROM enforcement_state WHERE cluster = ?");
  if (!st.ok()) return st.take_error();
  st->bind(1, cluster);
  auto r = st->step();
  if (!r.ok()) return r.take_error();
  return *r && st->int64(0) != 0;
}

Result<std::vector<std::pair<std::string, std::string>>> exemption_uses(
    Db& db, const std::string& cluster) {
  auto st = db.prepare("SELECT exemption, token_id FROM exemption_uses WHERE cluster = ?");
  if (!st.ok()) return st.take_error();
  st->bind(1, cluster);
  std::vector<std::pair<std::string, std::string>> out;
  while (true) {
    auto r = st->step();
    if (!r.ok()) return r.take_error();
    if (!*r) break;
    out.emplace_back(st->text(0), st->text(1));
  }
  return out;
}

Result<std::vector<ViolationRow>> query_violations(Db& db, const ViolationFilter& f) {
  std::string sql = std::string("SELECT ") + kViolationColumns + " FROM violation_records WHERE 1";
  std::vector<std::string> args;
  if (f.open_only) sql += " AND state != 'resolved'";
  if (!f.cluster.empty()) {
    sql += " AND cluster = ?";
    args.push_back(f.cluster);
  }
  if (!f.policy.empty()) {
    sql += " AND policy = ?";
    args.push_back(f.policy);
  }
  sql += " ORDER BY id";
  auto st = db.prepare(sql);
  if (!st.ok()) return st.take_error();
  for (std::size_t i = 0; i < args.size(); ++i) st->bind(static_cast<int>(i + 1), args[i]);
  return collect<ViolationRow>(*st, read_violation);
}

Result<std::vector<ActionRow>> query_actions(Db& db, const std::string& cluster) {
  std::string sql = std::string("SELECT ") + kActionColumns + " FROM action_records";
  if (!cluster.empty()) sql += " WHERE cluster = ?";
  sql += " ORDER BY id";
  auto st = db.prepare(sql);
  if (!st.ok()) return st.take_error();
  if (!cluster.empty()) st->bind(1, cluster);
  return collect<ActionRow>(*st, read_action);
}

Result<std::int64_t> insert_violation(WriteTxn& txn, const ViolationRow& v) {
  auto s = exec_one(
      txn,
      "INSERT INTO violation_records(cluster, token_id, policy, severity, state, action, "
      "opened_at, due_at, detail, released) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      {v.cluster, v.token_id, v.policy, v.severity, std::string(to_string(v.state)), v.action,
       format_timestamp(v.opened_at), ts_or_null(v.due_at), v.detail, v.released ? "1" : "0"});
  if (!s.ok()) return s.take_error();
  return txn.db().last_insert_rowid();
}

Status set_violation_state(WriteTxn& txn, std::int64_t id, ViolationState state) {
  return exec_one(txn, "UPDATE violation_records SET state = ? WHERE id = ?",
                  {std::string(to_string(state)), std::to_string(id)});
}

Status resolve_violation(WriteTxn& txn, std::int64_t id, Resolution resolution, Timestamp at) {
  return exec_one(
      txn,
      "UPDATE violation_records SET state = 'resolved', resolution = ?, resolved_at = ? "
      "WHERE id = ?",
      {std::string(to_string(resolution)), format_timestamp(at), std::to_string(id)});
}

Status release_violation(WriteTxn& txn, std::int64_t id) {
  return exec_one(txn, "UPDATE violation_records SET released = 1 WHERE id = ?",
                  {std::to_string(id)});
}

Status reopen_violation(WriteTxn& txn, std::int64_t id) {
  return exec_one(txn, "UPDATE violation_records SET state = 'open', released = 0 WHERE id = ?",
                  {std::to_string(id)});
}

Result<SucceededActions> succeeded_actions(Db& db, std::int64_t violation_id) {
  auto st = db.cached(
      "SELECT count(*), max(id), max(completed_at) FROM action_records WHERE violation_id = ? AND "
      "state = 'succeeded'");
  if (!st.ok()) return st.take_error();
  (*st)->bind(1, violation_id);
  auto row = (*st)->step();
  if (!row.ok()) return row.take_error();
  SucceededActions out;
  out.count = (*st)->int64(0);
  out.last_id = (*st)->int64(1);
  out.last_completed_at = parse_optional_timestamp((*st)->opt_text(2));
  (*st)->reset();
  return out;
}

Result<std::int64_t> insert_action(WriteTxn& txn, const ActionRow& a) {
  std::optional<std::string> target;
  if (a.action == "restrict") target = permissions_json(a.target);
  auto s = exec_one(
      txn,
      "INSERT INTO action_records(violation_id, cluster, token_id, policy, action, state, "
      "planned_at, completed_at, target_permissions, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      {std::to_string(a.violation_id), a.cluster, a.token_id, a.policy, a.action,
       std::string(to_string(a.state)), format_timestamp(a.planned_at), ts_or_null(a.completed_at),
       target, a.error.empty() ? std::nullopt : std::optional<std::string>(a.error)});
  if (!s.ok()) return s.take_error();
  return txn.db().last_insert_rowid();
}

Status approve_action(WriteTxn& txn, std::int64_t id, const std::string& by, Timestamp at) {
  return exec_one(txn,
                  "UPDATE action_records SET state = 'planned', approved_by = ?, approved_at = ? "
                  "WHERE id = ? AND state = 'awaiting_approval'",
                  {by, format_timestamp(at), std::to_string(id)});
}

Status set_action_target(WriteTxn& txn, std::int64_t id, const std::vector<Permission>& target) {
  return exec_one(txn, "UPDATE action_records SET target_permissions = ? WHERE id = ?",
                  {permissions_json(target), std::to_string(id)});
}

Result<bool> claim_action(WriteTxn& txn, std::int64_t id, Timestamp now, std::int64_t pid,
                          const std::optional<Timestamp>& seen) {
  auto s = exec_one(
      txn,
      "UPDATE action_records SET attempts = attempts + 1, attempt_started_at = ?, attempt_pid = ? "
      "WHERE id = ? AND state = 'planned' AND attempt_started_at IS ?",
      {format_timestamp(now), std::to_string(pid), std::to_string(id), ts_or_null(seen)});
  if (!s.ok()) return s.take_error();
  auto ch = txn.db().prepare("SELECT changes()");
  if (!ch.ok()) return ch.take_error();
  auto r = ch->step();
  if (!r.ok()) return r.take_error();
  return ch->int64(0) == 1;
}

Status finish_action(WriteTxn& txn, std::int64_t id, ActionState state, Timestamp at,
                     const std::string& error, std::optional<Timestamp> next_attempt_at) {
  bool done = state != ActionState::kPlanned;
  return exec_one(
      txn,
      "UPDATE action_records SET state = ?, completed_at = ?, error = ?, next_attempt_at = ?, "
      "attempt_started_at = NULL, attempt_pid = NULL WHERE id = ?",
      {std::string(to_string(state)),
       done ? std::optional<std::string>(format_timestamp(at)) : std::nullopt,
       error.empty() ? std::nullopt : std::optional<std::string>(error),
       ts_or_null(next_attempt_at), std::to_string(id)});
}

Status set_cluster_halted(WriteTxn& txn, const std::string& cluster, bool halted, Timestamp at,
                          const std::string& detail) {
  return exec_one(
      txn,
      "INSERT INTO enforcement_state(cluster, halted, halted_at, detail) VALUES (?, ?, ?, ?) "
      "ON CONFLICT(cluster) DO UPDATE SET halted = excluded.halted, halted_at = "
      "excluded.halted_at, "
      "detail = excluded.detail",
      {cluster, halted ? "1" : "0",
       halted ? std::optional<std::string>(format_timestamp(at)) : std::nullopt, detail});
}

Result<bool> note_exemption_use(WriteTxn& txn, const std::string& exemption,
                                const std::string& cluster, const std::string& token_id,
                                Timestamp at) {
  auto s = exec_one(
      txn,
      "INSERT OR IGNORE INTO exemption_uses(exemption, cluster, token_id, first_applied_at) "
      "VALUES (?, ?, ?, ?)",
      {exemption, cluster, token_id, format_timestamp(at)});
  if (!s.ok()) return s.take_error();
  auto ch = txn.db().prepare("SELECT changes()");
  if (!ch.ok()) return ch.take_error();
  auto r = ch->step();
  if (!r.ok()) return r.take_error();
  return ch->int64(0) == 1;
}

}  // namespace tw::storage

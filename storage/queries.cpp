#include "storage/queries.h"

#include "storage/schema.h"
#include "storage/sqlite.h"

namespace tw::storage {
namespace {

// One row of the token_inventory query in query_inventory (columns in its order).
InventoryRow inventory_row(const Stmt& st) {
  InventoryRow row;
  row.cluster = st.text(0);
  row.token.id = st.text(1);
  row.token.description = st.text(2);
  auto perms = parse_permissions_json(st.text(3));
  if (perms.ok()) row.token.permissions = std::move(*perms);
  row.token.created_at = parse_optional_timestamp(st.opt_text(4));
  row.token.expires_at = parse_optional_timestamp(st.opt_text(5));
  row.token.revoked_at = parse_optional_timestamp(st.opt_text(6));
  row.status = parse_token_status(st.text(7)).value_or(TokenStatus::kActive);
  row.first_seen = st.text(8);
  row.last_seen = st.text(9);
  row.ownership.owner = st.opt_text(10).value_or("");
  row.ownership.team = st.opt_text(11).value_or("");
  row.ownership.rule = st.opt_text(12).value_or("");
  return row;
}

}  // namespace

Result<std::map<std::pair<std::string, std::string>, Ownership>> current_owners(Db& db) {
  std::map<std::pair<std::string, std::string>, Ownership> out;
  auto version = schema_version(db);
  if (!version.ok()) return version.take_error();
  if (*version < 6) return out;
  auto st = db.prepare(
      "SELECT cluster, token_id, owner, team, contact, owner_rule FROM token_owners "
      "WHERE owner_rule IS NOT NULL");
  if (!st.ok()) return st.take_error();
  while (true) {
    auto r = st->step();
    if (!r.ok()) return r.take_error();
    if (!*r) break;
    out[{st->text(0), st->text(1)}] =
        Ownership{st->opt_text(2).value_or(""), st->opt_text(3).value_or(""),
                  st->opt_text(4).value_or(""), st->opt_text(5).value_or("")};
  }
  return out;
}

Result<std::vector<InventoryRow>> query_inventory(Db& db, const InventoryFilter& filter) {
  auto version = schema_version(db);
  if (!version.ok()) return version.take_error();
  const bool owners = *version >= 6;
  std::string sql =
      "SELECT cluster, token_id, description, permissions, created_at, expires_at, revoked_at, "
      "status, first_seen, last_seen, ";
  sql += owners ? "owner, team, owner_rule" : "NULL, NULL, NULL";
  sql += " FROM token_inventory WHERE 1";
  if (!filter.cluster.empty()) sql += " AND cluster = ?1";
  if (filter.status) sql += " AND status = ?2";
  if (!filter.owner.empty()) sql += owners ? " AND owner = ?3" : " AND 0";
  if (!filter.team.empty()) sql += owners ? " AND team = ?4" : " AND 0";
  sql += " ORDER BY cluster, token_id";
  auto st = db.prepare(sql);
  if (!st.ok()) return st.take_error();
  if (!filter.cluster.empty()) st->bind(1, filter.cluster);
  if (filter.status) st->bind(2, std::string(to_string(*filter.status)));
  if (owners && !filter.owner.empty()) st->bind(3, filter.owner);
  if (owners && !filter.team.empty()) st->bind(4, filter.team);
  std::vector<InventoryRow> rows;
  while (true) {
    auto r = st->step();
    if (!r.ok()) return r.take_error();
    if (!*r) break;
    rows.push_back(inventory_row(*st));
  }
  return rows;
}

Result<std::vector<AuditRow>> query_history(Db& db, const HistoryFilter& filter) {
  // Only the conditions in use, so SQLite can pick the matching index.
  std::string sql =
      "SELECT seq, recorded_at, cluster, token_id, event, detail, prev_hash, hash FROM audit_log "
      "WHERE 1";
  std::vector<std::string> params;
  auto add = [&](const char* cond, std::string value) {
    sql += " AND ";
    sql += cond;
    params.push_back(std::move(value));
  };
  if (!filter.token_id.empty()) add("token_id = ?", filter.token_id);
  if (!filter.cluster.empty()) add("cluster = ?", filter.cluster);
  if (filter.since) add("recorded_at >= ?", format_timestamp(*filter.since));
  if (filter.until) add("recorded_at <= ?", format_timestamp(*filter.until));
  if (!filter.events.empty()) {
    sql += " AND event IN (";
    for (std::size_t i = 0; i < filter.events.size(); ++i) {
      sql += i == 0 ? "?" : ", ?";
      params.push_back(filter.events[i]);
    }
    sql += ")";
  }
  sql += filter.limit > 0 ? " ORDER BY seq DESC LIMIT " + std::to_string(filter.limit)
                          : " ORDER BY seq";
  auto st = db.prepare(sql);
  if (!st.ok()) return st.take_error();
  for (std::size_t i = 0; i < params.size(); ++i) st->bind(static_cast<int>(i + 1), params[i]);
  std::vector<AuditRow> rows;
  while (true) {
    auto r = st->step();
    if (!r.ok()) return r.take_error();
    if (!*r) break;
    AuditRow row;
    row.seq = st->int64(0);
    row.recorded_at = st->text(1);
    row.cluster = st->opt_text(2);
    row.token_id = st->opt_text(3);
    row.event = st->text(4);
    row.detail = st->text(5);
    row.prev_hash = st->text(6);
    row.hash = st->text(7);
    rows.push_back(std::move(row));
  }
  if (filter.limit > 0) std::reverse(rows.begin(), rows.end());
  return rows;
}

Result<std::optional<Timestamp>> last_successful_poll(Db& db, const std::string& cluster) {
  auto st = db.cached(
      "SELECT finished_at FROM poll_runs WHERE cluster = ? AND outcome = 'ok' ORDER BY id DESC "
      "LIMIT 1");
  if (!st.ok()) return st.take_error();
  (*st)->bind(1, cluster);
  auto row = (*st)->step();
  if (!row.ok()) return row.take_error();
  std::optional<Timestamp> out;
  if (*row) out = parse_optional_timestamp((*st)->opt_text(0));
  (*st)->reset();
  return out;
}

Result<bool> cluster_recorded(Db& db, const std::string& cluster) {
  auto st = db.prepare(
      "SELECT EXISTS(SELECT 1 FROM poll_runs WHERE cluster = ?1) "
      "OR EXISTS(SELECT 1 FROM violation_records WHERE cluster = ?1)");
  if (!st.ok()) return st.take_error();
  st->bind(1, cluster);
  auto row = st->step();
  if (!row.ok()) return row.take_error();
  return *row && st->int64(0) != 0;
}

Result<std::string> last_applied_config_hash(Db& db) {
  auto q = db.cached(
      "SELECT json_extract(detail, '$.config_hash') FROM audit_log "
      "WHERE event = 'config_applied' ORDER BY seq DESC LIMIT 1");
  if (!q.ok()) return q.take_error();
  auto row = (*q)->step();
  if (!row.ok()) return row.take_error();
  std::string hash = *row ? (*q)->text(0) : std::string();
  (*q)->reset();
  return hash;
}

Result<std::int64_t> last_observed_intent_revision(Db& db, const std::string& key_prefix) {
  auto q = db.prepare(
      "SELECT max(CAST(json_extract(detail, '$.revision') AS INTEGER)) FROM audit_log "
      "WHERE event = 'action_observed' AND json_extract(detail, '$.key_prefix') = ?1");
  if (!q.ok()) return q.take_error();
  q->bind(1, key_prefix);
  auto row = q->step();
  if (!row.ok()) return row.take_error();
  return *row && !q->is_null(0) ? q->int64(0) : std::int64_t{0};
}

}  // namespace tw::storage

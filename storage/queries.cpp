#include "storage/queries.h"

#include <algorithm>
#include <map>
#include <unordered_map>
#include <nlohmann/json.hpp>

#include "storage/sqlite.h"

namespace tw::storage {
namespace {

std::optional<Timestamp> json_time(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return std::nullopt;
  auto t = parse_rfc3339(it->get<std::string>());
  if (!t.ok()) return std::nullopt;
  return *t;
}

std::vector<Permission> json_permissions(const nlohmann::json& j) {
  std::vector<Permission> out;
  if (!j.is_array()) return out;
  for (const auto& p : j) {
    if (p.is_object() && p.value("action", nlohmann::json()).is_string() &&
        p.value("resource", nlohmann::json()).is_string()) {
      out.push_back({p["action"].get<std::string>(), p["resource"].get<std::string>()});
    }
  }
  return out;
}

}  // namespace

Result<std::vector<InventoryRow>> query_inventory(Db& db, const InventoryFilter& filter) {
  std::string sql =
      "SELECT cluster, token_id, description, permissions, created_at, expires_at, revoked_at, "
      "status, first_seen, last_seen FROM token_inventory WHERE 1";
  if (!filter.cluster.empty()) sql += " AND cluster = ?1";
  if (filter.status) sql += " AND status = ?2";
  sql += " ORDER BY cluster, token_id";
  auto st = db.prepare(sql);
  if (!st.ok()) return st.take_error();
  if (!filter.cluster.empty()) st->bind(1, filter.cluster);
  if (filter.status) st->bind(2, std::string(to_string(*filter.status)));
  std::vector<InventoryRow> rows;
  while (true) {
    auto r = st->step();
    if (!r.ok()) return r.take_error();
    if (!*r) break;
    InventoryRow row;
    row.cluster = st->text(0);
    row.token.id = st->text(1);
    row.token.description = st->text(2);
    auto perms = parse_permissions_json(st->text(3));
    if (perms.ok()) row.token.permissions = std::move(*perms);
    row.token.created_at = parse_optional_timestamp(st->opt_text(4));
    row.token.expires_at = parse_optional_timestamp(st->opt_text(5));
    row.token.revoked_at = parse_optional_timestamp(st->opt_text(6));
    row.status = parse_token_status(st->text(7)).value_or(TokenStatus::kActive);
    row.first_seen = st->text(8);
    row.last_seen = st->text(9);
    rows.push_back(std::move(row));
  }
  return rows;
}

struct InventoryReplay::Impl {
  // Successful polls per cluster (finished_at, ascending): last_seen of present and removed tokens.
  std::unordered_map<std::string, std::vector<std::string>> ok_polls;
  // By cluster '\0' token id.
  std::unordered_map<std::string, InventoryRow> state;

  std::string last_ok_before(const std::string& cluster, const std::string& t, bool inclusive) const {
    auto it = ok_polls.find(cluster);
    if (it == ok_polls.end()) return std::string();
    const auto& v = it->second;
    auto pos = inclusive ? std::upper_bound(v.begin(), v.end(), t) : std::lower_bound(v.begin(), v.end(), t);
    return pos == v.begin() ? std::string() : *(pos - 1);
  }

  TokenStatus status_of(const InventoryRow& row, Timestamp at) const {
    if (row.status == TokenStatus::kActive && row.token.expires_at && *row.token.expires_at <= at) {
      return TokenStatus::kExpired;
    }
    return row.status;
  }

  void apply(std::string cluster, std::string id, std::string_view event, std::string_view detail_text,
             const std::string& recorded_at) {
    std::string key = cluster;
    key += '\0';
    key += id;
    // Events that need no detail first: most of a long history's expiries and removals.
    if (event == "token_expired" || event == "token_removed") {
      auto it = state.find(key);
      if (it == state.end()) return;  // history starts mid-way (should not happen)
      if (event == "token_expired") {
        it->second.status = TokenStatus::kExpired;
      } else {
        it->second.status = TokenStatus::kRemoved;
        it->second.last_seen = last_ok_before(cluster, recorded_at, false);
      }
      return;
    }
    auto detail = nlohmann::json::parse(detail_text, nullptr, false);
    if (detail.is_discarded() || !detail.is_object()) return;
    if (event == "token_discovered" || event == "token_created") {
      InventoryRow row;
      auto old = state.find(key);
      row.first_seen = old != state.end() ? old->second.first_seen : recorded_at;
      row.cluster = std::move(cluster);
      row.token.id = std::move(id);
      row.token.description = detail.value("description", std::string());
      row.token.permissions = json_permissions(detail.value("permissions", nlohmann::json()));
      row.token.created_at = json_time(detail, "created_at");
      row.token.expires_at = json_time(detail, "expires_at");
      row.token.revoked_at = json_time(detail, "revoked_at");
      row.status = parse_token_status(detail.value("status", std::string("active"))).value_or(TokenStatus::kActive);
      state[key] = std::move(row);
      return;
    }
    auto it = state.find(key);
    if (it == state.end()) return;
    InventoryRow& row = it->second;
    if (event == "token_updated") {
      const auto& after = detail.value("after", nlohmann::json::object());
      if (after.contains("description") && after["description"].is_string()) {
        row.token.description = after["description"].get<std::string>();
      }
      if (after.contains("permissions")) row.token.permissions = json_permissions(after["permissions"]);
      if (after.contains("created_at")) row.token.created_at = json_time(after, "created_at");
      if (after.contains("expires_at")) row.token.expires_at = json_time(after, "expires_at");
      if (after.contains("revoked_at")) row.token.revoked_at = json_time(after, "revoked_at");
      auto when = parse_rfc3339(recorded_at);
      row.status = status_at(row.token, when.ok() ? *when : Timestamp::max());
    } else if (event == "token_revoked") {
      row.token.revoked_at = json_time(detail, "revoked_at");
      row.status = TokenStatus::kRevoked;
    }
  }
};

InventoryReplay::InventoryReplay() : impl_(std::make_unique<Impl>()) {}
InventoryReplay::~InventoryReplay() = default;
InventoryReplay::InventoryReplay(InventoryReplay&&) noexcept = default;
InventoryReplay& InventoryReplay::operator=(InventoryReplay&&) noexcept = default;

Status InventoryReplay::run(Db& db, Timestamp until, const std::string& cluster, const std::vector<Timestamp>& samples,
                            const std::function<void(Timestamp)>& on_sample) {
  const std::string until_text = format_timestamp(until);
  {
    auto st = db.prepare(
        "SELECT cluster, finished_at FROM poll_runs WHERE outcome = 'ok' AND finished_at <= ?1 "
        "AND (?2 = '' OR cluster = ?2) ORDER BY id");
    if (!st.ok()) return st.take_error();
    st->bind(1, until_text).bind(2, cluster);
    while (true) {
      auto r = st->step();
      if (!r.ok()) return r.take_error();
      if (!*r) break;
      impl_->ok_polls[st->text(0)].push_back(st->text(1));
    }
    for (auto& [c, v] : impl_->ok_polls) std::sort(v.begin(), v.end());
  }
  auto st = db.prepare(
      "SELECT cluster, token_id, event, detail, recorded_at FROM audit_events "
      "WHERE recorded_at <= ?1 AND (?2 = '' OR cluster = ?2) AND event IN ('token_discovered', "
      "'token_created', 'token_updated', 'token_revoked', 'token_expired', 'token_removed') "
      "ORDER BY seq");
  if (!st.ok()) return st.take_error();
  st->bind(1, until_text).bind(2, cluster);
  std::size_t next_sample = 0;
  std::vector<std::string> sample_text;
  for (auto t : samples) sample_text.push_back(format_timestamp(t));
  while (true) {
    auto r = st->step();
    if (!r.ok()) return r.take_error();
    if (!*r) break;
    std::string recorded_at = st->text(4);
    while (next_sample < samples.size() && samples[next_sample] <= until && recorded_at > sample_text[next_sample]) {
      if (on_sample) on_sample(samples[next_sample]);
      ++next_sample;
    }
    impl_->apply(st->text(0), st->text(1), st->text(2), st->text(3), recorded_at);
  }
  for (; next_sample < samples.size() && samples[next_sample] <= until; ++next_sample) {
    if (on_sample) on_sample(samples[next_sample]);
  }
  return ok_status();
}

std::array<std::int64_t, 4> InventoryReplay::counts(Timestamp at) const {
  std::array<std::int64_t, 4> out{};
  for (const auto& [key, row] : impl_->state) ++out[static_cast<std::size_t>(impl_->status_of(row, at))];
  return out;
}

std::size_t InventoryReplay::size() const { return impl_->state.size(); }

std::vector<InventoryRow> InventoryReplay::rows(Timestamp at, const std::optional<TokenStatus>& status) const {
  const std::string at_text = format_timestamp(at);
  std::vector<InventoryRow> out;
  out.reserve(impl_->state.size());
  for (const auto& [key, r] : impl_->state) {
    TokenStatus s = impl_->status_of(r, at);
    if (status && s != *status) continue;
    InventoryRow row = r;
    row.status = s;
    if (row.status != TokenStatus::kRemoved) row.last_seen = impl_->last_ok_before(row.cluster, at_text, true);
    if (row.last_seen.empty()) row.last_seen = row.first_seen;
    out.push_back(std::move(row));
  }
  std::sort(out.begin(), out.end(), [](const InventoryRow& a, const InventoryRow& b) {
    return a.cluster != b.cluster ? a.cluster < b.cluster : a.token.id < b.token.id;
  });
  return out;
}

Result<std::vector<InventoryRow>> inventory_at(Db& db, Timestamp at, const InventoryFilter& filter) {
  InventoryReplay replay;
  TW_RETURN_IF_ERROR(replay.run(db, at, filter.cluster, {}, {}));
  return replay.rows(at, filter.status);
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
  sql += filter.limit > 0 ? " ORDER BY seq DESC LIMIT " + std::to_string(filter.limit) : " ORDER BY seq";
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
  auto st = db.cached("SELECT finished_at FROM poll_runs WHERE cluster = ? AND outcome = 'ok' ORDER BY id DESC LIMIT 1");
  if (!st.ok()) return st.take_error();
  (*st)->bind(1, cluster);
  auto row = (*st)->step();
  if (!row.ok()) return row.take_error();
  std::optional<Timestamp> out;
  if (*row) out = parse_optional_timestamp((*st)->opt_text(0));
  (*st)->reset();
  return out;
}

}  // namespace tw::storage

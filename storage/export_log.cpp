#include "storage/export_log.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/json_writer.h"
#include "storage/chain.h"
#include "storage/sqlite.h"

namespace tw::storage {

std::string export_line(const AuditRow& row) {
  std::string out;
  out.reserve(row.detail.size() + 320);
  JsonWriter w(out);
  w.begin_object();
  w.field("seq", row.seq);
  w.field("recorded_at", row.recorded_at);
  w.field("cluster", row.cluster);
  w.field("token_id", row.token_id);
  w.field("event", row.event);
  w.field("detail", row.detail);
  w.field("prev_hash", row.prev_hash);
  w.field("hash", row.hash);
  w.end_object();
  return out;
}

Result<AuditRow> parse_export_line(std::string_view line) {
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n' || line.back() == ' ')) {
    line.remove_suffix(1);
  }
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(ErrorCode::kParse, "not a JSON object");
  }
  AuditRow row;
  auto it = j.find("seq");
  if (it == j.end() || !it->is_number_integer() || it->get<std::int64_t>() < 1) {
    return make_error(ErrorCode::kParse, "\"seq\" is missing or not a positive integer");
  }
  row.seq = it->get<std::int64_t>();
  auto text = [&](const char* key, std::string& out) -> bool {
    auto f = j.find(key);
    if (f == j.end() || !f->is_string()) return false;
    out = f->get<std::string>();
    return true;
  };
  auto opt = [&](const char* key, std::optional<std::string>& out) -> bool {
    auto f = j.find(key);
    if (f == j.end()) return false;
    if (f->is_null()) return true;
    if (!f->is_string()) return false;
    out = f->get<std::string>();
    return true;
  };
  if (!text("recorded_at", row.recorded_at)) {
    return make_error(ErrorCode::kParse, "\"recorded_at\" is missing or not a string");
  }
  if (!opt("cluster", row.cluster)) {
    return make_error(ErrorCode::kParse, "\"cluster\" is missing or not a string or null");
  }
  if (!opt("token_id", row.token_id)) {
    return make_error(ErrorCode::kParse, "\"token_id\" is missing or not a string or null");
  }
  for (auto [key, out] : {std::pair<const char*, std::string*>{"event", &row.event},
                          {"detail", &row.detail},
                          {"prev_hash", &row.prev_hash},
                          {"hash", &row.hash}}) {
    if (!text(key, *out)) {
      return make_error(ErrorCode::kParse,
                        std::string("\"") + key + "\" is missing or not a string");
    }
  }
  return row;
}

namespace {

AuditRow row_from(const Stmt& s) {
  AuditRow r;
  r.seq = s.int64(0);
  r.recorded_at = s.text(1);
  r.cluster = s.opt_text(2);
  r.token_id = s.opt_text(3);
  r.event = s.text(4);
  r.detail = s.text(5);
  r.prev_hash = s.text(6);
  r.hash = s.text(7);
  return r;
}

}  // namespace

Result<std::vector<AuditRow>> read_rows_after(Db& db, std::int64_t after_seq, std::int64_t limit) {
  auto st = db.cached(
      "SELECT seq, recorded_at, cluster, token_id, event, detail, prev_hash, hash "
      "FROM audit_events WHERE seq > ?1 ORDER BY seq LIMIT ?2");
  if (!st.ok()) return st.take_error();
  Stmt& s = **st;
  s.bind(1, after_seq).bind(2, limit);
  std::vector<AuditRow> rows;
  while (true) {
    auto r = s.step();
    if (!r.ok()) return r.take_error();
    if (!*r) break;
    rows.push_back(row_from(s));
  }
  s.reset();
  return rows;
}

Result<ChainHead> read_chain_head(Db& db) {
  auto st = db.cached("SELECT seq, hash FROM chain_head WHERE id = 1");
  if (!st.ok()) return st.take_error();
  Stmt& s = **st;
  auto r = s.step();
  if (!r.ok()) return r.take_error();
  ChainHead head{0, std::string(kGenesisHash)};
  if (*r) head = ChainHead{s.int64(0), s.text(1)};
  s.reset();
  return head;
}

Result<std::optional<std::string>> read_event_hash(Db& db, std::int64_t seq) {
  auto st = db.cached("SELECT hash FROM audit_events WHERE seq = ?1");
  if (!st.ok()) return st.take_error();
  Stmt& s = **st;
  s.bind(1, seq);
  auto r = s.step();
  if (!r.ok()) return r.take_error();
  std::optional<std::string> hash;
  if (*r) hash = s.text(0);
  s.reset();
  return hash;
}

Result<std::optional<Timestamp>> first_recorded_after(Db& db, std::int64_t after_seq) {
  auto st = db.cached("SELECT recorded_at FROM audit_events WHERE seq > ?1 ORDER BY seq LIMIT 1");
  if (!st.ok()) return st.take_error();
  Stmt& s = **st;
  s.bind(1, after_seq);
  auto r = s.step();
  if (!r.ok()) return r.take_error();
  std::optional<Timestamp> t;
  if (*r) {
    auto parsed = parse_rfc3339(s.view(0));
    if (parsed.ok()) t = *parsed;
  }
  s.reset();
  return t;
}

namespace {

constexpr const char* kCursorColumns =
    "SELECT name, target, delivered_seq, delivered_at, sent_seq, sent_at FROM export_cursors";

ExportCursor cursor_from(const Stmt& s) {
  ExportCursor c;
  c.name = s.text(0);
  c.target = s.text(1);
  c.delivered_seq = s.int64(2);
  if (!s.is_null(3)) c.delivered_at = Timestamp(Duration(s.int64(3)));
  c.sent_seq = std::max(s.int64(4), c.delivered_seq);
  if (!s.is_null(5)) c.sent_at = Timestamp(Duration(s.int64(5)));
  return c;
}

}  // namespace

Result<std::optional<ExportCursor>> read_export_cursor(Db& db, const std::string& name) {
  auto st = db.cached(std::string(kCursorColumns) + " WHERE name = ?1");
  if (!st.ok()) return st.take_error();
  Stmt& s = **st;
  s.bind(1, name);
  auto r = s.step();
  if (!r.ok()) return r.take_error();
  std::optional<ExportCursor> c;
  if (*r) c = cursor_from(s);
  s.reset();
  return c;
}

Result<std::vector<ExportCursor>> read_export_cursors(Db& db) {
  auto st = db.prepare(std::string(kCursorColumns) + " ORDER BY name");
  if (!st.ok()) return st.take_error();
  std::vector<ExportCursor> out;
  while (true) {
    auto r = st->step();
    if (!r.ok()) return r.take_error();
    if (!*r) break;
    out.push_back(cursor_from(*st));
  }
  return out;
}

Status write_export_cursor(Db& db, const ExportCursor& cursor) {
  auto st = db.cached(
      "INSERT INTO export_cursors(name, target, delivered_seq, delivered_at, sent_seq, sent_at) "
      "VALUES (?1, ?2, ?3, ?4, max(?3, ?5), ?6) ON CONFLICT(name) DO UPDATE SET "
      "target = excluded.target, "
      "delivered_at = CASE WHEN excluded.delivered_seq > delivered_seq "
      "THEN excluded.delivered_at ELSE delivered_at END, "
      "delivered_seq = max(delivered_seq, excluded.delivered_seq), "
      "sent_at = CASE WHEN excluded.sent_seq > sent_seq THEN excluded.sent_at ELSE sent_at END, "
      "sent_seq = max(sent_seq, excluded.sent_seq)");
  if (!st.ok()) return st.take_error();
  Stmt& s = **st;
  auto ms = [](const std::optional<Timestamp>& t) {
    return t ? std::optional<std::int64_t>(t->time_since_epoch().count()) : std::nullopt;
  };
  s.bind(1, cursor.name).bind(2, cursor.target).bind(3, cursor.delivered_seq);
  s.bind(5, cursor.sent_seq);
  for (auto [index, value] :
       {std::pair{4, ms(cursor.delivered_at)}, std::pair{6, ms(cursor.sent_at)}}) {
    if (value) {
      s.bind(index, *value);
    } else {
      s.bind_null(index);
    }
  }
  return s.run();
}

}  // namespace tw::storage

#pragma once
// The audit log outside the database (docs/database.md "Export format"): one JSON line per
// event, and the export sinks' durable cursors.
//
// An export line is a JSON object with exactly the chain's columns, in this order:
//   {"seq":N,"recorded_at":"…","cluster":"…"|null,"token_id":"…"|null,"event":"…",
//    "detail":"<the stored detail text, as a JSON string>","prev_hash":"…","hash":"…"}
// detail is a string (not an object) so that its exact bytes survive every JSON parser: that is
// what the hash covers. The line never holds a newline; the file sink writes it followed by
// "\n", the syslog sink sends it as the message (MSG) of one RFC 5424 record.
//
// Thread safety: pure functions; the database functions use the Db from one thread.
// Errors: parse_export_line fails with kParse and one sentence; the database functions with
// kDatabase.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/time.h"
#include "storage/queries.h"

namespace tw::storage {

class Db;

std::string export_line(const AuditRow& row);
// Surrounding whitespace (a collector's leading space, a "\r") is ignored.
Result<AuditRow> parse_export_line(std::string_view line);

// Up to `limit` rows with seq > after_seq, in seq order.
Result<std::vector<AuditRow>> read_rows_after(Db& db, std::int64_t after_seq, std::int64_t limit);

// The audit log's last seq and hash (chain_head); seq 0 and the genesis hash when empty.
struct ChainHead {
  std::int64_t seq = 0;
  std::string hash;
};
Result<ChainHead> read_chain_head(Db& db);

// The hash of the event `seq`, if the audit log holds it (a sink's resume point is checked so).
Result<std::optional<std::string>> read_event_hash(Db& db, std::int64_t seq);

// recorded_at of the first event after `after_seq` (the oldest not yet delivered), if any.
Result<std::optional<Timestamp>> first_recorded_after(Db& db, std::int64_t after_seq);

// A sink's cursor: the last seq it delivered. `target` describes where it delivers
// (type and address or path, no secrets) so an operator can see what the cursor refers to.
struct ExportCursor {
  std::string name;
  std::string target;
  std::int64_t delivered_seq = 0;         // settled: a restart resumes after it
  std::optional<Timestamp> delivered_at;  // when delivered_seq last advanced
  std::int64_t sent_seq = 0;              // accepted by the sink (>= delivered_seq)
  std::optional<Timestamp> sent_at;       // when sent_seq last advanced
};
Result<std::optional<ExportCursor>> read_export_cursor(Db& db, const std::string& name);
Result<std::vector<ExportCursor>> read_export_cursors(Db& db);
// Inserts or updates (in its own short write transaction; neither seq ever moves back).
Status write_export_cursor(Db& db, const ExportCursor& cursor);

}  // namespace tw::storage

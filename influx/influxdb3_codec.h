#pragma once
// The codec of InfluxDB 3 Core/Enterprise's token table (type `influxdb3`, docs/sources.md): the
// body of `GET /api/v3/query_sql?db=_internal&q=SELECT * FROM system.tokens&format=json`.
//
// A row (arrow-json, null columns omitted; an empty table is `[]`):
//   {"token_id": 7, "name": "grafana", "hash": "1a2b3c4d5"?, "created_at":
//   "2025-04-18T14:02:45.331",
//    "description": "…"?, "created_by_token_id": 0?, "updated_at": "…"?, "updated_by_token_id": 0?,
//    "expiry": "2026-04-18T14:02:45"?, "permissions": "db:a,b:read,write"}
// becomes a Token: id = token_id in decimal; description = name, or "name (description)"; times
// without a zone read as UTC (one with a zone, should a version send it, is honoured); expiry
// absent or null = never; revoked_at never set (the server deletes, it does not revoke);
// permissions parsed from the string (parse_influxdb3_permissions). A placeholder created_at
// (core/time_anomaly.h) reads as unset and is reported as an anomaly.
//
// Strict like decode_token_list: the body must be one JSON array of objects, each with a
// non-negative integer token_id, a non-empty string name and a permissions string; no id and no
// name may repeat (tokens are deleted by name). Anything else fails the whole list.
//
// Thread safety: pure functions. Errors: kParse, one sentence naming the row and the column.

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/token.h"
#include "influx/codec.h"

namespace tw::influx {

// The action that marks an admin token (`*:*:*`): it holds every permission on every resource.
inline constexpr std::string_view kAdminAction = "admin";

struct Influxdb3Rows {
  DecodedList list;                // the tokens, in row order
  std::vector<std::string> names;  // names[i] is the name of list.tokens[i]
};

Result<Influxdb3Rows> decode_influxdb3_rows(std::string_view body);

// The permissions column: RESOURCE_TYPE:NAMES:ACTIONS, several joined by ';' (Enterprise lists a
// token's permissions so [inferred]); surrounding spaces ignored; "" is no permission.
//   "*:*:*"               -> admin, read and write on "*" (an admin token: all-databases grants)
//   "db:a,b:read,write"   -> read and write on a and on b; "db:*:read" -> read on "*"
//   "db:a:*"              -> read and write on a
//   "system:health:read"  -> read on "system:health" (TYPE:NAME: not a database, see
//                            is_database_resource); likewise any other lower-case type
//   "system:health:*"     -> "*" on "system:health" (only a database's "*" expands)
// Errors (kParse): a part without exactly three fields, an empty type, name or action, a type or
// action that is not lower-case letters and '_' (or "*"), "*" mixed with names, any other "*" type.
Result<std::vector<Permission>> parse_influxdb3_permissions(std::string_view text);

}  // namespace tw::influx

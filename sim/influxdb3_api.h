#pragma once
// The simulator's InfluxDB 3 Core/Enterprise flavour (Flavor::kInfluxdb3, docs/simulator.md):
//
//   GET    /api/v3/query_sql?db=_internal&q=SELECT * FROM system.tokens[ WHERE token_id = N]
//          [&format=json]                      200, the token table (real-behaviour.md §A6)
//   DELETE /api/v3/configure/token?token_name=N   200 (the token is deleted); 404 unknown name;
//                                                 405 for the operator token `_admin`
//   POST   /api/v3/configure/token/admin           201, creates the operator token `_admin`
//   POST   /api/v3/configure/token/named_admin     201, {"token_name","expiry_secs"}: an admin
//   token POST   /api/v3/enterprise/configure/token      201,
//   {"token_name","permissions":[{"resource_type",
//                                                  "resource_names","actions"}],"expiry_secs"}
//
// Rows: token_id as a number (a non-numeric id seeded through the control API is sent as a string,
// as a misbehaving server would), name (the store keeps it as the description), hash (9 hex
// characters; left out with SimOptions::without_auth), created_at and expiry as zone-less UTC times
// (".mmm" only when the milliseconds are not zero; expiry left out when the token never expires),
// permissions as one string. Revoked tokens (seeded through the control API) are not listed: this
// server has no revoked state. Errors are {"error": …} (auth, bad requests) or plain text (not
// found, operator token), as InfluxDB 3 answers them; faults are the common ones (fault.h).
//
// Thread safety: as Service::handle. Errors: HTTP responses.

#include <string>
#include <vector>

#include "core/token.h"
#include "sim/service.h"

namespace tw::sim {

SimResponse influxdb3_management(const SimRequest& request, const std::string& path,
                                 AuthResult auth, TokenStore& store, const SimOptions& options);
// The `ignore` fault: the answer the request would get, with the tokens left as they were.
SimResponse influxdb3_acknowledge_without_effect(const SimRequest& request, const std::string& path,
                                                 AuthResult auth, TokenStore& store,
                                                 const SimOptions& options);

// The table body for `tokens` (JSON array of rows, compact, `[]` when empty).
std::string influxdb3_rows_json(const std::vector<Token>& tokens, bool with_hash);
// The permissions column for a token: "*:*:*" if it holds the admin action, else "db:…" parts
// (databases with the same actions grouped) and "TYPE:…" parts for TYPE:NAME resources, joined
// by ';'. "" when there is none.
std::string influxdb3_permission_string(const std::vector<Permission>& permissions);
// A zone-less time as arrow-json renders timestamp(ms): "2025-04-18T14:02:45.331" or
// "2025-04-18T14:02:45" when the milliseconds are zero.
std::string influxdb3_time(Timestamp t);

}  // namespace tw::sim

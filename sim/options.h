#pragma once
// Options of the simulated InfluxDB management service (tokenwarden-sim, SPEC §7).
//
// Thread safety: plain value types. Errors: SimServer::start validates the options and reports
// the first problem as kInvalidArgument.

#include <cstdint>
#include <string>

#include "core/log.h"

namespace tw::sim {

// Which management API the simulator speaks (reference §2.1).
//   kClustered: /api/v0/tokens[/{id}] and also /api/v0/accounts/{a}/clusters/{c}/tokens[/{id}]
//               with any UUIDs; token objects carry no accountId/clusterId.
//   kDedicated: only /api/v0/accounts/{account_id}/clusters/{cluster_id}/tokens[/{id}] with the
//               configured ids (others answer 404); token objects carry accountId and clusterId.
//   kInfluxdb3: InfluxDB 3 Core/Enterprise (docs/simulator.md): the token table through
//               GET /api/v3/query_sql, DELETE /api/v3/configure/token?token_name=N and the
//               token-creating POSTs; numeric token ids; no revoked state (deletion removes).
enum class Flavor { kClustered, kDedicated, kInfluxdb3 };

const char* to_string(Flavor flavor);

struct SimOptions {
  Flavor flavor = Flavor::kClustered;
  std::string listen_host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: the system picks a free port (see SimServer::port)
  // The accepted Bearer token. Ignored when token_file is set.
  std::string management_token;
  // Holds the accepted Bearer token (surrounding whitespace ignored); re-read on every request so
  // that a test can rotate it. An unreadable or empty file makes every request 401.
  std::string token_file;
  // Dedicated only (UUIDs). Random UUIDs are generated when empty.
  std::string account_id;
  std::string cluster_id;
  // Both set: HTTPS only (PEM certificate chain and private key). Both empty: plain HTTP.
  std::string tls_cert_file;
  std::string tls_key_file;
  // false: GET …/tokens leaves revoked tokens out (GET …/tokens/{id} still returns them).
  bool list_includes_revoked = true;
  // kInfluxdb3 only: the server runs without authentication (`influxdb3 serve --without-auth`):
  // every request is accepted and the token table has no `hash` column.
  bool without_auth = false;
  // The "real" clock of the simulated clock (tests inject a ManualClock); nullptr: the system
  // clock. Must outlive the server.
  const Clock* clock = nullptr;
  // One line per request (method, path, status, fault) at info level; never a token.
  Logger logger = null_logger();
};

}  // namespace tw::sim

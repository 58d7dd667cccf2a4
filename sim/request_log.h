#pragma once
// One entry of the simulator's request log (control API: GET /_sim/requests).
//
// Only management requests are logged, never /_sim/ ones; an entry never holds the
// Authorization header or any token. TokenStore keeps the last kMaxRequestRecords entries.
//
// Thread safety: plain value types.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "core/time.h"
#include "sim/fault.h"

namespace tw::sim {

inline constexpr std::size_t kMaxRequestRecords = 100'000;

enum class AuthResult { kOk, kMissing, kInvalid };
const char* to_string(AuthResult auth);

// One management request as the request log keeps it (never the Authorization header).
struct RequestRecord {
  std::uint64_t seq = 0;  // assigned by TokenStore::record(), from 1
  Timestamp time;         // simulated time
  std::string method;
  std::string path;   // without the query string
  std::string query;  // the raw query string (after '?'), "" if none
  int status = 0;     // 0: no answer was sent (timeout and reset faults)
  AuthResult auth = AuthResult::kMissing;
  std::optional<FaultKind> fault;
  std::optional<std::string> body;  // POST/PATCH request bodies (cut at 64 KiB)
};

}  // namespace tw::sim

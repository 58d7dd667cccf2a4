#pragma once
// Injected faults of the simulator's management API (control API: /_sim/faults).
//
// A fault matches management requests (never /_sim/ ones) by optional method and optional path
// substring; the first matching fault in insertion order applies and uses up one of its `count`
// (0 = applies until cleared). What each kind does on the wire:
//   status     answer `status` with the spec's error body {"code","message"}; the request is
//              not carried out
//   timeout    read the request, never answer; hold the connection until the client goes away,
//              `delay` passes (default 10 minutes) or the server stops; not carried out
//   slow       carry out the request and trickle the correct body out over `delay`
//   truncate   carry out the request; send the full Content-Length but about half the body, close
//   malformed  200 with a body that is not JSON; not carried out
//   empty      200 with `[]`; not carried out
//   reset      close the connection (TCP reset) without answering; not carried out
//   ignore     answer exactly as if the request was carried out (204 to a DELETE, 200 and the
//              updated token to a PATCH) but leave the token as it was: a cluster that
//              acknowledges a change it did not make
//   redirect   answer `status` (301, 302, 303, 307 or 308; default 302) with a `Location` header
//              of `location` (an absolute URL or a path, sent as given); not carried out
// For `status`, `malformed`, `empty` and `redirect`, a non-zero `delay` is waited before
// answering. A `status` fault with `retry_after` also sends it as the Retry-After header (a
// number of seconds or any text, e.g. an HTTP-date, sent as given).
// A `status` fault with `echo_auth` ("exact", "upper" or "lower") quotes the request's
// Authorization header in its message, in that letter case, as a careless proxy might.
//
// Thread safety: plain value types. Errors: parse_fault_kind returns nullopt for unknown names.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/time.h"

namespace tw::sim {

enum class FaultKind {
  kStatus,
  kTimeout,
  kSlow,
  kTruncate,
  kMalformed,
  kEmpty,
  kReset,
  kIgnore,
  kRedirect
};

const char* to_string(FaultKind kind);
std::optional<FaultKind> parse_fault_kind(std::string_view name);
// "status, timeout, slow, truncate, malformed, empty, reset, ignore, redirect" (for error
// messages and help).
const char* fault_kind_names();

inline constexpr Duration kDefaultTimeoutHold = std::chrono::minutes(10);

struct FaultSpec {
  FaultKind kind = FaultKind::kStatus;
  int status = 500;         // kStatus only
  Duration delay{0};        // see above
  std::uint64_t count = 0;  // matching requests affected; 0 = until cleared
  std::string method;       // empty: any method (compared case-insensitively)
  std::string path;         // empty: any path; else a substring of the request path, or with a
                            // trailing '$' a suffix ("/tokens$": the list, not one token)
  std::string echo_auth;    // kStatus only: "", "exact", "upper" or "lower" (see above)
  std::string retry_after;  // kStatus only: the Retry-After header's value; empty: none
  std::string location;     // kRedirect only: the Location header's value
};

struct Fault {
  std::uint64_t id = 0;
  FaultSpec spec;
  std::uint64_t hits = 0;  // requests affected so far
};

// Whether `spec` applies to a management request (path without the query string).
bool fault_matches(const FaultSpec& spec, std::string_view method, std::string_view path);

}  // namespace tw::sim

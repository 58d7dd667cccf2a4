#pragma once
// The simulator's request handler: a plain function of request -> response, without sockets.
//
// Management API (/api/v0/…, Bearer auth, faults, request log) and control API (/_sim/…, no
// auth, never faulted or logged). The response tells the connection layer which fault to act
// out on the wire (see fault.h); everything else is an ordinary HTTP response.
//
// Thread safety: handle() may be called from several threads (state lives in the TokenStore).
// Errors: every failure is an HTTP response with a {"code","message"} JSON body.

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sim/fault.h"
#include "sim/options.h"
#include "sim/token_store.h"

namespace tw::sim {

inline constexpr std::size_t kMaxRequestBody = std::size_t{1} << 20;  // larger: 413

struct SimRequest {
  std::string method;
  std::string target;                        // path and optional query string
  std::optional<std::string> authorization;  // the Authorization header, if sent
  std::string body;
  bool body_too_large = false;  // the body exceeded kMaxRequestBody and was not read
};

struct SimResponse {
  int status = 200;
  std::shared_ptr<const std::string> body;                   // null: no body (204)
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type/-Length
  std::optional<FaultKind> fault;  // kTimeout, kSlow, kTruncate, kReset: act it out
  Duration delay{0};               // wait (or trickle, or hold) this long
};

class Service {
 public:
  // `options` must be validated (SimServer::start does it); `store` must outlive the service.
  Service(SimOptions options, TokenStore& store);

  SimResponse handle(const SimRequest& request);

  const SimOptions& options() const { return options_; }

 private:
  SimResponse management(const SimRequest& request, const std::string& path, AuthResult auth);
  SimResponse acknowledge_without_effect(const SimRequest& request, const std::string& path,
                                         AuthResult auth);
  SimResponse control(const SimRequest& request, const std::string& path);
  AuthResult check_auth(const std::optional<std::string>& header) const;

  SimOptions options_;
  TokenStore& store_;
};

}  // namespace tw::sim

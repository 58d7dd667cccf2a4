#pragma once
// A blocking HTTP/1.1 client with a deadline, for the Management API (Boost.Beast + OpenSSL).
//
// Each call opens one connection (plain TCP or TLS with peer and host-name verification against
// the system CAs or `ca_file`), sends one request and reads one response, all within `timeout`
// measured from the start of the call; every step (resolve, connect, handshake, write, read) has
// that deadline. The body is capped at `max_body_bytes`: a larger Content-Length is refused
// before reading, and a chunked or close-delimited body is read in pieces and refused as soon as
// it passes the cap, so memory stays bounded by it. Interim 1xx responses (100 Continue) are
// skipped. Redirects are not followed (a Bearer token must never be sent to another origin).
// The call returns early with kCancelled when `*cancel` becomes true.
//
// Thread safety: http_request is reentrant; each call runs its own I/O context.
// Errors: kNetwork, kTimeout, kCancelled or kInvalidArgument, one sentence naming the URL and
// the step that failed. Request headers (which carry the token) never appear in messages.

#include <atomic>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"
#include "core/time.h"

namespace tw::influx {

struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;
  std::string port;    // always set ("80"/"443" by default)
  std::string path;    // without trailing '/', may be empty
  bool tls() const { return scheme == "https"; }
  // host[:port] as in a Host header: IPv6 literals in brackets, default ports left out.
  std::string authority() const;
  // scheme://host[:port]path — for messages; never contains credentials.
  std::string to_string() const;
};

// Parses http(s)://host[:port][/path]. Rejects credentials in the URL, queries and fragments.
Result<Url> parse_url(std::string_view text);

struct HttpRequest {
  std::string method = "GET";
  std::string target;  // absolute path, appended to Url::path
  std::string body;    // sent with Content-Type: application/json when non-empty
  std::vector<std::pair<std::string, std::string>> headers;
};

struct HttpResponse {
  int status = 0;
  std::string body;
  std::string content_type;
};

struct HttpOptions {
  std::string ca_file;  // PEM bundle; empty: system CAs
  Duration timeout = std::chrono::seconds(10);
  std::size_t max_body_bytes = std::size_t{512} << 20;
  const std::atomic<bool>* cancel = nullptr;
};

Result<HttpResponse> http_request(const Url& base, const HttpRequest& request,
                                  const HttpOptions& options);

std::string_view http_reason(int status);

}  // namespace tw::influx

#pragma once
// A blocking HTTP/1.1 client with a deadline, for the Management API (Boost.Beast + OpenSSL).
//
// Each call opens one connection per request (plain TCP or TLS with peer and host-name
// verification against the system CAs or `ca_file`), all within `timeout` measured from the
// start of the call; every step (resolve, connect, handshake, write, read) has that deadline. The
// body is capped at `max_body_bytes`: a larger Content-Length is refused before reading, and a
// chunked or close-delimited body is read in pieces and refused as soon as it passes the cap, so
// memory stays bounded by it. Interim 1xx responses (100 Continue) are skipped.
//
// Redirects (301, 302, 303, 307, 308) are followed within the same origin only — scheme, host
// and port equal, default ports normalised — at most `max_redirects` hops, all within the one
// deadline. The Location (absolute URL, absolute path or relative reference) replaces the whole
// request path, the base path of the URL included. 307/308 repeat the method and body; 301,
// 302 and 303 are followed for GET and HEAD (303 turns anything else into GET, so it and 301/302
// of any other method are refused: a revocation or update is never silently turned into a read
// nor repeated where the server did not ask for it). A redirect to another origin (another host
// or port, or http to https) is refused before anything is sent there, so the Authorization
// header (the management token) never leaves the configured origin.
//
// Retry-After (delta-seconds or an IMF-fixdate HTTP-date, the latter measured from the
// response's Date header when there is one) is parsed into HttpResponse::retry_after, capped at
// kMaxRetryAfter; an unreadable value is ignored.
// The call returns early with kCancelled when `*cancel` becomes true.
//
// Thread safety: http_request is reentrant; each call runs its own I/O context.
// Errors: kNetwork, kTimeout, kCancelled or kInvalidArgument, one sentence naming the URL and
// the step that failed; a refused redirect is kHttpStatus with the 3xx status. Request headers
// (which carry the token) never appear in messages.

#include <atomic>
#include <cstddef>
#include <optional>
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
  std::string port;  // always set ("80"/"443" by default)
  std::string path;  // without trailing '/', may be empty
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

// A server asking for a longer wait is taken to mean this long (a proxy's "Retry-After: 86400"
// must not silence a cluster's monitoring for a day).
inline constexpr Duration kMaxRetryAfter = std::chrono::hours(1);

struct HttpResponse {
  int status = 0;
  std::string body;
  std::string content_type;
  std::string location;                 // the Location header, as sent
  std::optional<Duration> retry_after;  // Retry-After, at most kMaxRetryAfter
  bool next_page = false;               // a Link header names a rel="next" page (RFC 8288)
  std::string redirected_to;            // the URL that answered, if redirects were followed
};

struct HttpOptions {
  std::string ca_file;  // PEM bundle; empty: system CAs
  // A client certificate (PEM chain) and its key, for servers that authenticate clients (etcd).
  std::string cert_file;
  std::string key_file;
  Duration timeout = std::chrono::seconds(10);
  std::size_t max_body_bytes = std::size_t{512} << 20;
  const std::atomic<bool>* cancel = nullptr;
  int max_redirects = 3;         // same-origin hops followed; 0: a 3xx is returned as is
  const Clock* clock = nullptr;  // "now" for an HTTP-date Retry-After; null: the system clock
};

Result<HttpResponse> http_request(const Url& base, const HttpRequest& request,
                                  const HttpOptions& options);

std::string_view http_reason(int status);

// A Retry-After value as a wait from `now`: delta-seconds, or an IMF-fixdate measured from
// `date` (the response's Date header) if that parses, else from `now`. Negative waits are 0,
// long ones kMaxRetryAfter; nullopt if the value is neither form.
std::optional<Duration> parse_retry_after(std::string_view value, std::string_view date,
                                          Timestamp now);
// An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", RFC 9110 §5.6.7); nullopt otherwise.
std::optional<Timestamp> parse_http_date(std::string_view text);

}  // namespace tw::influx

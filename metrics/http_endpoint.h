#pragma once
// The daemon's HTTP endpoint (SPEC §5): GET /metrics, /healthz, /readyz, served by Boost.Beast on
// its own thread, so no client — slow, malformed or many — can stall polling.
//
// Bounded: request headers at most 8 KiB and no body; each request must arrive within
// `request_timeout`; idle keep-alive connections close after `idle_timeout`; at most
// `max_connections` at once: at the cap, a new connection closes the one that has waited
// longest for a request (so idle clients cannot lock scrapers out), and is itself refused only
// when every connection is busy answering. Anything but GET/HEAD is 405, unknown paths 404.
// Optional web config, as Prometheus exporters offer: TLS (certificate and key, optional client
// CA for mutual TLS) and basic-auth users with bcrypt hashes (verified with libcrypt; a
// successful check is cached for 5 minutes so scrapes do not pay bcrypt's cost each time).
//
// Thread safety: start/stop from one thread; the handlers are called on the endpoint's thread
// and must be thread-safe. Errors: start() fails with one sentence (bad address, port in use,
// TLS files that do not load).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/log.h"
#include "core/result.h"
#include "core/time.h"

namespace tw::metrics {

struct WebConfig {
  std::string tls_cert_file;  // both set: HTTPS only
  std::string tls_key_file;
  std::string tls_client_ca_file;            // set: clients must present a certificate signed by it
  std::map<std::string, std::string> users;  // name -> bcrypt hash ($2b$/$2y$/$2a$); empty: no auth
  bool tls() const { return !tls_cert_file.empty(); }
};

struct ReadyState {
  bool ready = false;
  std::vector<std::string> reasons;  // why not ready (one sentence each)
};

struct EndpointHandlers {
  std::function<std::string()> metrics;  // text exposition
  std::function<bool()> healthy;         // the event loop is running
  std::function<ReadyState()> ready;
};

struct EndpointOptions {
  std::string listen = "127.0.0.1:9464";  // host:port; port 0 picks one
  WebConfig web;
  std::size_t max_connections = 64;
  Duration request_timeout = std::chrono::seconds(5);
  Duration idle_timeout = std::chrono::seconds(5);  // keep-alive, between requests
};

struct Request {
  std::string method;
  std::string target;
  std::string authorization;  // the Authorization header, if any
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  bool ask_for_credentials = false;  // adds WWW-Authenticate
  std::string allow;                 // the Allow header of a 405
};

// Checks basic-auth credentials against bcrypt hashes, with a cache of recent successes.
class Authenticator {
 public:
  explicit Authenticator(std::map<std::string, std::string> users);
  ~Authenticator();
  bool enabled() const;
  // `header`: the Authorization header value ("Basic base64(user:pass)").
  bool check(const std::string& header);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Loads the web config's TLS certificate, key (which must match it) and client CA as start()
// does, and drops them: check-config and a reload find bad PEM files before a start fails on them.
Status check_tls_files(const WebConfig& web);

// The request handler as a plain function of the request (tests call it directly).
Response handle_request(const Request& request, const EndpointHandlers& handlers,
                        Authenticator* auth);

class HttpEndpoint {
 public:
  static Result<std::unique_ptr<HttpEndpoint>> start(EndpointOptions options,
                                                     EndpointHandlers handlers, Logger log);
  ~HttpEndpoint();
  std::uint16_t port() const;
  std::string url() const;  // http(s)://host:port
  void stop();

 private:
  struct Impl;
  explicit HttpEndpoint(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tw::metrics

#pragma once
// SimServer: the simulated InfluxDB management service on a socket (HTTP or HTTPS).
//
// start() validates the options, binds (port 0 picks a free port) and serves on its own I/O
// thread until stop() or destruction. Requests go to a Service (service.h); the server only
// reads requests (bodies over 1 MiB answer 413) and writes responses, acting out faults.
// stop() closes the listener and idle or faulted connections at once, lets responses being
// written finish (at most 2 seconds), then joins the thread.
//
// Thread safety: all methods are thread-safe; store() gives direct thread-safe access to the
// state for in-process use (tests, benchmarks).
// Errors: start() returns kInvalidArgument (options, TLS files) or kNetwork (bind).

#include <cstdint>
#include <memory>
#include <string>

#include "core/result.h"
#include "sim/options.h"
#include "sim/token_store.h"

namespace tw::sim {

class SimServer {
 public:
  static Result<std::unique_ptr<SimServer>> start(SimOptions options);
  ~SimServer();  // stops and joins
  SimServer(const SimServer&) = delete;
  SimServer& operator=(const SimServer&) = delete;

  std::uint16_t port() const;
  // "http://127.0.0.1:PORT" ("https://…" with TLS): where /_sim/ lives.
  std::string root_url() const;
  // What a tokenwarden cluster's `url` is: root_url() + "/api/v0" (Clustered, Dedicated), or
  // root_url() (influxdb3: the server's base URL).
  std::string base_url() const;
  // The token collection: base_url() + "/tokens" (Clustered),
  // base_url() + "/accounts/{account_id}/clusters/{cluster_id}/tokens" (Dedicated), or
  // root_url() + "/api/v3/query_sql" (influxdb3).
  std::string tokens_url() const;
  // The effective flavour and Dedicated ids (generated when not given; empty for Clustered).
  Flavor flavor() const;
  const std::string& account_id() const;
  const std::string& cluster_id() const;

  TokenStore& store();
  void stop();

 private:
  struct Impl;
  explicit SimServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tw::sim

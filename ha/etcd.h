#pragma once
// ha::Coordination over etcd's v3 API through its JSON gateway (POST /v3/lease/grant,
// /v3/lease/keepalive, /v3/lease/revoke, /v3/kv/range, /v3/kv/put, /v3/kv/txn; etcd 3.4 and
// later), one HTTP(S) request per call with influx/http_client.h.
//
// Endpoints: the call goes to the endpoint that answered last; a connection failure, a timeout or
// a 5xx moves on to the next one, all within the one per-call deadline (`timeout`), so a call
// never takes longer than that whatever the state of the cluster. TLS verifies the server against
// `ca_file` (system CAs when empty) and its host name; `cert_file`/`key_file` authenticate us
// (etcd maps the certificate's CN to a user when --client-cert-auth is on).
// Keys and values travel base64-encoded as the gateway wants them; revisions and lease ids are
// int64 carried as JSON strings.
//
// Thread safety: every call is independent (reentrant); the sticky endpoint is atomic.
// Errors: kNetwork/kTimeout (no endpoint answered in time), kHttpStatus (etcd refused: its own
// message, e.g. "etcdserver: requested lease not found"), kParse (an answer we could not read).
// Messages name the endpoint and the call, never a key's value.

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/time.h"
#include "ha/coordination.h"
#include "influx/http_client.h"

namespace tw::ha {

struct EtcdOptions {
  std::vector<influx::Url> endpoints;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // etcd RBAC (auth enabled): log in as `username` (POST /v3/auth/authenticate) and send the
  // token etcd gives in the Authorization header; log in again when etcd says it expired. The
  // password and the token never appear in a message.
  std::string username;
  std::string password;
  Duration timeout = std::chrono::seconds(5);  // per call, all endpoints included
};

// Counts calls by kind (keepalive, grant, revoke, campaign, put, txn, range, get) and outcome,
// for tokenwarden_ha_etcd_requests_total. May be null.
class CallObserver {
 public:
  virtual ~CallObserver() = default;
  virtual void etcd_call(const char* op, bool ok) = 0;
};

class EtcdCoordination final : public Coordination {
 public:
  explicit EtcdCoordination(EtcdOptions options, CallObserver* observer = nullptr);

  Result<Lease> grant(Duration ttl) override;
  Result<Renewal> keep_alive(LeaseId lease) override;
  Status revoke(LeaseId lease) override;
  Result<Campaign> campaign(const std::string& key, const std::string& value,
                            LeaseId lease) override;
  Status put(const std::string& key, const std::string& value, LeaseId lease) override;
  Result<FencedWrite> put_fenced(const std::string& key, const std::string& value,
                                 const std::string& fence_key,
                                 std::int64_t fence_revision) override;
  Result<Range> range_prefix(const std::string& prefix, std::int64_t min_mod_revision) override;
  Result<std::optional<KeyValue>> get(const std::string& key) override;

  // The JSON bodies, for tests.
  static std::string campaign_body(const std::string& key, const std::string& value, LeaseId lease);
  static std::string fenced_put_body(const std::string& key, const std::string& value,
                                     const std::string& fence_key, std::int64_t fence_revision);
  // The range_end that selects every key starting with `prefix` (etcd's prefix convention).
  static std::string prefix_end(const std::string& prefix);

 private:
  // POSTs `body` to `path`; returns the answer's body (2xx) or an error naming the call. With a
  // username, logs in first if needed and once more if etcd refuses the token as invalid.
  Result<std::string> call(const char* op, const char* path, const std::string& body);
  Result<std::string> call_once(const char* op, const char* path, const std::string& body,
                                const std::string& auth_token);
  Result<std::string> auth_token(bool renew);

  EtcdOptions options_;
  CallObserver* observer_;
  std::atomic<std::size_t> current_{0};
  std::mutex auth_mu_;
  std::string token_;  // the login's token ("" before the first)
};

}  // namespace tw::ha

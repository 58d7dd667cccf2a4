#pragma once
// The cluster behind interfaces: TokenSource lists tokens, TokenActuator revokes or restricts.
//
// Implementations: the REST Management API (clustered, dedicated), the influxctl runner and
// InfluxDB 3 Core/Enterprise (influxdb3).
// Tests inject fakes that script snapshots and failures and count calls.
//
// Thread safety: one call at a time per object (the poller owns its cluster's client).
// Errors: Result values; messages are one sentence naming the cluster and never contain the
// management token.

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/time_anomaly.h"
#include "core/token.h"

namespace tw::influx {

struct CallContext {
  const std::atomic<bool>* cancel = nullptr;  // set on shutdown: calls return kCancelled early
  // list_tokens: the digest of a list already known whole. If the cluster sends exactly the
  // same bytes again, the list is not decoded and TokenList::unchanged is set (like an ETag).
  std::string known_digest;
};

struct TokenList {
  std::vector<Token> tokens;  // empty when unchanged
  std::string digest;         // SHA-256 of the body as received
  bool unchanged = false;     // the body equals CallContext::known_digest
  bool replaced_invalid_utf8 = false;
  // Tokens whose createdAt was a placeholder for "unset" (core/time_anomaly.h); empty when
  // unchanged.
  std::vector<TimeAnomaly> anomalies;
};

class TokenSource {
 public:
  virtual ~TokenSource() = default;
  // The complete list, including revoked tokens. Never a partial list.
  virtual Result<TokenList> list_tokens(const CallContext& ctx) = 0;
  // One token read directly, revoked or not (REST `GET …/tokens/{id}`; influxctl
  // `token get --include-revoked`): confirms what a list left out and what an action did.
  // nullopt: the cluster says no such token exists (404, "not found").
  virtual Result<std::optional<Token>> get_token(const std::string& token_id,
                                                 const CallContext& ctx) = 0;
};

// What the cluster answered to a revocation. Neither answer is believed: the enforcer reads the
// token back (get_token) before it counts the action as done.
enum class RevokeOutcome {
  kRevoked,      // the cluster acknowledged the revocation (204; influxctl exit 0)
  kAlreadyGone,  // 404 (or influxctl failed and the token is revoked or missing): not acknowledged
};

class TokenActuator {
 public:
  virtual ~TokenActuator() = default;
  virtual Result<RevokeOutcome> revoke(const std::string& token_id, const CallContext& ctx) = 0;
  // Replaces the token's permissions with exactly `permissions`.
  virtual Status restrict(const std::string& token_id, const std::vector<Permission>& permissions,
                          const CallContext& ctx) = 0;
};

// The credential tokenwarden itself uses to reach a cluster, where the source can see it.
struct OwnCredential {
  std::string id;  // the management token's id (never the secret)
  std::string description;
  std::optional<Timestamp> expires_at;  // nullopt: never expires
  std::optional<Timestamp> revoked_at;
};

class ClusterClient : public TokenSource, public TokenActuator {
 public:
  // "GET https://host/api/v0/tokens" or "influxctl (profile default)" — for logs.
  virtual std::string describe() const = 0;
  // The management token this client authenticates with, as the cluster lists it; nullopt where
  // the source cannot tell (REST has no call for it; influxctl without a mgmt_token in its
  // profile, or one the list does not show).
  virtual Result<std::optional<OwnCredential>> own_credential(const CallContext& ctx) {
    (void)ctx;
    return std::optional<OwnCredential>();
  }
  // Whether a revocation deletes the token instead of marking it revoked (InfluxDB 3
  // Core/Enterprise): a token read back as missing after an acknowledged revoke was deleted by it.
  virtual bool revoke_deletes() const { return false; }
};

}  // namespace tw::influx

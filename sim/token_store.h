#pragma once
// The simulator's state: database tokens (in insertion order), the simulated clock, the fault
// queue and the request log.
//
// Tokens keep every field the API reports; revoked tokens stay (with revoked_at) until removed
// through the control API. The clock is the injected real clock (mode "real"), a frozen instant
// ("frozen"), or the real clock plus an offset ("offset"). The JSON list body is cached per token
// and as a whole, and invalidated by every mutation, so a 100k-token GET costs a buffer copy.
//
// Thread safety: every method is thread-safe (one mutex). Errors: update/revoke return
// kNotFound (http_status 404) or kInvalidArgument (http_status 409, "token is revoked").

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/result.h"
#include "core/time.h"
#include "core/token.h"
#include "sim/fault.h"
#include "sim/request_log.h"

namespace tw::sim {

class Rng;  // sim/generator.h

enum class ClockMode { kReal, kFrozen, kOffset };
const char* to_string(ClockMode mode);

struct ChurnResult {
  std::size_t created = 0;
  std::size_t updated = 0;
  std::size_t revoked = 0;
};

struct CreatedToken {
  Token token;
  std::string access_token;  // "apiv1_" + 86 base64url characters; never stored
};

// How new tokens are identified: UUIDs (Management API) or InfluxDB 3 Core/Enterprise's
// sequential integers from 0 (decimal strings). With kNumeric a token also has no revoked state:
// generated tokens are never revoked and churn deletes the tokens it would revoke.
enum class IdStyle { kUuid, kNumeric };

class TokenStore {
 public:
  // account_id/cluster_id non-empty: token JSON carries accountId/clusterId (Dedicated).
  // real_clock must outlive the store; nullptr uses a SystemClock.
  TokenStore(std::string account_id, std::string cluster_id, const Clock* real_clock = nullptr,
             IdStyle ids = IdStyle::kUuid);
  TokenStore(const TokenStore&) = delete;
  TokenStore& operator=(const TokenStore&) = delete;

  // Simulated clock.
  Timestamp now() const;
  ClockMode clock_mode() const;
  void freeze_clock(Timestamp at);
  void advance_clock(Duration by);  // frozen stays frozen; real becomes offset
  void use_real_clock();

  // Inserts `token` or replaces the token with its id (control API). An empty id gets a new
  // UUID; an unset created_at gets now(). Returns the stored token.
  Token put(Token token);
  // Replaces the whole state of an existing token; false if the id is unknown.
  bool replace(Token token);
  // Adds n realistic tokens drawn from `seed` and now() (same seed and time: same tokens).
  std::size_t generate(std::size_t n, std::uint64_t seed);
  // The management API operations.
  CreatedToken create(std::string description, std::vector<Permission> permissions,
                      std::optional<Timestamp> expires_at);
  Result<Token> update(const std::string& id, std::optional<std::string> description,
                       std::optional<std::vector<Permission>> permissions);
  Result<Token> revoke(const std::string& id);  // sets revoked_at = now()
  bool remove(const std::string& id);           // gone entirely (control API)
  // InfluxDB 3 addresses tokens by name, which the store keeps as the description.
  // create_named: kInvalidArgument (http_status 409) if a token already has that name.
  Result<CreatedToken> create_named(std::string name, std::vector<Permission> permissions,
                                    std::optional<Timestamp> expires_at);
  std::optional<Token> find_named(std::string_view name) const;
  std::optional<Token> remove_named(std::string_view name);
  std::optional<Token> get(const std::string& id) const;
  std::vector<Token> list(bool include_revoked = true) const;
  std::size_t size() const;
  // Changes about percent% of the tokens: a third created, a third updated, a third revoked.
  ChurnResult churn(double percent, std::uint64_t seed);
  // No tokens, no faults, empty request log, real clock.
  void reset();

  // API-shape JSON (camelCase, unset timestamps omitted).
  std::shared_ptr<const std::string> list_json(bool include_revoked) const;
  std::string token_json(const Token& token, const std::string* access_token = nullptr) const;

  // Faults.
  std::uint64_t add_fault(FaultSpec spec);
  bool remove_fault(std::uint64_t id);
  void clear_faults();
  std::vector<Fault> faults() const;
  // The first fault matching the request, counted as used (exhausted faults are dropped).
  std::optional<FaultSpec> take_fault(std::string_view method, std::string_view path);

  // Request log (the last kMaxRequestRecords management requests).
  std::uint64_t record(RequestRecord record);  // returns the assigned seq
  std::vector<RequestRecord> requests() const;
  void clear_requests();

 private:
  struct Entry {
    Token token;
    mutable std::string json;  // cached object JSON; empty: stale
  };
  Timestamp now_locked() const;
  Entry* find_locked(const std::string& id);
  void upsert_locked(Token token);
  void invalidate_locked() {
    list_cache_[0].reset();
    list_cache_[1].reset();
  }

  std::string new_id_locked();
  CreatedToken create_locked(std::string description, std::vector<Permission> permissions,
                             std::optional<Timestamp> expires_at);
  void erase_locked(std::size_t pos);
  void erase_revoked_locked();
  std::vector<std::size_t> shuffled_active_locked(Rng& rng) const;  // indexes of active tokens
  std::unordered_set<std::string> descriptions_locked() const;

  const std::string account_id_;
  const std::string cluster_id_;
  const IdStyle ids_;
  std::unique_ptr<Clock> owned_clock_;
  const Clock* real_clock_;

  mutable std::mutex mu_;
  ClockMode mode_ = ClockMode::kReal;
  Timestamp frozen_at_{};
  Duration offset_{0};
  std::vector<Entry> entries_;
  std::unordered_map<std::string, std::size_t> index_;
  mutable std::shared_ptr<const std::string> list_cache_[2];  // [include_revoked]
  std::vector<Fault> faults_;
  std::uint64_t next_fault_id_ = 1;
  std::deque<RequestRecord> requests_;
  std::uint64_t next_seq_ = 1;
  std::uint64_t next_numeric_id_ = 0;  // kNumeric: above every numeric id ever stored
};

}  // namespace tw::sim

#pragma once
// Fakes shared by the unit tests of the daemon: a cluster (lists, reads back, revokes and
// restricts tokens; scripted answers, failures and Retry-After on demand; counts every call) and
// an alert sink that records what it is told. Tests keep the state and assert on it.
//
// Thread safety: none; one test thread. Errors: as scripted by the test.

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/time.h"
#include "core/token.h"
#include "daemon/alert_sink.h"
#include "influx/token_source.h"

namespace tw::testing {

// What the fake cluster holds and what it was asked, shared with the test.
struct FakeClusterState {
  std::map<std::string, Token> tokens;           // listed, and what get_token finds, by id
  std::deque<Result<influx::TokenList>> script;  // list answers served before `tokens`
  bool script_only = false;         // once the script is exhausted, lists fail instead of `tokens`
  bool use_digest = false;          // answer "unchanged" for a known digest, like the REST source
  Duration fetch_time{0};           // each list advances the clock by this much
  std::optional<Error> read_error;  // what get_token answers instead, if set
  int fail_next = 0;                // the next N revokes/restricts fail (HTTP 503)
  std::optional<Duration> fail_retry_after;  // ... with this Retry-After
  bool already_gone = false;                 // revoke answers 404
  bool vanish_on_revoke = false;             // with already_gone: the token is gone too
  // What own_credential answers (default: the source cannot tell).
  Result<std::optional<influx::OwnCredential>> credential = std::optional<influx::OwnCredential>();

  int list_calls = 0;
  int get_calls = 0;
  int credential_calls = 0;
  std::map<std::string, int> reads;                                 // get_token calls per token id
  std::map<std::string, int> revokes;                               // per token id
  std::map<std::string, int> restricts;                             // per token id
  std::map<std::string, std::vector<Permission>> restrict_targets;  // last PATCH body
  Timestamp last_call_at{};                                         // last revoke/restrict
  const std::atomic<bool>* last_cancel = nullptr;
  std::string last_known_digest;

  void put(Token t);
  std::vector<Token> list() const;
  int revoke_calls() const;
  int restrict_calls() const;
  int revokes_of(const std::string& id) const;
};

class FakeCluster final : public influx::ClusterClient {
 public:
  FakeCluster(std::shared_ptr<FakeClusterState> state, ManualClock& clock)
      : state_(std::move(state)), clock_(clock) {}

  Result<influx::TokenList> list_tokens(const influx::CallContext& ctx) override;
  Result<std::optional<Token>> get_token(const std::string& id,
                                         const influx::CallContext& ctx) override;
  Result<influx::RevokeOutcome> revoke(const std::string& id,
                                       const influx::CallContext& ctx) override;
  Status restrict(const std::string& id, const std::vector<Permission>& permissions,
                  const influx::CallContext& ctx) override;
  std::string describe() const override { return "fake cluster"; }
  Result<std::optional<influx::OwnCredential>> own_credential(
      const influx::CallContext& ctx) override;

 private:
  std::shared_ptr<FakeClusterState> state_;
  ManualClock& clock_;
};

class FakeAlertSink final : public daemon::AlertSink {
 public:
  void set_active(const std::string& cluster, std::vector<daemon::Alert> alerts) override;
  void state_changed(const daemon::StateChange& change) override { changes.push_back(change); }

  // Active alerts named `alertname` for `cluster`.
  int active_named(const std::string& alertname, const std::string& cluster) const;
  std::vector<std::string> events() const;  // the state changes' event names, in order

  int set_active_calls = 0;
  std::map<std::string, std::vector<daemon::Alert>> active;
  std::vector<daemon::StateChange> changes;
};

}  // namespace tw::testing

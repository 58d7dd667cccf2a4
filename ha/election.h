#pragma once
// Leader election on a coordination service (ha/coordination.h), as a state machine driven by
// tick() on a monotonic clock, so tests run it on a manual clock against a fake.
//
// Every instance holds a lease of `lease_ttl` and keeps `<prefix>members/<instance>` on it. The
// leader is whoever created `<prefix>leader` (value: its instance name) on its lease; the
// **term** is that key's create revision, which no other term can have. The lease is renewed
// every lease_ttl/3; a renewal's answer carries the store's revision, and only when it moved
// (a key changed: a leader key expired or was written, an intent was written) does a standby
// campaign again or a leader re-read its key. An idle cluster therefore costs one keep-alive per
// instance every lease_ttl/3 and nothing else.
//
// Our lease is valid until (when the grant or renewal was *sent*) + the TTL granted: the server
// starts counting later, so this is never later than the server's expiry. A leader steps down:
// - at that local expiry if no renewal succeeded since (reason "lease_expired");
// - when a renewal says the lease no longer exists ("lease_lost");
// - when its leader key is gone or has another create revision ("leader_key_lost"),
//   noticed by a re-read or by a fenced write that failed (lost_leadership());
// - at resign() ("shutdown"), which revokes the lease so a successor need not wait for it.
// A paused process (SIGSTOP, a VM freeze) resumes with its monotonic clock past the lease, so
// its first check steps it down before it can act: fence() refuses when the lease's remaining
// time does not exceed what the action needs.
//
// Thread safety: tick(), resign() and renew_now() are serialized by an internal mutex (they may
// block on the service for up to its call deadline); role(), term(), fence() and take_events()
// are cheap and may be called from any thread.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/time.h"
#include "ha/coordination.h"

namespace tw::ha {

using SteadyTime = std::chrono::steady_clock::time_point;

class SteadyClock {
 public:
  virtual ~SteadyClock() = default;
  virtual SteadyTime now() const = 0;
};

class RealSteadyClock final : public SteadyClock {
 public:
  SteadyTime now() const override { return std::chrono::steady_clock::now(); }
};

class ManualSteadyClock final : public SteadyClock {
 public:
  SteadyTime now() const override {
    std::lock_guard lock(mu_);
    return now_;
  }
  void advance(Duration d) {
    std::lock_guard lock(mu_);
    now_ += d;
  }

 private:
  mutable std::mutex mu_;
  SteadyTime now_{std::chrono::hours(1)};
};

struct ElectionOptions {
  std::string key_prefix = "/tokenwarden/";
  std::string instance;
  Duration lease_ttl = std::chrono::seconds(15);
};

enum class Role { kStandby, kLeader };

struct LeadershipEvent {
  bool acquired = false;  // false: lost
  std::int64_t term = 0;
  std::string reason;  // lost: lease_expired, lease_lost, leader_key_lost, renewal_failed, shutdown
};

// What a fenced write needs: the leader key and the term it must still have.
struct Fence {
  std::string leader_key;
  std::int64_t term = 0;
  std::string instance;
};

struct TickResult {
  bool store_changed = false;  // the revision moved since the last tick (mirror the intents)
  std::int64_t revision = 0;
  std::string error;  // the call that failed this tick, one sentence ("" if none)
  Duration next{0};   // call tick() again after this long
};

class Election {
 public:
  Election(Coordination& service, const SteadyClock& clock, ElectionOptions options);

  // One step: obtain a lease if there is none, renew it when due, step down when it expired,
  // campaign when the store changed and nobody (else) leads.
  TickResult tick();
  // A clean stop: a leader records its loss, and the lease is revoked (best effort).
  void resign();
  // Renews now (an action about to send its request proves the lease still exists); false if
  // the service did not answer or no longer knows the lease (then this instance stepped down).
  bool renew_now();

  Role role() const;
  std::int64_t term() const;   // ours while leading, else the last leader's we saw (0: none)
  std::string leader() const;  // the leading instance as last seen ("" unknown)
  // How long our lease still lasts by our conservative reckoning (0 without one).
  Duration lease_remaining() const;
  bool service_reachable() const;  // the last call succeeded
  // The fence for a write that must be done, and the lease still held, `need` from now; an error
  // (one sentence) when we do not lead or the lease would not last (after one renewal attempt).
  Result<Fence> fence(Duration need);
  // A fenced write found the leader key changed: step down now.
  void lost_leadership(std::int64_t term, const std::string& reason);
  std::vector<LeadershipEvent> take_events();

  std::string leader_key() const { return options_.key_prefix + "leader"; }
  std::string member_key() const { return options_.key_prefix + "members/" + options_.instance; }
  Duration renew_every() const { return options_.lease_ttl / 3; }

 private:
  struct State {
    LeaseId lease = 0;
    SteadyTime valid_until{};
    SteadyTime next_renewal{};
    Role role = Role::kStandby;
    std::int64_t term = 0;
    std::string leader;
    std::int64_t revision = -1;        // the store's, last seen
    std::int64_t acted_revision = -1;  // the revision we last campaigned or re-read at
    bool reachable = true;
    std::vector<LeadershipEvent> events;
  };

  // Steps with call_mu_ held; they lock mu_ only to read or publish state.
  bool ensure_lease(SteadyTime now, TickResult& out);
  void renew(SteadyTime now, TickResult& out);
  void check_leadership(TickResult& out);
  void step_down_locked(const std::string& reason);  // mu_ held
  void note_error(TickResult& out, const Error& e);
  Duration next_tick(SteadyTime now, bool failed) const;  // mu_ held

  Coordination& service_;
  const SteadyClock& clock_;
  ElectionOptions options_;
  std::mutex call_mu_;     // one conversation with the service at a time
  mutable std::mutex mu_;  // state_
  State state_;
};

}  // namespace tw::ha

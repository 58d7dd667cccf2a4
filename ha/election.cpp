#include "ha/election.h"

#include <algorithm>

namespace tw::ha {

namespace {

// After a failed call, the next tick comes this soon (but never later than the renewal).
Duration retry_delay(Duration ttl) {
  return std::clamp(ttl / 6, Duration(std::chrono::milliseconds(200)),
                    Duration(std::chrono::seconds(2)));
}

Duration until(SteadyTime when, SteadyTime now) {
  return when > now ? std::chrono::duration_cast<Duration>(when - now) : Duration(0);
}

}  // namespace

Election::Election(Coordination& service, const SteadyClock& clock, ElectionOptions options)
    : service_(service), clock_(clock), options_(std::move(options)) {}

Role Election::role() const {
  std::lock_guard lock(mu_);
  return state_.role;
}

std::int64_t Election::term() const {
  std::lock_guard lock(mu_);
  return state_.term;
}

std::string Election::leader() const {
  std::lock_guard lock(mu_);
  return state_.leader;
}

bool Election::service_reachable() const {
  std::lock_guard lock(mu_);
  return state_.reachable;
}

Duration Election::lease_remaining() const {
  std::lock_guard lock(mu_);
  return state_.lease == 0 ? Duration(0) : until(state_.valid_until, clock_.now());
}

std::vector<LeadershipEvent> Election::take_events() {
  std::lock_guard lock(mu_);
  return std::exchange(state_.events, {});
}

void Election::step_down_locked(const std::string& reason) {
  if (state_.role != Role::kLeader) return;
  state_.role = Role::kStandby;
  state_.events.push_back({false, state_.term, reason});
  state_.leader.clear();
  state_.acted_revision = -1;  // campaign again at the next tick that can
}

void Election::lost_leadership(std::int64_t term, const std::string& reason) {
  std::lock_guard lock(mu_);
  if (state_.role == Role::kLeader && state_.term == term) step_down_locked(reason);
}

void Election::note_error(TickResult& out, const Error& e) {
  if (out.error.empty()) out.error = e.message;
  std::lock_guard lock(mu_);
  state_.reachable = false;
}

bool Election::ensure_lease(SteadyTime now, TickResult& out) {
  {
    std::lock_guard lock(mu_);
    if (state_.lease != 0) return true;
  }
  auto lease = service_.grant(options_.lease_ttl);
  if (!lease.ok()) {
    note_error(out, lease.error());
    return false;
  }
  {
    std::lock_guard lock(mu_);
    state_.lease = lease->id;
    state_.valid_until = now + lease->ttl;
    state_.next_renewal = now + renew_every();
    state_.reachable = true;
    state_.revision = lease->revision;
    state_.acted_revision = -1;
  }
  // Membership: who is there, for operators (etcdctl get --prefix <prefix>members/).
  auto put = service_.put(member_key(), options_.instance, lease->id);
  if (!put.ok()) note_error(out, put.error());
  return true;
}

void Election::renew(SteadyTime now, TickResult& out) {
  LeaseId lease = 0;
  {
    std::lock_guard lock(mu_);
    if (state_.lease == 0 || now < state_.next_renewal) return;
    lease = state_.lease;
  }
  auto r = service_.keep_alive(lease);
  std::lock_guard lock(mu_);
  if (!r.ok()) {
    if (out.error.empty()) out.error = r.error().message;
    state_.reachable = false;
    state_.next_renewal = now + retry_delay(options_.lease_ttl);
    return;
  }
  state_.reachable = true;
  if (r->ttl <= Duration(0)) {
    // The service no longer knows the lease (it expired while we could not reach it).
    step_down_locked("lease_lost");
    state_.lease = 0;
    return;
  }
  state_.valid_until = now + r->ttl;
  state_.next_renewal = now + renew_every();
  if (r->revision != state_.revision) out.store_changed = true;
  state_.revision = std::max(state_.revision, r->revision);
}

// Campaign (standby) or re-read our key (leader) when the store changed since we last did.
void Election::check_leadership(TickResult& out) {
  LeaseId lease = 0;
  Role role = Role::kStandby;
  std::int64_t term = 0;
  {
    std::lock_guard lock(mu_);
    if (state_.lease == 0 || state_.revision == state_.acted_revision) return;
    lease = state_.lease;
    role = state_.role;
    term = state_.term;
  }
  if (role == Role::kLeader) {
    auto key = service_.get(leader_key());
    if (!key.ok()) return note_error(out, key.error());
    std::lock_guard lock(mu_);
    state_.acted_revision = state_.revision;
    if (!key->has_value() || (*key)->create_revision != term) step_down_locked("leader_key_lost");
    return;
  }
  auto c = service_.campaign(leader_key(), options_.instance, lease);
  if (!c.ok()) return note_error(out, c.error());
  std::lock_guard lock(mu_);
  state_.reachable = true;
  if (c->revision > state_.revision) {
    // Our own write moved the revision: that is not news to act on again.
    state_.revision = c->revision;
  }
  state_.acted_revision = state_.revision;
  if (c->won) {
    state_.role = Role::kLeader;
    state_.term = c->leader->create_revision;
    state_.leader = options_.instance;
    state_.events.push_back({true, state_.term, ""});
  } else if (c->leader) {
    state_.leader = c->leader->value;
    state_.term = c->leader->create_revision;
    if (c->leader->lease == lease) {
      // Our own key from an earlier campaign whose answer we lost: we lead.
      state_.role = Role::kLeader;
      state_.events.push_back({true, state_.term, ""});
    }
  } else {
    // The key vanished between the compare and the read: try again at once next tick.
    state_.acted_revision = -1;
  }
}

// When tick() should run again: at the renewal, at a leader's lease end, at once when a
// campaign or re-read is still owed (after a failed call no sooner than 200 ms: no busy loop).
Duration Election::next_tick(SteadyTime now, bool failed) const {
  if (state_.lease == 0) return retry_delay(options_.lease_ttl);
  SteadyTime next = state_.next_renewal;
  if (state_.role == Role::kLeader) next = std::min(next, state_.valid_until);
  if (state_.revision != state_.acted_revision) next = now;
  const Duration wait = until(next, now);
  return failed ? std::max(wait, Duration(std::chrono::milliseconds(200))) : wait;
}

TickResult Election::tick() {
  std::lock_guard calls(call_mu_);
  TickResult out;
  const SteadyTime now = clock_.now();
  {
    std::lock_guard lock(mu_);
    if (state_.lease != 0 && now >= state_.valid_until) {
      // Not renewed in time: whatever the service thinks, we no longer count on the lease.
      step_down_locked(state_.reachable ? "lease_expired" : "renewal_failed");
      state_.lease = 0;
    }
  }
  if (ensure_lease(now, out)) {
    renew(now, out);
    {
      std::lock_guard lock(mu_);
      if (state_.lease == 0) {  // lost: a new lease at once
        out.next = Duration(0);
        out.revision = state_.revision;
        return out;
      }
    }
    check_leadership(out);
  }
  std::lock_guard lock(mu_);
  out.revision = state_.revision;
  out.next = next_tick(now, !out.error.empty());
  return out;
}

bool Election::renew_now() {
  std::lock_guard calls(call_mu_);
  TickResult ignored;
  const SteadyTime now = clock_.now();
  {
    std::lock_guard lock(mu_);
    if (state_.lease == 0) return false;
    state_.next_renewal = now;
  }
  renew(now, ignored);
  std::lock_guard lock(mu_);
  return ignored.error.empty() && state_.lease != 0;
}

Result<Fence> Election::fence(Duration need) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    {
      std::lock_guard lock(mu_);
      if (state_.role != Role::kLeader) {
        return make_error(ErrorCode::kUnsupported, "this instance is not the leader");
      }
      const SteadyTime now = clock_.now();
      if (state_.lease != 0 && state_.valid_until > now + need) {
        return Fence{leader_key(), state_.term, options_.instance};
      }
      if (state_.lease == 0 || now >= state_.valid_until) {
        step_down_locked(state_.reachable ? "lease_expired" : "renewal_failed");
        return make_error(ErrorCode::kUnsupported, "the leader's lease has expired");
      }
    }
    if (attempt == 0 && !renew_now()) break;
  }
  return make_error(
      ErrorCode::kTimeout,
      "the leader's lease would not last the action's deadline of " + format_duration(need));
}

void Election::resign() {
  std::lock_guard calls(call_mu_);
  LeaseId lease = 0;
  {
    std::lock_guard lock(mu_);
    step_down_locked("shutdown");
    lease = std::exchange(state_.lease, 0);
  }
  if (lease != 0) (void)service_.revoke(lease);
}

}  // namespace tw::ha

// The election state machine on a manual steady clock against an in-memory etcd: acquisition,
// idle traffic, renewal, expiry, failover, revision races, pauses and the fence.
#include "ha/election.h"

#include <gtest/gtest.h>

#include "tests/unit/ha/fake_coordination.h"

namespace tw::ha {
namespace {

using namespace std::chrono_literals;
using testing::FakeCoordination;

constexpr Duration kTtl = 15s;

ElectionOptions options(const std::string& instance) {
  ElectionOptions o;
  o.instance = instance;
  o.key_prefix = "/tw/";
  o.lease_ttl = kTtl;
  return o;
}

struct Pair : ::testing::Test {
  ManualSteadyClock clock;
  FakeCoordination etcd{clock};
  Election a{etcd, clock, options("a")};
  Election b{etcd, clock, options("b")};

  // Runs both elections' ticks for `d`, in steps of `step` (both tick at every step).
  void run(Duration d, Duration step = 1s, bool tick_a = true, bool tick_b = true) {
    for (Duration t{0}; t < d; t += step) {
      if (tick_a) a.tick();
      if (tick_b) b.tick();
      clock.advance(step);
    }
  }
};

TEST_F(Pair, FirstToCampaignLeadsWithTheKeysCreateRevisionAsTerm) {
  auto r = a.tick();
  EXPECT_TRUE(r.error.empty()) << r.error;
  ASSERT_EQ(a.role(), Role::kLeader);
  const auto key = etcd.kv.at("/tw/leader");
  EXPECT_EQ(key.value, "a");
  EXPECT_EQ(a.term(), key.create_revision);
  EXPECT_EQ(etcd.kv.at("/tw/members/a").value, "a");
  auto events = a.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].acquired);
  EXPECT_EQ(events[0].term, a.term());

  b.tick();
  EXPECT_EQ(b.role(), Role::kStandby);
  EXPECT_EQ(b.leader(), "a");
  EXPECT_EQ(b.term(), a.term());
  EXPECT_TRUE(b.take_events().empty());
  EXPECT_TRUE(a.take_events().empty());  // taken once
}

TEST_F(Pair, IdleTrafficIsLeaseRenewalsOnly) {
  run(10s);  // settle: leases, membership, one campaign each after the others' writes
  const auto before = etcd.calls;
  run(60s);
  auto after = etcd.calls;
  for (const auto& [op, n] : after) {
    if (op == "keepalive") continue;
    EXPECT_EQ(n, before.count(op) ? before.at(op) : 0) << op << " calls while idle";
  }
  // Two instances, one renewal each every ttl/3 = 5 s over 60 s.
  EXPECT_EQ(after["keepalive"] - before.at("keepalive"), 2 * 12);
  EXPECT_EQ(a.role(), Role::kLeader);
  EXPECT_EQ(b.role(), Role::kStandby);
}

TEST_F(Pair, TickAsksToBeCalledAtTheNextRenewal) {
  a.tick();
  auto r = a.tick();
  EXPECT_LE(r.next, a.renew_every());
  EXPECT_GT(r.next, 0s);
}

TEST_F(Pair, StandbyTakesOverWithinTheTtlAndARenewalAfterTheLeaderDies) {
  run(3s);
  ASSERT_EQ(a.role(), Role::kLeader);
  const auto first_term = a.term();
  // a dies (no more ticks): its lease expires after the TTL, the key goes, b notices at its next
  // renewal and campaigns.
  Duration waited{0};
  while (b.role() != Role::kLeader && waited < 60s) {
    b.tick();
    clock.advance(100ms);
    waited += 100ms;
  }
  ASSERT_EQ(b.role(), Role::kLeader);
  EXPECT_LE(waited, kTtl + b.renew_every() + 1s);
  EXPECT_GT(b.term(), first_term);
  EXPECT_EQ(etcd.kv.at("/tw/leader").value, "b");
}

TEST_F(Pair, LeaderStepsDownAtLeaseExpiryWhenRenewalsFail) {
  run(3s);
  ASSERT_EQ(a.role(), Role::kLeader);
  a.take_events();
  etcd.down = true;
  Duration waited{0};
  while (a.role() == Role::kLeader && waited < 60s) {
    a.tick();
    clock.advance(100ms);
    waited += 100ms;
  }
  EXPECT_EQ(a.role(), Role::kStandby);
  EXPECT_LE(waited, kTtl);  // never later than the lease it last renewed
  auto events = a.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_FALSE(events[0].acquired);
  EXPECT_EQ(events[0].reason, "renewal_failed");
  EXPECT_FALSE(a.service_reachable());
  EXPECT_FALSE(a.fence(1s).ok());
  // Nobody leads while the service is down.
  run(30s);
  EXPECT_EQ(a.role(), Role::kStandby);
  EXPECT_EQ(b.role(), Role::kStandby);
  // Quorum back: someone leads again, with a new term.
  etcd.down = false;
  run(kTtl + 10s);
  EXPECT_NE(a.role() == Role::kLeader, b.role() == Role::kLeader);
}

TEST_F(Pair, PausedLeaderCannotActWhenItResumes) {
  run(3s);
  ASSERT_EQ(a.role(), Role::kLeader);
  const auto old_term = a.term();
  a.take_events();
  // a is paused (SIGSTOP) for longer than its lease; b takes over meanwhile.
  run(kTtl + 10s, 500ms, /*tick_a=*/false);
  ASSERT_EQ(b.role(), Role::kLeader);
  // a resumes: before any tick, an action asks for the fence — refused, a steps down.
  auto f = a.fence(1s);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(a.role(), Role::kStandby);
  auto events = a.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].term, old_term);
  EXPECT_EQ(events[0].reason, "lease_expired");
  // Its next tick gets a fresh lease and sees b's term.
  a.tick();
  a.tick();
  EXPECT_EQ(a.role(), Role::kStandby);
  EXPECT_EQ(a.leader(), "b");
  EXPECT_EQ(a.term(), b.term());
}

TEST_F(Pair, ExpiredLeaseReportedByTheServiceIsLostAndReplaced) {
  a.tick();
  ASSERT_EQ(a.role(), Role::kLeader);
  a.take_events();
  // The service dropped the lease (it expired there while our answers were lost).
  auto lease = etcd.kv.at("/tw/leader").lease;
  ASSERT_TRUE(etcd.revoke(lease).ok());
  clock.advance(a.renew_every());
  a.tick();
  auto events = a.take_events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].reason, "lease_lost");
  a.tick();  // a new lease, a new campaign, a new term
  EXPECT_EQ(a.role(), Role::kLeader);
  EXPECT_TRUE(etcd.lease_alive(etcd.kv.at("/tw/leader").lease));
}

TEST_F(Pair, LeaderKeyTakenUnderUsIsNoticedAtTheNextRenewal) {
  a.tick();
  ASSERT_EQ(a.role(), Role::kLeader);
  const auto term = a.term();
  a.take_events();
  // A revision race: the key is deleted and recreated by someone else between our renewals.
  etcd.erase("/tw/leader");
  etcd.overwrite("/tw/leader", "intruder", 0);
  clock.advance(a.renew_every());
  a.tick();
  EXPECT_EQ(a.role(), Role::kStandby);
  auto events = a.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].term, term);
  EXPECT_EQ(events[0].reason, "leader_key_lost");
  EXPECT_FALSE(a.fence(1s).ok());
}

TEST_F(Pair, FencedWriteWithAStaleTermFails) {
  a.tick();
  auto f = a.fence(1s);
  ASSERT_TRUE(f.ok()) << f.error().message;
  auto w = etcd.put_fenced("/tw/actions/x", "v", f->leader_key, f->term);
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(w->ok);
  a.resign();
  b.tick();
  ASSERT_EQ(b.role(), Role::kLeader);
  auto stale = etcd.put_fenced("/tw/actions/x", "w", f->leader_key, f->term);
  ASSERT_TRUE(stale.ok());
  EXPECT_FALSE(stale->ok);
  EXPECT_EQ(etcd.kv.at("/tw/actions/x").value, "v");
  a.lost_leadership(f->term, "leader_key_lost");  // already down: nothing more happens
  EXPECT_EQ(a.role(), Role::kStandby);
}

TEST_F(Pair, FenceRenewsWhenTheLeaseWouldNotLastTheAction) {
  a.tick();
  clock.advance(10s);  // 5 s of the lease left by our reckoning
  const int renewals = etcd.calls["keepalive"];
  auto f = a.fence(8s);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(etcd.calls["keepalive"], renewals + 1);
  EXPECT_GE(a.lease_remaining(), 14s);
  // More than a whole lease can never be promised.
  auto too_long = a.fence(kTtl + 1s);
  EXPECT_FALSE(too_long.ok());
  EXPECT_EQ(a.role(), Role::kLeader);  // refusing one action is no reason to step down
  // And with the service down, a short lease is not extended.
  clock.advance(10s);
  etcd.down = true;
  EXPECT_FALSE(a.fence(8s).ok());
}

TEST_F(Pair, ResignHandsOverWithoutWaitingForTheLease) {
  run(2s);
  ASSERT_EQ(a.role(), Role::kLeader);
  a.take_events();
  a.resign();
  auto events = a.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].reason, "shutdown");
  EXPECT_EQ(etcd.kv.count("/tw/leader"), 0u);
  // b's next renewal sees the revision move and campaigns.
  clock.advance(b.renew_every());
  b.tick();
  EXPECT_EQ(b.role(), Role::kLeader);
}

TEST_F(Pair, StandbyDoesNotCampaignWhileNothingChanges) {
  run(3s);
  const int campaigns = etcd.calls["campaign"];
  run(30s);
  EXPECT_EQ(etcd.calls["campaign"], campaigns);
  // An intent written by the leader moves the revision: the standby looks again, once.
  etcd.overwrite("/tw/actions/c/t/p", "{}");
  run(6s);
  EXPECT_EQ(etcd.calls["campaign"], campaigns + 1);
}

}  // namespace
}  // namespace tw::ha

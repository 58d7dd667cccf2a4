// Tests for policy/notices.h (the expiry notice ladder) and the engine's `orphaned` kind and
// notify_before next-change times (issue 14). Pure: fixed times, hand-built subjects.

#include "policy/notices.h"

#include <gtest/gtest.h>

#include <vector>

#include "policy/engine.h"
#include "tests/unit/core/test_support.h"

namespace tw::policy {
namespace {

using std::chrono::days;
using std::chrono::hours;
using tw::testing::ts;

const Timestamp kNow = ts("2026-06-01T12:00:00Z");
const std::vector<Duration> kLadder{days(30), days(7), days(1)};

TEST(NoticeStepTest, TheCurrentThresholdIsTheSmallestNotBelowTheTimeLeft) {
  auto far = notice_step(kLadder, kNow + days(31), kNow);
  EXPECT_FALSE(far.current) << "31 days left: no threshold crossed yet";
  EXPECT_EQ(far.next, kNow + days(1)) << "30d is crossed a day later";

  auto at30 = notice_step(kLadder, kNow + days(30), kNow);
  ASSERT_TRUE(at30.current);
  EXPECT_EQ(*at30.current, days(30)) << "exactly 30 days left has crossed 30d";
  EXPECT_EQ(at30.next, kNow + days(23));

  auto five = notice_step(kLadder, kNow + days(5), kNow);
  ASSERT_TRUE(five.current);
  EXPECT_EQ(*five.current, days(7)) << "first seen with 5 days left: only 7d, never 30d";
  EXPECT_EQ(five.next, kNow + days(4));

  auto hours20 = notice_step(kLadder, kNow + hours(20), kNow);
  ASSERT_TRUE(hours20.current);
  EXPECT_EQ(*hours20.current, days(1));
  EXPECT_EQ(hours20.next, Timestamp::max()) << "the last threshold: nothing further";

  EXPECT_FALSE(notice_step(kLadder, kNow, kNow).current) << "expired: nothing to announce";
  EXPECT_FALSE(notice_step(kLadder, kNow - days(1), kNow).current);
}

TEST(NoticeStepTest, OrderOfTheThresholdsDoesNotMatter) {
  const std::vector<Duration> shuffled{days(1), days(30), days(7)};
  for (Duration left :
       std::vector<Duration>{days(40), days(30), days(12), days(7), days(3), days(1), hours(2)}) {
    auto a = notice_step(kLadder, kNow + left, kNow);
    auto b = notice_step(shuffled, kNow + left, kNow);
    EXPECT_EQ(a.current, b.current) << format_duration(left);
    EXPECT_EQ(a.next, b.next) << format_duration(left);
  }
  EXPECT_EQ(threshold_label(days(30)), "30d");
  EXPECT_EQ(threshold_label(hours(36)), "1d12h");
}

// ---- the engine -------------------------------------------------------------------------------

Token token(std::string id, std::optional<Timestamp> expires = std::nullopt) {
  Token t;
  t.id = std::move(id);
  t.description = "svc";
  t.created_at = kNow - days(10);
  t.expires_at = expires;
  return t;
}

PolicySpec orphaned(std::vector<std::string> known = {}) {
  PolicySpec p;
  p.name = "orphans";
  p.kind = Kind::kOrphaned;
  p.min_token_age = Duration{0};
  p.known_owners = std::move(known);
  return p;
}

std::shared_ptr<const PolicySet> compile_one(PolicySpec p) {
  auto set = PolicySet::compile({std::move(p)}, {});
  EXPECT_TRUE(set.ok()) << (set.ok() ? "" : set.error().message);
  return set.ok() ? *set : nullptr;
}

TEST(OrphanedPolicyTest, UnmatchedAndUnknownOwnersViolate) {
  const Token a = token("a"), b = token("b"), c = token("c"), d = token("d");
  const Ownership none;  // no rule matched
  const Ownership alice{"alice", "payments", "alice@example.com", "payments"};
  const Ownership mallory{"mallory", "", "", "by-description"};
  const std::vector<Subject> subjects{
      {&a, kNow, nullptr}, {&b, kNow, &none}, {&c, kNow, &alice}, {&d, kNow, &mallory}};
  const ClusterInfo cluster{"prod", {}};

  auto any = compile_one(orphaned());
  auto e = evaluate(*any, cluster, subjects, kNow);
  ASSERT_EQ(e.findings.size(), 2u) << "only the tokens no rule matched";
  EXPECT_EQ(e.findings[0].subject, 0u);
  EXPECT_EQ(e.findings[1].subject, 1u);
  EXPECT_EQ(e.next_change, Timestamp::max()) << "ownership does not change with the clock";
  EXPECT_EQ(any->explain(0, subjects[1], kNow), "no [[owners]] rule matches this token");

  auto known = compile_one(orphaned({"alice", "bob"}));
  e = evaluate(*known, cluster, subjects, kNow);
  ASSERT_EQ(e.findings.size(), 3u);
  EXPECT_EQ(e.findings[2].subject, 3u) << "mallory is not a known owner; alice is";
  EXPECT_EQ(known->explain(0, subjects[3], kNow), "its owner \"mallory\" is not in known_owners");
}

TEST(ExpiresSoonLadderTest, WithinDefaultsToTheLargestAndEachCrossingIsAChange) {
  PolicySpec p;
  p.name = "expiry";
  p.kind = Kind::kExpiresSoon;
  p.min_token_age = Duration{0};
  p.notify_before = {days(1), days(30), days(7)};
  auto set = compile_one(p);
  ASSERT_NE(set, nullptr);
  ASSERT_TRUE(set->specs()[0].within);
  EXPECT_EQ(*set->specs()[0].within, days(30));
  EXPECT_EQ(set->specs()[0].notify_before, kLadder) << "the ladder, largest first";

  const Token t = token("t", kNow + days(12));
  const std::vector<Subject> subjects{{&t, kNow, nullptr}};
  auto e = evaluate(*set, ClusterInfo{"prod", {}}, subjects, kNow);
  ASSERT_EQ(e.findings.size(), 1u);
  EXPECT_EQ(e.subject_next_change[0], kNow + days(5)) << "the 7d crossing";
  e = evaluate(*set, ClusterInfo{"prod", {}}, subjects, kNow + days(5));
  EXPECT_EQ(e.subject_next_change[0], kNow + days(11)) << "then the 1d crossing";
  e = evaluate(*set, ClusterInfo{"prod", {}}, subjects, kNow + days(11));
  EXPECT_EQ(e.subject_next_change[0], kNow + days(12)) << "then the expiry";
}

}  // namespace
}  // namespace tw::policy

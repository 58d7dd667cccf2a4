// Tests for how policy/engine.h measures ages (issue 9, item 5): from the earlier of created_at
// and the token's first_seen, for every age-based rule (min_token_age, max_age, max_lifetime),
// and explain() says the same. A created_at in the future must not hide a token from policies.
//
// Table-driven; a fixed kNow, no clock.

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/time_anomaly.h"
#include "policy/engine.h"
#include "tests/unit/core/test_support.h"

namespace tw::policy {
namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::minutes;
using tw::testing::ts;

const Timestamp kNow = ts("2026-06-01T12:00:00Z");
const Timestamp kFarFuture = ts("9999-12-31T00:00:00Z");
constexpr Duration kMs{1};

PolicySpec spec(std::string name, Kind kind) {
  PolicySpec p;
  p.name = std::move(name);
  p.kind = kind;
  p.min_token_age = Duration{0};
  p.grace_period = hours(1);
  return p;
}
PolicySpec all_databases_write(Duration min_token_age) {
  PolicySpec p = spec("all-databases", Kind::kAllDatabasesGrant);
  p.actions = {"write"};
  p.min_token_age = min_token_age;
  return p;
}
PolicySpec max_age(Duration d) {
  PolicySpec p = spec("max-age", Kind::kMaxAge);
  p.max_age = d;
  return p;
}
PolicySpec max_lifetime(Duration d) {
  PolicySpec p = spec("max-lifetime", Kind::kMaxLifetime);
  p.max_lifetime = d;
  p.require_expiry = true;
  return p;
}

Token write_all(std::optional<Timestamp> created, std::optional<Timestamp> expires = std::nullopt) {
  Token t;
  t.id = "tok-1";
  t.description = "svc";
  t.permissions = {Permission{"write", "*"}};
  t.created_at = created;
  t.expires_at = expires;
  return t;
}

struct AgeCase {
  std::string name;
  PolicySpec policy;
  Token token;
  Timestamp first_seen;
  bool violated;
  std::string explained;  // a part of explain()'s sentence, when violated
};

class AgeTest : public ::testing::TestWithParam<AgeCase> {};

TEST_P(AgeTest, AgeRunsFromTheEarlierOfCreatedAtAndFirstSeen) {
  const AgeCase& c = GetParam();
  auto set = PolicySet::compile({c.policy}, {});
  ASSERT_TRUE(set.ok()) << set.error().message;
  std::vector<Subject> subjects{Subject{&c.token, c.first_seen}};
  Evaluation e = evaluate(**set, ClusterInfo{"prod", {}}, subjects, kNow);
  ASSERT_EQ(e.findings.size(), c.violated ? 1u : 0u);
  if (c.violated) {
    EXPECT_EQ((*set)->explain(0, subjects[0], kNow), c.explained);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Ages, AgeTest,
    ::testing::Values(
        // The repro of issue 9: created 9999-12-31, write on *.
        AgeCase{"future_created_min_token_age_seen_2h_ago", all_databases_write(hours(1)),
                write_all(kFarFuture), kNow - hours(2), true,
                "grants write on * (grants on all databases (*) are forbidden)"},
        AgeCase{"future_created_min_token_age_seen_30m_ago", all_databases_write(hours(1)),
                write_all(kFarFuture), kNow - minutes(30), false, ""},
        AgeCase{"future_created_max_age_seen_400d_ago", max_age(days(365)), write_all(kFarFuture),
                kNow - days(400), true,
                "first seen 400d ago (created_at 9999-12-31T00:00:00.000Z is later), more than "
                "max_age 365d"},
        AgeCase{"future_created_max_age_seen_300d_ago", max_age(days(365)), write_all(kFarFuture),
                kNow - days(300), false, ""},
        AgeCase{"skew_within_tolerance_ages_from_first_seen", max_age(days(30)),
                write_all(kNow - days(31) + minutes(3)), kNow - days(31), true,
                "first seen 31d ago (created_at 2026-05-01T12:03:00.000Z is later), more than "
                "max_age 30d"},
        AgeCase{"past_created_wins_over_later_first_seen", max_age(days(365)),
                write_all(ts("2024-01-01T00:00:00Z")), kNow - days(1), true,
                "created 882d12h ago, more than max_age 365d"},
        AgeCase{"past_created_young_token_seen_long_ago_is_older", max_age(days(30)),
                write_all(kNow - days(10)), kNow - days(40), true,
                "first seen 40d ago (created_at 2026-05-22T12:00:00.000Z is later), more than "
                "max_age 30d"},
        AgeCase{"no_created_at_ages_from_first_seen", max_age(days(30)), write_all(std::nullopt),
                kNow - days(31), true,
                "first seen 31d ago (the cluster gives no created_at), more than max_age 30d"},
        // Lifetime: expires_at minus the age base.
        AgeCase{"future_created_lifetime_from_first_seen", max_lifetime(days(90)),
                write_all(kNow + days(30), kNow + days(100)), kNow - days(1), true,
                "lifetime 101d exceeds max_lifetime 90d"},
        AgeCase{"future_created_short_lifetime_from_first_seen", max_lifetime(days(90)),
                write_all(kNow + days(30), kNow + days(60)), kNow - days(1), false, ""}),
    [](const ::testing::TestParamInfo<AgeCase>& i) { return i.param.name; });

TEST(AgeTest, MinTokenAgeMaturesAtFirstSeenPlusTheAgeForAFutureCreatedAt) {
  auto set = PolicySet::compile({all_databases_write(hours(1))}, {});
  ASSERT_TRUE(set.ok());
  Token t = write_all(kFarFuture);
  const Timestamp first_seen = kNow - minutes(10);
  std::vector<Subject> subjects{Subject{&t, first_seen}};
  Evaluation e = evaluate(**set, ClusterInfo{"prod", {}}, subjects, kNow);
  EXPECT_TRUE(e.findings.empty());
  EXPECT_EQ(e.next_change, first_seen + hours(1)) << "judged once it was known for 1h";
  EXPECT_EQ(
      evaluate(**set, ClusterInfo{"prod", {}}, subjects, first_seen + hours(1)).findings.size(),
      1u);
  EXPECT_TRUE(evaluate(**set, ClusterInfo{"prod", {}}, subjects, first_seen + hours(1) - kMs)
                  .findings.empty());
}

TEST(TimeAnomalyTest, PlaceholdersAndFutureCreatedAt) {
  EXPECT_TRUE(is_placeholder_time(ts("0001-01-01T00:00:00Z")));
  EXPECT_TRUE(is_placeholder_time(ts("1970-01-01T00:00:00Z")));
  EXPECT_TRUE(is_placeholder_time(ts("1970-01-01T02:00:00+02:00")));
  EXPECT_FALSE(is_placeholder_time(ts("1970-01-01T00:00:00.001Z")));
  EXPECT_FALSE(is_placeholder_time(ts("0001-01-01T00:00:01Z")));

  Token t = write_all(kNow + kFutureTolerance);
  EXPECT_EQ(future_created_at(t, kNow), std::nullopt) << "within the tolerance";
  t.created_at = kNow + kFutureTolerance + kMs;
  auto a = future_created_at(t, kNow);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->token_id, "tok-1");
  EXPECT_EQ(a->reason, kCreatedInFuture);
  EXPECT_EQ(a->value, "2026-06-01T12:05:00.001Z");
  t.created_at.reset();
  EXPECT_EQ(future_created_at(t, kNow), std::nullopt);
}

}  // namespace
}  // namespace tw::policy

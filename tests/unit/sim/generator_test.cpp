#include "sim/generator.h"

#include <gtest/gtest.h>

#include <set>

#include "core/strings.h"
#include "sim/token_store.h"

namespace tw::sim {
namespace {

const Timestamp kNow = make_timestamp(2026, 3, 1, 8, 0, 0);

TEST(GeneratorTest, SameSeedAndTimeGiveTheSameTokens) {
  ManualClock clock(kNow);
  TokenStore a("", "", &clock);
  TokenStore b("", "", &clock);
  a.generate(500, 42);
  b.generate(500, 42);
  EXPECT_EQ(a.list(), b.list());
  EXPECT_EQ(*a.list_json(true), *b.list_json(true));
  TokenStore c("", "", &clock);
  c.generate(500, 43);
  EXPECT_NE(a.list(), c.list());
}

TEST(GeneratorTest, UuidsAreVersion4) {
  Rng rng(1);
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = random_uuid(rng);
    ASSERT_TRUE(is_uuid(id)) << id;
    EXPECT_EQ(id[14], '4');
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos);
    EXPECT_EQ(id, to_lower(id));
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(GeneratorTest, MixLooksLikeARealCluster) {
  Rng rng(2024);
  constexpr int kN = 5000;
  int star = 0, never = 0, expired = 0, revoked = 0, empty = 0, writers = 0;
  std::set<std::string> ids, descriptions;
  for (int i = 0; i < kN; ++i) {
    Token t = generate_token(rng, kNow);
    ids.insert(t.id);
    descriptions.insert(t.description);
    ASSERT_TRUE(t.created_at);
    EXPECT_LE(*t.created_at, kNow);
    EXPECT_GE(*t.created_at, kNow - std::chrono::days(731));
    EXPECT_TRUE(std::is_sorted(t.permissions.begin(), t.permissions.end()));
    bool has_star = false;
    for (const auto& p : t.permissions) {
      EXPECT_TRUE(p.action == "read" || p.action == "write") << p.action;
      EXPECT_FALSE(p.resource.empty());
      EXPECT_LE(p.resource.size(), 64u);
      has_star |= p.resource == "*";
      writers += p.action == "write" ? 1 : 0;
    }
    star += has_star ? 1 : 0;
    empty += t.permissions.empty() ? 1 : 0;
    never += t.expires_at ? 0 : 1;
    if (t.expires_at) {
      EXPECT_GT(*t.expires_at, *t.created_at);
      expired += *t.expires_at <= kNow ? 1 : 0;
    }
    if (t.revoked_at) {
      ++revoked;
      EXPECT_GE(*t.revoked_at, *t.created_at);
      EXPECT_LE(*t.revoked_at, kNow);
    }
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kN));
  EXPECT_GT(descriptions.size(), 100u);
  EXPECT_NEAR(star, kN / 10, kN / 25);     // ~10% "*" grants
  EXPECT_NEAR(never, kN / 5, kN / 25);     // ~20% never expire
  EXPECT_NEAR(revoked, kN / 20, kN / 50);  // ~5% revoked
  EXPECT_GT(expired, kN / 20);             // some already expired ...
  EXPECT_LT(expired, kN / 4);              // ... but not most
  EXPECT_GT(empty, 0);                     // a few "no access" tokens
  EXPECT_GT(writers, kN / 3);
}

TEST(GeneratorTest, DescriptionsIncludeTheUsualSuspects) {
  Rng rng(5);
  std::set<std::string> prefixes;
  for (int i = 0; i < 2000; ++i) {
    std::string d = generate_description(rng);
    for (const char* p : {"telegraf writer ", "grafana", "svc-", "ci pipeline", "jane.doe"}) {
      if (d.rfind(p, 0) == 0) prefixes.insert(p);
    }
  }
  EXPECT_EQ(prefixes.size(), 5u);
}

}  // namespace
}  // namespace tw::sim

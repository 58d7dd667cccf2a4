#include "sim/token_store.h"

#include <gtest/gtest.h>

#include <set>

#include "core/strings.h"
#include "tests/unit/sim/sim_test_util.h"

namespace tw::sim {
namespace {

const Timestamp kT0 = make_timestamp(2025, 6, 1, 12, 0, 0);

std::vector<Permission> perms(std::initializer_list<std::pair<const char*, const char*>> list) {
  std::vector<Permission> out;
  for (auto [a, r] : list) out.push_back(Permission{a, r});
  return out;
}

class TokenStoreTest : public ::testing::Test {
 protected:
  ManualClock clock_{kT0};
  TokenStore store_{"", "", &clock_};
};

TEST_F(TokenStoreTest, CreateSetsIdCreatedAtAndAccessToken) {
  auto created =
      store_.create("ci pipeline", perms({{"write", "db1"}, {"read", "db1"}}), std::nullopt);
  EXPECT_TRUE(is_uuid(created.token.id));
  EXPECT_EQ(created.token.created_at, kT0);
  EXPECT_FALSE(created.token.expires_at);
  EXPECT_FALSE(created.token.revoked_at);
  EXPECT_EQ(created.access_token.rfind("apiv1_", 0), 0u);
  EXPECT_EQ(created.access_token.size(), 6u + 86u);
  EXPECT_EQ(created.access_token.find_first_not_of(
                "apiv1_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);
  auto got = store_.get(created.token.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, created.token);
  EXPECT_EQ(got->permissions, perms({{"read", "db1"}, {"write", "db1"}}));  // kept sorted
  auto other = store_.create("x", {}, kT0 + std::chrono::hours(1));
  EXPECT_NE(other.access_token, created.access_token);
  EXPECT_EQ(other.token.expires_at, kT0 + std::chrono::hours(1));
}

TEST_F(TokenStoreTest, UpdateReplacesOnlyWhatIsGiven) {
  auto id = store_.create("old", perms({{"read", "a"}, {"write", "b"}}), std::nullopt).token.id;
  auto r = store_.update(id, std::string("new"), std::nullopt);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->description, "new");
  EXPECT_EQ(r->permissions, perms({{"read", "a"}, {"write", "b"}}));
  r = store_.update(id, std::nullopt, perms({{"read", "c"}}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->description, "new");
  EXPECT_EQ(r->permissions, perms({{"read", "c"}}));
  r = store_.update(id, std::nullopt, std::vector<Permission>{});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->permissions.empty());
  auto missing =
      store_.update("00000000-0000-4000-8000-000000000000", std::string("x"), std::nullopt);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().http_status, 404);
}

TEST_F(TokenStoreTest, RevokeKeepsTokenAndRefusesChanges) {
  auto id = store_.create("t", {}, std::nullopt).token.id;
  clock_.advance(std::chrono::minutes(5));
  auto revoked = store_.revoke(id);
  ASSERT_TRUE(revoked.ok());
  EXPECT_EQ(revoked->revoked_at, kT0 + std::chrono::minutes(5));
  EXPECT_EQ(store_.size(), 1u);
  EXPECT_EQ(store_.list(true).size(), 1u);
  EXPECT_TRUE(store_.list(false).empty());

  auto again = store_.revoke(id);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().http_status, 404);
  auto patch = store_.update(id, std::string("x"), std::nullopt);
  ASSERT_FALSE(patch.ok());
  EXPECT_EQ(patch.error().http_status, 409);
  EXPECT_EQ(patch.error().message, "token is revoked");
  EXPECT_EQ(store_.revoke("nope").error().http_status, 404);
}

TEST_F(TokenStoreTest, PutReplaceRemoveKeepInsertionOrder) {
  Token a{"a", "first", {}, std::nullopt, std::nullopt, std::nullopt};
  Token b{"b", "second", {}, kT0 - std::chrono::hours(1), std::nullopt, std::nullopt};
  Token c{"c", "third", {}, std::nullopt, std::nullopt, std::nullopt};
  EXPECT_EQ(store_.put(a).created_at, kT0);  // unset createdAt: now
  store_.put(b);
  store_.put(c);
  Token b2 = b;
  b2.description = "second, replaced";
  store_.put(b2);  // same id: replaced in place
  auto list = store_.list();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[1].description, "second, replaced");

  Token c2 = c;
  c2.revoked_at = kT0;
  EXPECT_TRUE(store_.replace(c2));
  EXPECT_EQ(store_.get("c")->revoked_at, kT0);
  EXPECT_EQ(store_.get("c")->created_at, kT0);  // kept when the replacement has none
  EXPECT_FALSE(store_.replace(Token{"zzz", "", {}, {}, {}, {}}));

  EXPECT_TRUE(store_.remove("a"));
  EXPECT_FALSE(store_.remove("a"));
  list = store_.list();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, "b");
  EXPECT_EQ(list[1].id, "c");
  EXPECT_EQ(store_.get("c")->id, "c");  // the index follows the erase
  EXPECT_TRUE(is_uuid(store_.put(Token{}).id));
}

TEST_F(TokenStoreTest, ClockModes) {
  EXPECT_EQ(store_.clock_mode(), ClockMode::kReal);
  EXPECT_EQ(store_.now(), kT0);
  clock_.advance(std::chrono::seconds(10));
  EXPECT_EQ(store_.now(), kT0 + std::chrono::seconds(10));

  store_.advance_clock(std::chrono::hours(36));  // real -> offset
  EXPECT_EQ(store_.clock_mode(), ClockMode::kOffset);
  EXPECT_EQ(store_.now(), kT0 + std::chrono::seconds(10) + std::chrono::hours(36));
  clock_.advance(std::chrono::seconds(1));  // offset follows the real clock
  EXPECT_EQ(store_.now(), kT0 + std::chrono::seconds(11) + std::chrono::hours(36));
  store_.advance_clock(std::chrono::hours(1));
  EXPECT_EQ(store_.now(), kT0 + std::chrono::seconds(11) + std::chrono::hours(37));

  Timestamp frozen = make_timestamp(2030, 1, 1);
  store_.freeze_clock(frozen);
  EXPECT_EQ(store_.clock_mode(), ClockMode::kFrozen);
  clock_.advance(std::chrono::hours(5));
  EXPECT_EQ(store_.now(), frozen);
  store_.advance_clock(std::chrono::hours(2));  // frozen stays frozen
  EXPECT_EQ(store_.clock_mode(), ClockMode::kFrozen);
  EXPECT_EQ(store_.now(), frozen + std::chrono::hours(2));

  store_.use_real_clock();
  EXPECT_EQ(store_.clock_mode(), ClockMode::kReal);
  EXPECT_EQ(store_.now(), clock_.now());
  EXPECT_STREQ(to_string(ClockMode::kOffset), "offset");
}

TEST_F(TokenStoreTest, ChurnChangesAboutPercentInThirds) {
  store_.freeze_clock(kT0);
  store_.generate(300, 7);
  auto before = store_.list();
  std::size_t revoked_before = 0;
  for (const auto& t : before) revoked_before += t.revoked_at ? 1u : 0u;

  ChurnResult r = store_.churn(3.0, 99);  // 9 tokens
  EXPECT_EQ(r.created, 3u);
  EXPECT_EQ(r.updated, 3u);
  EXPECT_EQ(r.revoked, 3u);
  auto after = store_.list();
  ASSERT_EQ(after.size(), 303u);
  std::size_t revoked_after = 0, changed = 0;
  for (std::size_t i = 0; i < after.size(); ++i) {
    revoked_after += after[i].revoked_at ? 1u : 0u;
    if (i < before.size() && !before[i].revoked_at && !after[i].revoked_at &&
        (before[i].description != after[i].description ||
         before[i].permissions != after[i].permissions)) {
      ++changed;
    }
  }
  EXPECT_EQ(revoked_after, revoked_before + 3);
  EXPECT_LE(changed, 3u);  // an update may draw what the token already had
  for (std::size_t i = 300; i < after.size(); ++i) EXPECT_EQ(after[i].created_at, kT0);

  r = store_.churn(0.01, 1);  // rounds to zero: still one change
  EXPECT_EQ(r.created + r.updated + r.revoked, 1u);
  EXPECT_EQ(store_.churn(0.0, 1).created, 0u);
}

TEST_F(TokenStoreTest, ListJsonIsCachedAndInvalidated) {
  auto id =
      store_.create("a \"quoted\" description", perms({{"read", "db"}}), std::nullopt).token.id;
  auto first = store_.list_json(true);
  EXPECT_EQ(first, store_.list_json(true));  // same buffer, not rebuilt
  EXPECT_NE(first->find("a \\\"quoted\\\" description"), std::string::npos);
  ASSERT_TRUE(store_.update(id, std::string("b"), std::nullopt).ok());
  auto second = store_.list_json(true);
  EXPECT_NE(first, second);
  EXPECT_NE(second->find("\"description\":\"b\""), std::string::npos);
  ASSERT_TRUE(store_.revoke(id).ok());
  EXPECT_EQ(*store_.list_json(false), "[]");
  EXPECT_NE(store_.list_json(true)->find("\"revokedAt\":\"2025-06-01T12:00:00.000Z\""),
            std::string::npos);
}

TEST(TokenStoreIdentityTest, DedicatedJsonCarriesAccountAndCluster) {
  ManualClock clock(kT0);
  TokenStore store("11111111-1111-4111-8111-111111111111", "33333333-3333-4333-8333-333333333333",
                   &clock);
  store.put(Token{"55555555-5555-4555-8555-555555555555", "Limited Access Token",
                  perms({{"read", "DatabaseOne"}, {"write", "DatabaseTwo"}}),
                  make_timestamp(2023, 12, 21, 17, 32, 28), std::nullopt, std::nullopt});
  EXPECT_EQ(
      *store.list_json(true),
      R"([{"accountId":"11111111-1111-4111-8111-111111111111",)"
      R"("clusterId":"33333333-3333-4333-8333-333333333333",)"
      R"("id":"55555555-5555-4555-8555-555555555555","description":"Limited Access Token",)"
      R"("permissions":[{"action":"read","resource":"DatabaseOne"},)"
      R"({"action":"write","resource":"DatabaseTwo"}],"createdAt":"2023-12-21T17:32:28.000Z"}])");
}

TEST_F(TokenStoreTest, FaultsMatchCountAndExpire) {
  FaultSpec once;
  once.kind = FaultKind::kStatus;
  once.status = 503;
  once.count = 1;
  once.method = "get";
  once.path = "/tokens";
  auto id1 = store_.add_fault(once);
  FaultSpec forever;
  forever.kind = FaultKind::kEmpty;
  forever.method = "POST";
  auto id2 = store_.add_fault(forever);
  EXPECT_NE(id1, id2);

  EXPECT_FALSE(store_.take_fault("GET", "/api/v0/other"));
  auto f = store_.take_fault("GET", "/api/v0/tokens");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->status, 503);
  EXPECT_FALSE(store_.take_fault("GET", "/api/v0/tokens"));  // used up and dropped
  ASSERT_EQ(store_.faults().size(), 1u);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(store_.take_fault("POST", "/x"));
  EXPECT_EQ(store_.faults()[0].hits, 5u);
  EXPECT_TRUE(store_.remove_fault(id2));
  EXPECT_FALSE(store_.remove_fault(id2));
  EXPECT_TRUE(store_.faults().empty());
}

TEST_F(TokenStoreTest, RequestLogKeepsTheLastEntries) {
  for (std::size_t i = 0; i < kMaxRequestRecords + 5; ++i) {
    RequestRecord r;
    r.method = "GET";
    store_.record(std::move(r));
  }
  auto log = store_.requests();
  ASSERT_EQ(log.size(), kMaxRequestRecords);
  EXPECT_EQ(log.front().seq, 6u);
  EXPECT_EQ(log.back().seq, kMaxRequestRecords + 5);
  RequestRecord big;
  big.body = std::string(200 * 1024, 'x');
  store_.record(big);
  EXPECT_EQ(store_.requests().back().body->size(), 64u * 1024);
  store_.clear_requests();
  EXPECT_TRUE(store_.requests().empty());
}

TEST_F(TokenStoreTest, ResetClearsEverything) {
  store_.generate(10, 1);
  store_.add_fault(FaultSpec{});
  store_.record(RequestRecord{});
  store_.freeze_clock(make_timestamp(2030, 1, 1));
  store_.reset();
  EXPECT_EQ(store_.size(), 0u);
  EXPECT_TRUE(store_.faults().empty());
  EXPECT_TRUE(store_.requests().empty());
  EXPECT_EQ(store_.clock_mode(), ClockMode::kReal);
  EXPECT_EQ(*store_.list_json(true), "[]");
}

}  // namespace
}  // namespace tw::sim

// Tests for storage/queries.h: the inventory now and as of a past instant (rebuilt from the audit
// history), and the history query with its filters.

#include "storage/queries.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "tests/unit/storage/store_fixture.h"

namespace tw::storage {
namespace {

using testing::make_token;
using testing::StoreTest;
using tw::testing::ts;

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;

class QueriesTest : public StoreTest {
 protected:
  // Records a poll of `cluster` ending exactly at `at`.
  void poll_at(Timestamp at, const std::vector<Token>& tokens,
               const std::string& cluster = "prod") {
    clock_.set(at);
    auto s = poll(rec_, &tokens, cluster, 100);
    ASSERT_TRUE(s.ok()) << s.error().message;
    ASSERT_EQ(s->outcome, PollOutcome::kOk);
  }
  std::map<std::string, InventoryRow> at(Timestamp t, InventoryFilter f = {}) {
    auto db = raw();
    auto rows = inventory_at(*db, t, f);
    EXPECT_TRUE(rows.ok()) << (rows.ok() ? "" : rows.error().message);
    std::map<std::string, InventoryRow> out;
    if (rows.ok()) {
      for (auto& r : *rows) out[r.cluster + "/" + r.token.id] = r;
    }
    return out;
  }
  std::vector<InventoryRow> now(InventoryFilter f = {}) {
    auto db = raw();
    auto rows = query_inventory(*db, f);
    EXPECT_TRUE(rows.ok());
    return rows.ok() ? *rows : std::vector<InventoryRow>{};
  }
  std::vector<AuditRow> history(const HistoryFilter& f) {
    auto db = raw();
    auto rows = query_history(*db, f);
    EXPECT_TRUE(rows.ok()) << (rows.ok() ? "" : rows.error().message);
    return rows.ok() ? *rows : std::vector<AuditRow>{};
  }

  InventoryRecorder rec_{*store_};
};

// A history at distinct instants:
//   T1 discover a (desc a1, read db1, expires T1+10d) and b
//   T2 create c; a's description becomes a2
//   T3 a's permissions become write db2; b is revoked (revoked at T3-30m)
//   T4 c vanishes (removed; last seen T3)
//   T5 = T1+11d: a's expiry has passed (token_expired)
const Timestamp kT1 = ts("2026-01-01T00:00:00Z");
const Timestamp kT2 = kT1 + hours(1);
const Timestamp kT3 = kT1 + hours(2);
const Timestamp kT4 = kT1 + hours(3);
const Timestamp kExpiry = kT1 + hours(24 * 10);
const Timestamp kT5 = kT1 + hours(24 * 11);
const Timestamp kRevoked = kT3 - minutes(30);

class InventoryAtTest : public QueriesTest {
 protected:
  void SetUp() override {
    QueriesTest::SetUp();
    Token a1 = make_token("a", "a1", {{"read", "db1"}}, kExpiry);
    Token b = make_token("b", "b", {{"write", "*"}});
    Token c = make_token("c", "c", {});
    Token a2 = a1;
    a2.description = "a2";
    Token a3 = a2;
    a3.permissions = {{"write", "db2"}};
    Token b_revoked = b;
    b_revoked.revoked_at = kRevoked;
    poll_at(kT1, {a1, b});
    poll_at(kT2, {a2, b, c});
    poll_at(kT3, {a3, b_revoked, c});
    poll_at(kT4, {a3, b_revoked});
    poll_at(kT5, {a3, b_revoked});
  }
};

TEST_F(InventoryAtTest, TheRecordedEventsAreAsExpected) {
  HistoryFilter f;
  auto rows = history(f);
  std::vector<std::string> got;
  for (const auto& r : rows) got.push_back(r.event + ":" + r.token_id.value_or("-"));
  EXPECT_EQ(got,
            (std::vector<std::string>{"token_discovered:a", "token_discovered:b", "token_updated:a",
                                      "token_created:c", "token_updated:a", "token_revoked:b",
                                      "token_removed:c", "token_expired:a"}));
}

TEST_F(InventoryAtTest, BeforeTheFirstPollIsEmpty) {
  EXPECT_TRUE(at(kT1 - milliseconds(1)).empty());
}

TEST_F(InventoryAtTest, AtTheFirstPoll) {
  auto inv = at(kT1);
  ASSERT_EQ(inv.size(), 2u);
  const auto& a = inv.at("prod/a");
  EXPECT_EQ(a.token.description, "a1");
  EXPECT_EQ(a.token.permissions, (std::vector<Permission>{{"read", "db1"}}));
  EXPECT_EQ(a.token.expires_at, kExpiry);
  EXPECT_EQ(a.token.created_at, ts("2025-12-01T00:00:00Z"));
  EXPECT_EQ(a.status, TokenStatus::kActive);
  EXPECT_EQ(a.first_seen, format_timestamp(kT1));
  EXPECT_EQ(a.last_seen, format_timestamp(kT1));
  EXPECT_EQ(inv.at("prod/b").status, TokenStatus::kActive);
}

TEST_F(InventoryAtTest, BetweenPollsShowsTheEarlierState) {
  auto inv = at(kT2 - milliseconds(1));
  ASSERT_EQ(inv.size(), 2u);
  EXPECT_EQ(inv.at("prod/a").token.description, "a1");
  EXPECT_EQ(inv.at("prod/a").last_seen, format_timestamp(kT1));
}

TEST_F(InventoryAtTest, AtTheSecondPoll) {
  auto inv = at(kT2);
  ASSERT_EQ(inv.size(), 3u);
  EXPECT_EQ(inv.at("prod/a").token.description, "a2");
  EXPECT_EQ(inv.at("prod/a").token.permissions, (std::vector<Permission>{{"read", "db1"}}));
  EXPECT_EQ(inv.at("prod/a").first_seen, format_timestamp(kT1));
  EXPECT_EQ(inv.at("prod/a").last_seen, format_timestamp(kT2));
  EXPECT_EQ(inv.at("prod/c").status, TokenStatus::kActive);
  EXPECT_EQ(inv.at("prod/c").first_seen, format_timestamp(kT2));
}

TEST_F(InventoryAtTest, AtTheThirdPoll) {
  auto inv = at(kT3 + minutes(1));
  ASSERT_EQ(inv.size(), 3u);
  EXPECT_EQ(inv.at("prod/a").token.description, "a2");
  EXPECT_EQ(inv.at("prod/a").token.permissions, (std::vector<Permission>{{"write", "db2"}}));
  EXPECT_EQ(inv.at("prod/b").status, TokenStatus::kRevoked);
  EXPECT_EQ(inv.at("prod/b").token.revoked_at, kRevoked);
  EXPECT_EQ(inv.at("prod/b").last_seen, format_timestamp(kT3));
}

TEST_F(InventoryAtTest, RemovedTokenKeepsItsLastSighting) {
  auto inv = at(kT4);
  ASSERT_EQ(inv.size(), 3u);
  const auto& c = inv.at("prod/c");
  EXPECT_EQ(c.status, TokenStatus::kRemoved);
  EXPECT_EQ(c.first_seen, format_timestamp(kT2));
  EXPECT_EQ(c.last_seen, format_timestamp(kT3));
  EXPECT_EQ(inv.at("prod/a").last_seen, format_timestamp(kT4));
}

TEST_F(InventoryAtTest, ExpiryIsAppliedAtTheQueriedInstant) {
  // After the expiry but before any poll recorded it.
  auto just_before = at(kExpiry - milliseconds(1));
  EXPECT_EQ(just_before.at("prod/a").status, TokenStatus::kActive);
  auto inv = at(kExpiry);
  EXPECT_EQ(inv.at("prod/a").status, TokenStatus::kExpired);
  EXPECT_EQ(inv.at("prod/b").status, TokenStatus::kRevoked) << "revoked wins over expiry";
  auto later = at(kT5 + hours(1));
  EXPECT_EQ(later.at("prod/a").status, TokenStatus::kExpired);
}

TEST_F(InventoryAtTest, MatchesTheCurrentInventoryAtTheEnd) {
  auto past = at(kT5);
  auto current = now();
  ASSERT_EQ(past.size(), current.size());
  for (const auto& row : current) {
    const auto& p = past.at(row.cluster + "/" + row.token.id);
    EXPECT_EQ(p.token, row.token) << row.token.id;
    EXPECT_EQ(p.status, row.status) << row.token.id;
    EXPECT_EQ(p.first_seen, row.first_seen) << row.token.id;
    EXPECT_EQ(p.last_seen, row.last_seen) << row.token.id;
  }
}

TEST_F(InventoryAtTest, Filters) {
  InventoryFilter revoked;
  revoked.status = TokenStatus::kRevoked;
  auto r = at(kT5, revoked);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_TRUE(r.count("prod/b"));

  InventoryFilter other;
  other.cluster = "other";
  EXPECT_TRUE(at(kT5, other).empty());
}

TEST_F(InventoryAtTest, ReappearedTokenKeepsItsFirstSighting) {
  const Timestamp t6 = kT5 + hours(1);
  Token a3 = make_token("a", "a2", {{"write", "db2"}}, kExpiry);
  Token b = make_token("b", "b", {{"write", "*"}});
  b.revoked_at = kRevoked;
  poll_at(t6, {a3, b, make_token("c", "c", {})});
  auto inv = at(t6);
  const auto& c = inv.at("prod/c");
  EXPECT_EQ(c.status, TokenStatus::kActive);
  EXPECT_EQ(c.first_seen, format_timestamp(kT2));
  EXPECT_EQ(c.last_seen, format_timestamp(t6));
  EXPECT_EQ(at(t6 - milliseconds(1)).at("prod/c").status, TokenStatus::kRemoved);
  for (const auto& row : now()) {
    if (row.token.id == "c") {
      EXPECT_EQ(row.status, TokenStatus::kActive);
      EXPECT_EQ(row.first_seen, format_timestamp(kT2));
    }
  }
  HistoryFilter f;
  f.token_id = "c";
  auto rows = history(f);
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.back().event, "token_reappeared");
  EXPECT_NE(rows.back().detail.find(R"("status":"removed"},"after":{)"), std::string::npos)
      << rows.back().detail;
}

// Thousands of tokens in two clusters (the replay's id index grows past its first size): the
// inventory at the last poll is the current one, row for row.
TEST_F(QueriesTest, ManyTokensReplayLikeTheCurrentInventory) {
  auto prod = testing::make_tokens(3000, "p-");
  auto staging = testing::make_tokens(1500, "s-");
  poll_at(kT1, prod, "prod");
  poll_at(kT1 + minutes(1), staging, "staging");
  prod.resize(2000);  // 1000 removed
  staging[7].description = "changed";
  poll_at(kT2, prod, "prod");
  poll_at(kT2 + minutes(1), staging, "staging");
  auto replayed = at(kT2 + minutes(1));
  auto current = now();
  ASSERT_EQ(replayed.size(), 4500u);
  ASSERT_EQ(current.size(), 4500u);
  for (const auto& r : current) {
    const auto& x = replayed.at(r.cluster + "/" + r.token.id);
    EXPECT_EQ(x.token.description, r.token.description) << r.token.id;
    EXPECT_EQ(x.status, r.status) << r.token.id;
    EXPECT_EQ(x.last_seen, r.last_seen) << r.token.id;
  }
  EXPECT_EQ(replayed.at("staging/s-07").token.description, "changed");
  EXPECT_EQ(replayed.at("prod/p-2500").status, TokenStatus::kRemoved);
}

TEST_F(QueriesTest, QueryInventoryFiltersAndOrder) {
  poll_at(kT1, {make_token("z"), make_token("a"), make_token("r", "r", {}, std::nullopt, kT1)},
          "us");
  poll_at(kT1 + minutes(1), {make_token("m")}, "eu");
  auto all = now();
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].cluster + "/" + all[0].token.id, "eu/m");
  EXPECT_EQ(all[1].cluster + "/" + all[1].token.id, "us/a");
  EXPECT_EQ(all[2].cluster + "/" + all[2].token.id, "us/r");
  EXPECT_EQ(all[3].cluster + "/" + all[3].token.id, "us/z");
  EXPECT_EQ(all[1].token.permissions, (std::vector<Permission>{{"read", "db1"}}));
  EXPECT_EQ(all[1].first_seen, format_timestamp(kT1));

  InventoryFilter us;
  us.cluster = "us";
  EXPECT_EQ(now(us).size(), 3u);
  InventoryFilter revoked;
  revoked.status = TokenStatus::kRevoked;
  auto r = now(revoked);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].token.id, "r");
  InventoryFilter both;
  both.cluster = "eu";
  both.status = TokenStatus::kRevoked;
  EXPECT_TRUE(now(both).empty());
  InventoryFilter active_us;
  active_us.cluster = "us";
  active_us.status = TokenStatus::kActive;
  EXPECT_EQ(now(active_us).size(), 2u);
}

class HistoryTest : public QueriesTest {
 protected:
  void SetUp() override {
    QueriesTest::SetUp();
    poll_at(kT1, {make_token("a"), make_token("b")}, "eu");       // seq 1, 2
    poll_at(kT2, {make_token("a", "x"), make_token("b")}, "eu");  // seq 3
    poll_at(kT3, {make_token("a")}, "us");                        // seq 4
    clock_.set(kT4);
    ASSERT_TRUE(poll(rec_, nullptr, "us").ok());  // seq 5 poll_failed
  }
  static std::vector<std::int64_t> seqs(const std::vector<AuditRow>& rows) {
    std::vector<std::int64_t> out;
    for (const auto& r : rows) out.push_back(r.seq);
    return out;
  }
};

TEST_F(HistoryTest, AllRowsInOrderWithEveryColumn) {
  auto rows = history({});
  ASSERT_EQ(seqs(rows), (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(rows[0].recorded_at, format_timestamp(kT1));
  EXPECT_EQ(rows[0].cluster, "eu");
  EXPECT_EQ(rows[0].token_id, "a");
  EXPECT_EQ(rows[0].event, "token_discovered");
  EXPECT_EQ(rows[0].prev_hash, std::string(64, '0'));
  EXPECT_EQ(rows[1].prev_hash, rows[0].hash);
  EXPECT_EQ(rows[4].event, "poll_failed");
  EXPECT_FALSE(rows[4].token_id.has_value());
  EXPECT_EQ(rows[2].detail, R"({"before":{"description":"d"},"after":{"description":"x"}})");
}

TEST_F(HistoryTest, Filters) {
  HistoryFilter token;
  token.token_id = "a";
  EXPECT_EQ(seqs(history(token)), (std::vector<std::int64_t>{1, 3, 4}));

  HistoryFilter cluster;
  cluster.cluster = "us";
  EXPECT_EQ(seqs(history(cluster)), (std::vector<std::int64_t>{4, 5}));

  HistoryFilter token_and_cluster;
  token_and_cluster.token_id = "a";
  token_and_cluster.cluster = "eu";
  EXPECT_EQ(seqs(history(token_and_cluster)), (std::vector<std::int64_t>{1, 3}));

  HistoryFilter since;
  since.since = kT2;  // inclusive
  EXPECT_EQ(seqs(history(since)), (std::vector<std::int64_t>{3, 4, 5}));

  HistoryFilter until;
  until.until = kT2;  // inclusive
  EXPECT_EQ(seqs(history(until)), (std::vector<std::int64_t>{1, 2, 3}));

  HistoryFilter window;
  window.since = kT2 + milliseconds(1);
  window.until = kT3;
  EXPECT_EQ(seqs(history(window)), (std::vector<std::int64_t>{4}));

  HistoryFilter events;
  events.events = {"token_updated", "poll_failed"};
  EXPECT_EQ(seqs(history(events)), (std::vector<std::int64_t>{3, 5}));

  HistoryFilter none;
  none.token_id = "nope";
  EXPECT_TRUE(history(none).empty());

  HistoryFilter injection;
  injection.token_id = "a' OR '1'='1";
  EXPECT_TRUE(history(injection).empty()) << "parameters are bound, not spliced";
}

TEST_F(HistoryTest, LimitKeepsTheMostRecentInAscendingOrder) {
  HistoryFilter last2;
  last2.limit = 2;
  EXPECT_EQ(seqs(history(last2)), (std::vector<std::int64_t>{4, 5}));

  HistoryFilter big;
  big.limit = 100;
  EXPECT_EQ(seqs(history(big)), (std::vector<std::int64_t>{1, 2, 3, 4, 5}));

  HistoryFilter filtered;
  filtered.cluster = "eu";
  filtered.limit = 1;
  EXPECT_EQ(seqs(history(filtered)), (std::vector<std::int64_t>{3}));
}

}  // namespace
}  // namespace tw::storage

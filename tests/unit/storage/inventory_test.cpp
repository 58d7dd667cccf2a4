// Tests for storage/inventory.h: the pure snapshot diff that turns a token list into events.

#include "storage/inventory.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/sha256.h"
#include "tests/unit/core/test_support.h"

namespace tw::storage {
namespace {

using tw::testing::PrintTo;

using tw::testing::ts;

const std::string kCluster = "prod-eu";
const Timestamp kT0 = ts("2026-01-01T00:00:00Z");  // last successful poll
const Timestamp kNow = ts("2026-01-01T00:01:00Z");

Token tok(std::string id, std::string description = "d",
          std::vector<Permission> perms = {{"read", "db1"}},
          std::optional<Timestamp> expires = std::nullopt,
          std::optional<Timestamp> revoked = std::nullopt) {
  Token t;
  t.id = std::move(id);
  t.description = std::move(description);
  t.permissions = std::move(perms);
  t.created_at = ts("2025-12-01T00:00:00Z");
  t.expires_at = expires;
  t.revoked_at = revoked;
  return t;
}

KnownToken known(Token t, TokenStatus status = TokenStatus::kActive,
                 Timestamp first_seen = ts("2025-12-15T00:00:00Z")) {
  return KnownToken{std::move(t), status, first_seen, kT0};
}

Inventory inv(std::vector<KnownToken> tokens) {
  Inventory out;
  for (auto& k : tokens) {
    std::string id = k.token.id;
    out.emplace(std::move(id), std::move(k));
  }
  return out;
}

struct Ev {
  EventKind kind;
  std::string token_id;
  std::string detail;  // "" to skip the detail check
  bool operator==(const Ev&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Ev& e) {
  return os << to_string(e.kind) << "(" << e.token_id << ")"
            << (e.detail.empty() ? "" : " " + e.detail);
}

std::vector<Ev> events(const DiffResult& d, bool with_detail = true) {
  std::vector<Ev> out;
  for (const auto& e : d.events) {
    EXPECT_EQ(e.cluster, kCluster);
    out.push_back({e.kind, e.token_id, with_detail ? e.detail : ""});
  }
  return out;
}

const KnownToken* upsert(const DiffResult& d, const std::string& id) {
  for (const auto& u : d.upserts) {
    if (u.token.id == id) return &u;
  }
  return nullptr;
}

TEST(DiffInventory, FirstPollDiscoversEveryTokenWhateverItsStatus) {
  std::vector<Token> fetched{tok("a"),
                             tok("b", "old", {}, std::nullopt, ts("2025-12-20T00:00:00Z")),
                             tok("c", "gone", {}, ts("2025-12-31T00:00:00Z"))};
  auto d = diff_inventory(kCluster, {}, fetched, kNow, true, kNow);
  EXPECT_EQ(events(d, false), (std::vector<Ev>{{EventKind::kTokenDiscovered, "a", ""},
                                               {EventKind::kTokenDiscovered, "b", ""},
                                               {EventKind::kTokenDiscovered, "c", ""}}));
  EXPECT_EQ(d.events[0].detail,
            R"({"description":"d","permissions":[{"action":"read","resource":"db1"}],)"
            R"("created_at":"2025-12-01T00:00:00.000Z","expires_at":null,"revoked_at":null,)"
            R"("status":"active"})");
  EXPECT_NE(d.events[1].detail.find(R"("status":"revoked")"), std::string::npos)
      << d.events[1].detail;
  EXPECT_NE(d.events[2].detail.find(R"("status":"expired")"), std::string::npos)
      << d.events[2].detail;
  ASSERT_EQ(d.upserts.size(), 3u);
  EXPECT_EQ(upsert(d, "a")->status, TokenStatus::kActive);
  EXPECT_EQ(upsert(d, "b")->status, TokenStatus::kRevoked);
  EXPECT_EQ(upsert(d, "c")->status, TokenStatus::kExpired);
  for (const auto& u : d.upserts) {
    EXPECT_EQ(u.first_seen, kNow);
    EXPECT_EQ(u.last_seen, kNow);
  }
  EXPECT_TRUE(d.vanished_ids.empty());
  EXPECT_EQ(d.known_present, 0u);
}

TEST(DiffInventory, NewTokenAfterTheFirstPollIsCreated) {
  auto d = diff_inventory(kCluster, inv({known(tok("a"))}), {tok("a"), tok("b")}, kNow, false, kT0);
  EXPECT_EQ(events(d, false), (std::vector<Ev>{{EventKind::kTokenCreated, "b", ""}}));
  ASSERT_EQ(d.upserts.size(), 1u);
  EXPECT_EQ(d.upserts[0].token.id, "b");
  EXPECT_EQ(d.upserts[0].first_seen, kNow);
  EXPECT_EQ(d.known_present, 1u);
}

TEST(DiffInventory, CreatedOnEmptyInventoryWhenNotTheFirstPoll) {
  // The cluster had a successful poll that listed nothing: tokens appearing now are created.
  auto d = diff_inventory(kCluster, {}, {tok("a")}, kNow, false, kT0);
  EXPECT_EQ(events(d, false), (std::vector<Ev>{{EventKind::kTokenCreated, "a", ""}}));
}

TEST(DiffInventory, ReappearingRemovedTokenIsReappearedWithBeforeAndAfter) {
  Timestamp first = ts("2025-06-01T00:00:00Z");
  auto d = diff_inventory(kCluster, inv({known(tok("a", "old"), TokenStatus::kRemoved, first)}),
                          {tok("a", "new")}, kNow, false, kT0);
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].kind, EventKind::kTokenReappeared);
  EXPECT_EQ(d.events[0].detail.rfind(R"({"before":{)", 0), 0u) << d.events[0].detail;
  EXPECT_NE(d.events[0].detail.find(R"("description":"old")"), std::string::npos)
      << d.events[0].detail;
  EXPECT_NE(d.events[0].detail.find(R"("status":"removed"},"after":{)"), std::string::npos)
      << d.events[0].detail;
  EXPECT_NE(d.events[0].detail.find(R"("description":"new")"), std::string::npos)
      << d.events[0].detail;
  ASSERT_EQ(d.upserts.size(), 1u);
  EXPECT_EQ(d.upserts[0].status, TokenStatus::kActive);
  EXPECT_EQ(d.upserts[0].first_seen, first) << "first_seen survives a disappearance";
  EXPECT_EQ(d.known_present, 0u) << "a removed token is not known-present";
}

TEST(DiffInventory, ReappearingEvenOnAFirstPollIsReappeared) {
  auto d = diff_inventory(kCluster, inv({known(tok("a"), TokenStatus::kRemoved)}), {tok("a")}, kNow,
                          true, kNow);
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].kind, EventKind::kTokenReappeared);
}

TEST(DiffInventory, UnchangedTokensProduceNothing) {
  auto known_inv = inv(
      {known(tok("a")), known(tok("b", "x", {}, ts("2027-01-01T00:00:00Z"))),
       known(tok("c", "r", {}, std::nullopt, ts("2025-12-02T00:00:00Z")), TokenStatus::kRevoked)});
  auto d = diff_inventory(kCluster, known_inv,
                          {tok("a"), tok("b", "x", {}, ts("2027-01-01T00:00:00Z")),
                           tok("c", "r", {}, std::nullopt, ts("2025-12-02T00:00:00Z"))},
                          kNow, false, kT0);
  EXPECT_TRUE(d.events.empty());
  EXPECT_TRUE(d.upserts.empty());
  EXPECT_TRUE(d.vanished_ids.empty());
  EXPECT_EQ(d.known_present, 3u);
}

struct UpdateCase {
  std::string name;
  Token before;
  Token after;
  std::string detail;
};

class DiffUpdates : public ::testing::TestWithParam<UpdateCase> {};

TEST_P(DiffUpdates, OneEventWithOnlyTheChangedFields) {
  const auto& c = GetParam();
  auto d = diff_inventory(kCluster, inv({known(c.before)}), {c.after}, kNow, false, kT0);
  EXPECT_EQ(events(d), (std::vector<Ev>{{EventKind::kTokenUpdated, c.before.id, c.detail}}));
  ASSERT_EQ(d.upserts.size(), 1u);
  EXPECT_EQ(d.upserts[0].token, c.after);
  EXPECT_EQ(d.upserts[0].status, TokenStatus::kActive);
  EXPECT_EQ(d.upserts[0].first_seen, ts("2025-12-15T00:00:00Z"));
  EXPECT_EQ(d.upserts[0].last_seen, kNow);
}

INSTANTIATE_TEST_SUITE_P(
    Table, DiffUpdates,
    ::testing::Values(
        UpdateCase{"description", tok("a", "old"), tok("a", "new"),
                   R"({"before":{"description":"old"},"after":{"description":"new"}})"},
        UpdateCase{"permissions", tok("a", "d", {{"read", "db1"}}),
                   tok("a", "d", {{"read", "db1"}, {"write", "db1"}}),
                   R"({"before":{"permissions":[{"action":"read","resource":"db1"}]},)"
                   R"("after":{"permissions":[{"action":"read","resource":"db1"},)"
                   R"({"action":"write","resource":"db1"}]}})"},
        UpdateCase{"permissions emptied", tok("a", "d", {{"write", "*"}}), tok("a", "d", {}),
                   R"({"before":{"permissions":[{"action":"write","resource":"*"}]},)"
                   R"("after":{"permissions":[]}})"},
        UpdateCase{
            "expiry set", tok("a"), tok("a", "d", {{"read", "db1"}}, ts("2026-06-01T00:00:00Z")),
            R"({"before":{"expires_at":null},"after":{"expires_at":"2026-06-01T00:00:00.000Z"}})"},
        UpdateCase{"expiry moved", tok("a", "d", {{"read", "db1"}}, ts("2026-06-01T00:00:00Z")),
                   tok("a", "d", {{"read", "db1"}}, ts("2026-07-01T00:00:00.250Z")),
                   R"({"before":{"expires_at":"2026-06-01T00:00:00.000Z"},)"
                   R"("after":{"expires_at":"2026-07-01T00:00:00.250Z"}})"},
        UpdateCase{
            "description and permissions together", tok("a", "old", {{"read", "x"}}),
            tok("a", "new", {{"read", "y"}}),
            R"({"before":{"description":"old","permissions":[{"action":"read","resource":"x"}]},)"
            R"("after":{"description":"new","permissions":[{"action":"read","resource":"y"}]}})"},
        UpdateCase{"hostile description", tok("a", "old"), tok("a", "x\"\n</script>\xFF"),
                   "{\"before\":{\"description\":\"old\"},\"after\":{\"description\":"
                   "\"x\\\"\\n<\\/script>\xEF\xBF\xBD\"}}"}),
    tw::testing::CaseName());

TEST(DiffInventory, NewlyRevokedIsTokenRevokedNotAnUpdate) {
  Timestamp revoked = ts("2026-01-01T00:00:30.5Z");
  auto d =
      diff_inventory(kCluster, inv({known(tok("a"))}),
                     {tok("a", "d", {{"read", "db1"}}, std::nullopt, revoked)}, kNow, false, kT0);
  EXPECT_EQ(events(d), (std::vector<Ev>{{EventKind::kTokenRevoked, "a",
                                         R"({"revoked_at":"2026-01-01T00:00:30.500Z"})"}}));
  ASSERT_EQ(d.upserts.size(), 1u);
  EXPECT_EQ(d.upserts[0].status, TokenStatus::kRevoked);
}

TEST(DiffInventory, RevokedWithOtherChangesIsUpdateWithoutRevokedAtThenRevoked) {
  Timestamp revoked = ts("2026-01-01T00:00:30Z");
  auto d =
      diff_inventory(kCluster, inv({known(tok("a", "old"))}),
                     {tok("a", "new", {{"read", "db1"}}, std::nullopt, revoked)}, kNow, false, kT0);
  ASSERT_EQ(d.events.size(), 2u);
  EXPECT_EQ(d.events[0].kind, EventKind::kTokenUpdated);
  EXPECT_EQ(d.events[0].detail,
            R"({"before":{"description":"old"},"after":{"description":"new"}})");
  EXPECT_EQ(d.events[0].detail.find("revoked_at"), std::string::npos);
  EXPECT_EQ(d.events[1].kind, EventKind::kTokenRevoked);
}

TEST(DiffInventory, RevokedAndExpiredAtOnceIsOnlyRevoked) {
  Timestamp expires = ts("2026-01-01T00:00:10Z");
  auto d = diff_inventory(kCluster, inv({known(tok("a", "d", {{"read", "db1"}}, expires))}),
                          {tok("a", "d", {{"read", "db1"}}, expires, ts("2026-01-01T00:00:20Z"))},
                          kNow, false, kT0);
  EXPECT_EQ(events(d, false), (std::vector<Ev>{{EventKind::kTokenRevoked, "a", ""}}));
  EXPECT_EQ(d.upserts[0].status, TokenStatus::kRevoked);
}

TEST(DiffInventory, ExpiryPassingIsReportedExactlyOnce) {
  Timestamp expires = ts("2026-01-01T00:00:30Z");
  Token t = tok("a", "d", {{"read", "db1"}}, expires);
  auto first = diff_inventory(kCluster, inv({known(t)}), {t}, kNow, false, kT0);
  EXPECT_EQ(events(first), (std::vector<Ev>{{EventKind::kTokenExpired, "a",
                                             R"({"expires_at":"2026-01-01T00:00:30.000Z"})"}}));
  ASSERT_EQ(first.upserts.size(), 1u);
  EXPECT_EQ(first.upserts[0].status, TokenStatus::kExpired);

  Inventory after = inv({known(t)});
  apply_upserts(after, first.upserts);
  EXPECT_EQ(after.at("a").status, TokenStatus::kExpired);
  auto second = diff_inventory(kCluster, after, {t}, kNow + std::chrono::minutes(1), false, kNow);
  EXPECT_TRUE(second.events.empty());
  EXPECT_TRUE(second.upserts.empty());
}

TEST(DiffInventory, ExpiryAtTheExactInstantCounts) {
  Token t = tok("a", "d", {{"read", "db1"}}, kNow);
  auto d = diff_inventory(kCluster, inv({known(t)}), {t}, kNow, false, kT0);
  EXPECT_EQ(events(d, false), (std::vector<Ev>{{EventKind::kTokenExpired, "a", ""}}));
  auto before = diff_inventory(kCluster, inv({known(t)}), {t}, kNow - std::chrono::milliseconds(1),
                               false, kT0);
  EXPECT_TRUE(before.events.empty());
}

TEST(DiffInventory, ExpiryPassingWithADescriptionChangeIsBoth) {
  Timestamp expires = ts("2026-01-01T00:00:30Z");
  auto d = diff_inventory(kCluster, inv({known(tok("a", "old", {{"read", "db1"}}, expires))}),
                          {tok("a", "new", {{"read", "db1"}}, expires)}, kNow, false, kT0);
  EXPECT_EQ(events(d, false), (std::vector<Ev>{{EventKind::kTokenUpdated, "a", ""},
                                               {EventKind::kTokenExpired, "a", ""}}));
}

TEST(DiffInventory, ExpiryExtendedMakesAnExpiredTokenActiveAgain) {
  Token old = tok("a", "d", {{"read", "db1"}}, ts("2025-12-31T00:00:00Z"));
  Token renewed = tok("a", "d", {{"read", "db1"}}, ts("2026-12-31T00:00:00Z"));
  auto d = diff_inventory(kCluster, inv({known(old, TokenStatus::kExpired)}), {renewed}, kNow,
                          false, kT0);
  EXPECT_EQ(events(d, false), (std::vector<Ev>{{EventKind::kTokenUpdated, "a", ""}}));
  ASSERT_EQ(d.upserts.size(), 1u);
  EXPECT_EQ(d.upserts[0].status, TokenStatus::kActive);
}

TEST(DiffInventory, VanishedTokensAreRemoved) {
  auto known_inv = inv({known(tok("a")), known(tok("b"), TokenStatus::kExpired),
                        known(tok("c"), TokenStatus::kRevoked), known(tok("d")),
                        known(tok("old"), TokenStatus::kRemoved)});
  auto d = diff_inventory(kCluster, known_inv, {tok("a")}, kNow, false, kT0);
  // b is expired and c revoked: a list that leaves them out hides them (plausible); only the
  // active d has vanished.
  EXPECT_EQ(events(d),
            (std::vector<Ev>{{EventKind::kTokenRemoved, "d", R"({"previous_status":"active"})"}}));
  EXPECT_EQ(d.vanished_ids, (std::vector<std::string>{"d"}));
  EXPECT_EQ(d.known_present, 4u) << "already-removed tokens are not counted";
  ASSERT_EQ(d.upserts.size(), 1u);
  for (const auto& u : d.upserts) {
    EXPECT_EQ(u.status, TokenStatus::kRemoved);
    EXPECT_EQ(u.last_seen, kT0) << "last seen when the cluster was last seen whole";
    EXPECT_EQ(u.first_seen, ts("2025-12-15T00:00:00Z"));
  }
}

TEST(DiffInventory, EventsAreInTokenIdOrderWhateverTheListOrder) {
  // One order for every change (created, updated, removed): by token id, so that a first poll's
  // rows go into the indexes keyed by token id at one edge, and the log does not depend on the
  // order the source lists in.
  auto known_inv = inv({known(tok("m", "old")), known(tok("z")), known(tok("a")), known(tok("b"))});
  auto d = diff_inventory(kCluster, known_inv,
                          {tok("new2"), tok("m", "new"), tok("b"), tok("new1")}, kNow, false, kT0);
  EXPECT_EQ(events(d, false), (std::vector<Ev>{{EventKind::kTokenRemoved, "a", ""},
                                               {EventKind::kTokenUpdated, "m", ""},
                                               {EventKind::kTokenCreated, "new1", ""},
                                               {EventKind::kTokenCreated, "new2", ""},
                                               {EventKind::kTokenRemoved, "z", ""}}));
}

TEST(DiffInventory, EmptyListAgainstEmptyInventory) {
  auto d = diff_inventory(kCluster, {}, {}, kNow, true, kNow);
  EXPECT_TRUE(d.events.empty());
  EXPECT_TRUE(d.upserts.empty());
  EXPECT_EQ(d.known_present, 0u);
}

TEST(VanishedDigest, IdentifiesTheSet) {
  EXPECT_EQ(vanished_digest({}), sha256_hex(""));
  EXPECT_EQ(vanished_digest({"a", "b"}), sha256_hex("a\nb\n"));
  EXPECT_EQ(vanished_digest({"a", "b"}), vanished_digest({"a", "b"}));
  EXPECT_NE(vanished_digest({"a", "b"}), vanished_digest({"a", "c"}));
  EXPECT_NE(vanished_digest({"a", "b"}), vanished_digest({"a"}));
  EXPECT_NE(vanished_digest({"ab"}), vanished_digest({"a", "b"})) << "ids are separated";
  EXPECT_EQ(vanished_digest({"x"}).size(), 64u);
}

TEST(ApplyUpserts, InsertsAndReplaces) {
  Inventory i = inv({known(tok("a", "old"))});
  apply_upserts(i, {known(tok("a", "new")), known(tok("b"), TokenStatus::kRevoked)});
  ASSERT_EQ(i.size(), 2u);
  EXPECT_EQ(i.at("a").token.description, "new");
  EXPECT_EQ(i.at("b").status, TokenStatus::kRevoked);
}

}  // namespace
}  // namespace tw::storage

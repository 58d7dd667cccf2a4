// Tests for storage/read_txn.h and storage/report_queries.h: one snapshot per read transaction,
// and the typed reads behind reports (polls, violations, action, halt and exemption events,
// token changes, the chain head) against a real audit database in a temp dir.

#include "storage/report_queries.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "storage/chain.h"
#include "storage/queries.h"
#include "tests/unit/storage/store_fixture.h"

namespace tw::storage {
namespace {

using testing::make_token;
using tw::testing::ts;

using std::chrono::hours;
using std::chrono::minutes;

const Timestamp kStart = ts("2026-01-01T00:00:00Z");

class ReportQueriesTest : public testing::HistoryStoreTest {
 protected:
  void violation(const std::string& cluster, const std::string& token, const std::string& policy,
                 const std::string& severity, Timestamp opened, std::optional<Timestamp> resolved,
                 const std::string& resolution = "compliant") {
    insert_violation({cluster, token, policy, severity, "alert", opened, resolved, resolution});
  }
  static ReportPeriod period(Timestamp from, Timestamp to, std::string cluster = "") {
    ReportPeriod p;
    p.from = from;
    p.to = to;
    p.cluster = std::move(cluster);
    return p;
  }
};

TEST_F(ReportQueriesTest, PollsOfAClusterOverAPeriod) {
  const std::vector<Token> tokens{make_token("a")};
  poll_at(kStart, &tokens);
  poll_at(kStart + hours(1), &tokens);
  poll_at(kStart + hours(2), nullptr);  // failed
  poll_at(kStart + hours(3), &tokens);
  poll_at(kStart + hours(4), &tokens, "staging");
  auto txn = read();
  auto clusters = polled_clusters(txn);
  ASSERT_TRUE(clusters.ok());
  EXPECT_EQ(*clusters, (std::vector<std::string>{"prod", "staging"}));

  auto c = poll_coverage(txn, period(kStart + minutes(30), kStart + hours(3), "prod"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->ok, 2);
  EXPECT_EQ(c->failed, 1);
  EXPECT_EQ(c->suspect, 0);
  EXPECT_EQ(c->first_started, kStart - std::chrono::seconds(1));
  EXPECT_EQ(c->last_ok_before, kStart);
  EXPECT_EQ(c->ok_finished, (std::vector<Timestamp>{kStart + hours(1), kStart + hours(3)}));
  auto starts = poll_starts(txn, period(kStart, kStart + hours(4), "prod"));
  ASSERT_TRUE(starts.ok());
  EXPECT_EQ(starts->size(), 3u);  // the first poll started a second before the period

  auto none = poll_coverage(txn, period(kStart, kStart + hours(4), "nope"));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->ok, 0);
  EXPECT_FALSE(none->first_started);
  EXPECT_TRUE(none->ok_finished.empty());
}

TEST_F(ReportQueriesTest, ViolationsOpenedResolvedAndOpenAtEnd) {
  violation("prod", "a", "p1", "warning", kStart, kStart + hours(1));
  violation("prod", "b", "p1", "critical", kStart + hours(1), kStart + hours(5), "exempted");
  violation("prod", "c", "p2", "info", kStart - hours(5), std::nullopt);
  violation("staging", "d", "p1", "info", kStart + hours(2), std::nullopt);
  auto txn = read();
  const auto all = period(kStart, kStart + hours(3));

  auto times = violation_times(txn, all);
  ASSERT_TRUE(times.ok());
  EXPECT_EQ(times->opened.size(), 4u);
  EXPECT_EQ(times->opened.front(), format_timestamp(kStart - hours(5)));  // sorted
  EXPECT_EQ(times->resolved.size(), 2u);

  auto opened = violations_opened(txn, all);
  ASSERT_TRUE(opened.ok());
  ASSERT_EQ(opened->size(), 1u);  // p2's opened before the period
  EXPECT_EQ((*opened)[0].policy, "p1");
  EXPECT_EQ((*opened)[0].opened, 3);
  EXPECT_EQ((*opened)[0].severity, "warning");  // max() of the text, as the report shows it

  auto open = violations_open_at_end(txn, period(kStart, kStart + hours(3), "prod"));
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->size(), 2u);
  for (const auto& c : *open) EXPECT_EQ(c.count, 1) << c.policy;  // b (p1), c (p2)

  auto resolved = violations_resolved(txn, period(kStart, kStart + hours(6)));
  ASSERT_TRUE(resolved.ok());
  ASSERT_EQ(resolved->size(), 2u);
  auto staging = violations_resolved(txn, period(kStart, kStart + hours(6), "staging"));
  ASSERT_TRUE(staging.ok());
  EXPECT_TRUE(staging->empty());
}

TEST_F(ReportQueriesTest, ActionsHaltsAndApprovals) {
  const std::string p1 = R"({"policy":"p1","action_id":1)";
  append(EventKind::kActionPlanned, "prod", "a", p1 + R"(,"awaiting_approval":true})", kStart);
  append(EventKind::kActionPlanned, "prod", "b", R"({"policy":"p1","action_id":2})", kStart);
  append(EventKind::kActionFailed, "prod", "b", R"({"policy":"p1","action_id":2,"final":false})",
         kStart + minutes(1));
  append(EventKind::kActionFailed, "prod", "b", R"({"policy":"p1","action_id":2})",
         kStart + minutes(2));
  append(EventKind::kActionSucceeded, "prod", "c", R"({"action_id":3})", kStart);  // no policy
  append(EventKind::kEnforcementHalted, "prod", "",
         R"({"planned":7,"policies":{"p1":5,"p2":2,"bad":"x"}})", kStart + minutes(3));
  append(EventKind::kActionApproved, "prod", "a", p1 + "}", kStart + hours(2));
  auto txn = read();

  auto counts = action_event_counts(txn, period(kStart, kStart + hours(1)));
  ASSERT_TRUE(counts.ok());
  std::int64_t planned = 0, failed_final = 0, failed_retry = 0;
  for (const auto& c : *counts) {
    EXPECT_EQ(c.policy, "p1");
    if (c.event == "action_planned") planned += c.count;
    if (c.event == "action_failed") (c.final ? failed_final : failed_retry) += c.count;
  }
  EXPECT_EQ(planned, 2);
  EXPECT_EQ(failed_final, 1);
  EXPECT_EQ(failed_retry, 1);

  auto h = halts(txn, period(kStart, kStart + hours(1)));
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->size(), 1u);
  EXPECT_EQ((*h)[0].cluster, "prod");
  EXPECT_EQ((*h)[0].planned, 7);
  EXPECT_EQ((*h)[0].by_policy,
            (std::vector<std::pair<std::string, std::int64_t>>{{"p1", 5}, {"p2", 2}}));

  // Awaiting approval at the end of the period: until the approval at +2h.
  auto before = awaiting_approval_at_end(txn, period(kStart, kStart + hours(1)));
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before->size(), 1u);
  EXPECT_EQ((*before)[0].policy, "p1");
  EXPECT_EQ((*before)[0].count, 1);
  auto after = awaiting_approval_at_end(txn, period(kStart, kStart + hours(3)));
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty());
}

TEST_F(ReportQueriesTest, ExemptionUsesCountDistinctTokens) {
  const std::string live = R"({"policy":"p1","exemption":"k1","expires":"2026-02-01T00:00:00Z"})";
  const std::string gone = R"({"policy":"p1","exemption":"k2","expires":"2025-12-01T00:00:00Z"})";
  append(EventKind::kExemptionApplied, "prod", "a", live, kStart);
  append(EventKind::kExemptionApplied, "prod", "a", live, kStart + hours(1));
  append(EventKind::kExemptionApplied, "prod", "b", live, kStart + hours(1));
  append(EventKind::kExemptionApplied, "prod", "c", gone, kStart);
  auto txn = read();
  auto uses = exemption_uses(txn, period(kStart, kStart + hours(2)));
  ASSERT_TRUE(uses.ok());
  ASSERT_EQ(uses->size(), 1u);  // k2 expired before the period
  EXPECT_EQ((*uses)[0].policy, "p1");
  EXPECT_EQ((*uses)[0].exemption, "k1");
  EXPECT_EQ((*uses)[0].tokens, 2);
}

TEST_F(ReportQueriesTest, TokenChangesCountedAndStreamedInOrder) {
  std::vector<Token> tokens{make_token("a"), make_token("b")};
  poll_at(kStart, &tokens);  // discovered
  tokens.push_back(make_token("c", "new"));
  tokens[0].description = "renamed";
  poll_at(kStart + hours(1), &tokens);  // c created, a updated
  auto txn = read();
  auto counts = token_event_counts(txn, period(kStart, kStart + hours(1)));
  ASSERT_TRUE(counts.ok());
  std::map<std::string, std::int64_t> by_event;
  for (const auto& c : *counts) by_event[c.event] = c.count;
  EXPECT_EQ(by_event, (std::map<std::string, std::int64_t>{
                          {"token_created", 1}, {"token_discovered", 2}, {"token_updated", 1}}));

  std::vector<std::string> seen;
  std::int64_t last_seq = 0;
  auto s = for_each_token_change(txn, period(kStart, kStart + hours(1)), [&](const TokenChange& c) {
    EXPECT_GT(c.seq, last_seq);
    last_seq = c.seq;
    EXPECT_FALSE(c.detail.empty());
    seen.push_back(std::string(c.event) + ":" + std::string(c.token_id));
    return true;
  });
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(seen.size(), 2u);  // discoveries are not changes
  int visits = 0;
  ASSERT_TRUE(for_each_token_change(txn, period(kStart, kStart + hours(1)), [&](const auto&) {
                return ++visits < 1;
              }).ok());
  EXPECT_EQ(visits, 1);
  auto other = token_event_counts(txn, period(kStart, kStart + hours(1), "staging"));
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->empty());
}

TEST_F(ReportQueriesTest, ReadTxnReadsOneSnapshotUntilItEnds) {
  append(EventKind::kDaemonStarted, "", "", "{}", kStart);
  auto txn = read();
  auto before = audit_event_count(txn);
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(*before, 1);
  append(EventKind::kDaemonStopped, "", "", "{}", kStart + minutes(1));  // another writer
  auto same = audit_event_count(txn);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, 1);
  auto head = chain_head_seq(txn);
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(*head, 1);
  ASSERT_TRUE(txn.end().ok());
  auto now = audit_event_count(txn);
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(*now, 2);
  EXPECT_EQ(txn.path(), path_);
}

TEST_F(ReportQueriesTest, EmptyDatabase) {
  auto txn = read();
  auto head = chain_head_seq(txn);
  ASSERT_TRUE(head.ok());
  EXPECT_FALSE(*head);
  auto clusters = polled_clusters(txn);
  ASSERT_TRUE(clusters.ok());
  EXPECT_TRUE(clusters->empty());
}

TEST_F(ReportQueriesTest, LastAppliedConfigHash) {
  EXPECT_EQ(*last_applied_config_hash(store_->db()), "");
  append(EventKind::kConfigApplied, "", "", R"({"config_hash":"h1"})", kStart);
  append(EventKind::kConfigApplied, "", "", R"({"config_hash":"h2"})", kStart + minutes(1));
  EXPECT_EQ(*last_applied_config_hash(store_->db()), "h2");
}

}  // namespace
}  // namespace tw::storage

// Tests for daemon/anomalies.h: which anomalies a fetched list has at a poll time, and that each
// is recorded once per token and reason (token_anomaly), across polls, recorder instances
// (restarts) and rolled-back transactions. A real temp-file audit store; no clock.

#include "daemon/anomalies.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "storage/anomalies.h"
#include "storage/audit_store.h"
#include "storage/queries.h"
#include "storage/sqlite.h"
#include "tests/unit/core/test_support.h"

namespace tw::daemon {
namespace {

using tw::testing::ts;

const Timestamp kPoll = ts("2026-06-01T12:00:00Z");

Token created(std::string id, std::optional<Timestamp> at) {
  Token t;
  t.id = std::move(id);
  t.created_at = at;
  return t;
}

TEST(AnomaliesInTest, PlaceholdersFirstThenFutureCreatedAtBeyondTheTolerance) {
  std::vector<Token> tokens{
      created("past", ts("2025-01-01T00:00:00Z")), created("skew", kPoll + kFutureTolerance),
      created("ahead", kPoll + kFutureTolerance + Duration(1)),
      created("far", ts("9999-12-31T00:00:00Z")), created("none", std::nullopt)};
  std::vector<TimeAnomaly> reported{{"none", kCreatedAtUnset, "{}"}};
  EXPECT_EQ(anomalies_in(tokens, reported, kPoll),
            (std::vector<TimeAnomaly>{{"none", kCreatedAtUnset, "{}"},
                                      {"ahead", kCreatedInFuture, "2026-06-01T12:05:00.001Z"},
                                      {"far", kCreatedInFuture, "9999-12-31T00:00:00.000Z"}}));
}

class AnomalyRecorderTest : public ::testing::Test {
 protected:
  AnomalyRecorderTest() {
    auto s =
        storage::AuditStore::open(dir_.file("audit.db"), storage::AuditStore::Mode::kReadWrite);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    if (s.ok()) store_ = std::move(*s);
  }
  // One poll: record in a transaction, commit it (or not), tell the recorder.
  void poll(AnomalyRecorder& r, const std::vector<TimeAnomaly>& seen, bool commit = true,
            bool reload = false) {
    auto txn = store_->begin();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(r.record(*txn, seen, kPoll, reload).ok());
    bool committed = commit && txn->commit().ok();
    r.after_commit(committed);
  }
  std::vector<storage::RecordedAnomaly> recorded(const std::string& cluster = "") {
    auto txn = store_->begin();
    EXPECT_TRUE(txn.ok());
    auto rows = storage::recorded_anomalies(txn->db(), cluster);
    EXPECT_TRUE(rows.ok());
    return rows.ok() ? *rows : std::vector<storage::RecordedAnomaly>{};
  }
  std::vector<storage::AuditRow> events() {
    auto txn = store_->begin();
    EXPECT_TRUE(txn.ok());
    storage::HistoryFilter f;
    f.events = {"token_anomaly"};
    auto rows = storage::query_history(txn->db(), f);
    EXPECT_TRUE(rows.ok());
    return rows.ok() ? *rows : std::vector<storage::AuditRow>{};
  }

  tw::testing::TempDir dir_;
  std::unique_ptr<storage::AuditStore> store_;
  const TimeAnomaly future_{"t1", kCreatedInFuture, "9999-12-31T00:00:00.000Z"};
  const TimeAnomaly unset_{"t2", kCreatedAtUnset, "0001-01-01T00:00:00Z"};
};

TEST_F(AnomalyRecorderTest, RecordsEachTokenAndReasonOnce) {
  ASSERT_NE(store_, nullptr);
  AnomalyRecorder r("prod");
  poll(r, {future_, unset_});
  EXPECT_EQ(r.recorded(), (std::vector<TimeAnomaly>{future_, unset_}));
  poll(r, {future_, unset_});
  EXPECT_TRUE(r.recorded().empty());
  auto rows = events();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].cluster, "prod");
  EXPECT_EQ(rows[0].token_id, "t1");
  EXPECT_EQ(rows[0].recorded_at, "2026-06-01T12:00:00.000Z");
  EXPECT_EQ(
      rows[0].detail,
      R"({"reason":"created_in_future","value":"9999-12-31T00:00:00.000Z","poll_time":"2026-06-01T12:00:00.000Z"})");
  EXPECT_EQ(
      rows[1].detail,
      R"({"reason":"created_at_unset","value":"0001-01-01T00:00:00Z","poll_time":"2026-06-01T12:00:00.000Z"})");

  // Another reason for the same token is another anomaly.
  poll(r, {TimeAnomaly{"t1", kCreatedAtUnset, "{}"}});
  EXPECT_EQ(r.recorded().size(), 1u);
  EXPECT_EQ(events().size(), 3u);
}

TEST_F(AnomalyRecorderTest, TheAuditLogIsTheMemoryAcrossRestartsAndClusters) {
  ASSERT_NE(store_, nullptr);
  {
    AnomalyRecorder r("prod");
    poll(r, {future_});
  }
  AnomalyRecorder restarted("prod");
  poll(restarted, {future_});
  EXPECT_TRUE(restarted.recorded().empty());
  AnomalyRecorder other_cluster("staging");
  poll(other_cluster, {future_});
  EXPECT_EQ(other_cluster.recorded().size(), 1u)
      << "the same token id in another cluster is another token";
  EXPECT_EQ(recorded("prod").size(), 1u);
  EXPECT_EQ(recorded("").size(), 2u);
}

TEST_F(AnomalyRecorderTest, AnotherWriterIsSeenOnReload) {
  ASSERT_NE(store_, nullptr);
  AnomalyRecorder daemon("prod");
  poll(daemon, {future_});
  AnomalyRecorder manual_poll("prod");
  poll(manual_poll, {unset_});
  poll(daemon, {unset_}, true, /*reload=*/true);
  EXPECT_TRUE(daemon.recorded().empty());
  EXPECT_EQ(events().size(), 2u);
}

TEST_F(AnomalyRecorderTest, ARolledBackPollRecordsAgainNextTime) {
  ASSERT_NE(store_, nullptr);
  AnomalyRecorder r("prod");
  poll(r, {future_}, /*commit=*/false);
  EXPECT_TRUE(r.recorded().empty());
  EXPECT_TRUE(events().empty());
  poll(r, {future_});
  EXPECT_EQ(r.recorded().size(), 1u);
  EXPECT_EQ(events().size(), 1u);
}

TEST_F(AnomalyRecorderTest, RecordedUpToAnInstant) {
  ASSERT_NE(store_, nullptr);
  AnomalyRecorder r("prod");
  poll(r, {future_});
  auto txn = store_->begin();
  ASSERT_TRUE(txn.ok());
  auto before = storage::recorded_anomalies(txn->db(), "prod", kPoll - Duration(1));
  ASSERT_TRUE(before.ok());
  EXPECT_TRUE(before->empty());
  auto at = storage::recorded_anomalies(txn->db(), "prod", kPoll);
  ASSERT_TRUE(at.ok());
  ASSERT_EQ(at->size(), 1u);
  EXPECT_EQ((*at)[0].reason, "created_in_future");
  EXPECT_EQ((*at)[0].value, "9999-12-31T00:00:00.000Z");
}

}  // namespace
}  // namespace tw::daemon

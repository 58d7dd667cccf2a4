// The exporter against a fake sink: at least once, in seq order, the cursor persisted, a failed
// batch sent again whole, nothing skipped, resumption from the cursor or the sink's own resume
// point, events written by another connection, and the metrics of a sink.
#include "export/exporter.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "metrics/metrics.h"
#include "storage/audit_store.h"
#include "storage/export_log.h"
#include "storage/sqlite.h"
#include "tests/unit/core/test_support.h"

namespace tw::exporting {
namespace {

using tw::testing::TempDir;
using tw::testing::ts;

struct FakeState {
  std::vector<std::vector<std::int64_t>> batches;  // the seqs of every delivery that succeeded
  int fail_next = 0;
  int attempts = 0;
  std::optional<std::int64_t> resume;
  std::string resume_hash;              // empty: the database's hash of `resume`
  std::optional<std::int64_t> settled;  // settled_seq's answer (nullopt: everything sent)
  int reopened = 0;
};

class FakeSink : public Sink {
 public:
  FakeSink(FakeState& s, const std::string& db_path) : s_(s), db_path_(db_path) {}
  Status deliver(std::span<const storage::AuditRow> rows) override {
    ++s_.attempts;
    if (s_.fail_next > 0) {
      --s_.fail_next;
      return make_error(ErrorCode::kNetwork, "syslog collector x: connection refused");
    }
    std::vector<std::int64_t> seqs;
    for (const auto& r : rows) seqs.push_back(r.seq);
    s_.batches.push_back(seqs);
    return ok_status();
  }
  Result<std::optional<ResumePoint>> resume_point() override {
    if (!s_.resume) return std::optional<ResumePoint>();
    std::string hash = s_.resume_hash;
    if (hash.empty()) {
      auto db = storage::Db::open(db_path_, storage::Db::Mode::kReadWrite);
      auto h = storage::read_event_hash(**db, *s_.resume);
      hash = h.ok() && *h ? **h : "none";
    }
    return std::optional<ResumePoint>(ResumePoint{*s_.resume, hash});
  }
  std::int64_t settled_seq(std::int64_t sent) override {
    return s_.settled ? std::min(sent, *s_.settled) : sent;
  }
  void reopen() override { ++s_.reopened; }
  std::string target() const override { return "fake:x"; }

 private:
  FakeState& s_;
  std::string db_path_;
};

class ExporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = storage::AuditStore::open(path_, storage::AuditStore::Mode::kReadWrite);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(*s);
  }

  void append(int n) {
    auto txn = store_->begin();
    ASSERT_TRUE(txn.ok());
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(txn->append({EventKind::kDaemonStarted, "", "", "{}"}, clock_.now()).ok());
    }
    ASSERT_TRUE(txn->commit().ok());
  }

  std::unique_ptr<Exporter> make(std::int64_t batch = 3, metrics::Metrics* m = nullptr) {
    auto db = storage::Db::open(path_, storage::Db::Mode::kReadWrite);
    EXPECT_TRUE(db.ok());
    return std::make_unique<Exporter>(ExporterOptions{"remote", "fake:x", batch},
                                      std::make_unique<FakeSink>(state_, path_), std::move(*db),
                                      clock_, Logger("export", nullptr), m);
  }

  std::int64_t cursor() {
    auto c = storage::read_export_cursor(store_->db(), "remote");
    EXPECT_TRUE(c.ok());
    return c.ok() && *c ? (*c)->delivered_seq : -1;
  }

  std::vector<std::int64_t> delivered() const {
    std::vector<std::int64_t> out;
    for (const auto& b : state_.batches) out.insert(out.end(), b.begin(), b.end());
    return out;
  }

  static std::vector<std::int64_t> seqs(std::int64_t from, std::int64_t to) {
    std::vector<std::int64_t> out;
    for (auto s = from; s <= to; ++s) out.push_back(s);
    return out;
  }

  TempDir dir_;
  std::string path_ = dir_.file("audit.db");
  ManualClock clock_{ts("2026-01-01T00:00:00Z")};
  std::unique_ptr<storage::AuditStore> store_;
  FakeState state_;
};

TEST_F(ExporterTest, DeliversInOrderInBatchesAndPersistsTheCursor) {
  append(7);
  auto ex = make();
  EXPECT_EQ(ex->step(), StepResult::kDelivered);
  EXPECT_EQ(cursor(), 3);
  EXPECT_EQ(ex->step(), StepResult::kDelivered);
  EXPECT_EQ(ex->step(), StepResult::kDelivered);
  EXPECT_EQ(ex->step(), StepResult::kIdle);
  EXPECT_EQ(state_.batches, (std::vector<std::vector<std::int64_t>>{{1, 2, 3}, {4, 5, 6}, {7}}));
  EXPECT_EQ(cursor(), 7);
  EXPECT_EQ(ex->delivered_seq(), 7);
  EXPECT_EQ(ex->oldest_undelivered(), std::nullopt);
  auto c = storage::read_export_cursor(store_->db(), "remote");
  EXPECT_EQ((*c)->target, "fake:x");
}

TEST_F(ExporterTest, AFailedBatchIsSentAgainWholeAndNothingIsSkipped) {
  append(5);
  auto ex = make();
  state_.fail_next = 2;
  EXPECT_EQ(ex->step(), StepResult::kFailed);
  EXPECT_EQ(ex->step(), StepResult::kFailed);
  EXPECT_EQ(ex->consecutive_failures(), 2);
  EXPECT_EQ(cursor(), -1);  // nothing delivered, no cursor yet
  ASSERT_TRUE(ex->oldest_undelivered().has_value());
  EXPECT_EQ(*ex->oldest_undelivered(), ts("2026-01-01T00:00:00Z"));
  while (ex->step() == StepResult::kDelivered) {
  }
  EXPECT_EQ(ex->consecutive_failures(), 0);
  EXPECT_EQ(state_.batches.front(), (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(delivered(), seqs(1, 5));
}

TEST_F(ExporterTest, ResumesAfterARestartFromTheCursor) {
  append(4);
  {
    auto ex = make();
    EXPECT_EQ(ex->step(), StepResult::kDelivered);  // 1..3
  }
  append(2);
  auto ex = make();
  while (ex->step() == StepResult::kDelivered) {
  }
  EXPECT_EQ(delivered(), seqs(1, 6));
  EXPECT_EQ(cursor(), 6);
}

TEST_F(ExporterTest, ResumesAfterTheSinksOwnResumePointWhenItIsAhead) {
  append(6);
  state_.resume = 4;  // the sink holds 1..4 although the cursor was never written
  auto ex = make();
  while (ex->step() == StepResult::kDelivered) {
  }
  EXPECT_EQ(delivered(), seqs(5, 6));
  EXPECT_EQ(cursor(), 6);
}

TEST_F(ExporterTest, AResumePointBehindTheCursorIsResumedFromAndTheGapSentAgain) {
  append(6);
  ASSERT_TRUE(storage::write_export_cursor(store_->db(),
                                           {"remote", "fake:x", 5, std::nullopt, 5, std::nullopt})
                  .ok());
  state_.resume = 2;  // the destination lost 3..5 (restored from a backup): no hole is left
  auto ex = make();
  while (ex->step() == StepResult::kDelivered) {
  }
  EXPECT_EQ(delivered(), seqs(3, 6));
  EXPECT_EQ(cursor(), 6);
}

TEST_F(ExporterTest, ADestinationAheadOfTheDatabaseIsRefusedAndTheGateStaysClosed) {
  append(3);
  state_.resume = 800;  // e.g. a database restored from a backup, or another instance's file
  auto ex = make();
  EXPECT_EQ(ex->step(), StepResult::kFailed);
  EXPECT_EQ(ex->step(), StepResult::kFailed);  // retried, refused again
  EXPECT_TRUE(state_.batches.empty());
  EXPECT_EQ(ex->consecutive_failures(), 2);
  EXPECT_EQ(ex->delivered_seq(), 0);
  EXPECT_FALSE(ex->status().oldest_known);
  EXPECT_FALSE(ex->reported());
}

TEST_F(ExporterTest, AResumePointWithAnotherHashIsRefused) {
  append(3);
  state_.resume = 2;
  state_.resume_hash = std::string(64, '0');  // another chain's event 2
  auto ex = make();
  EXPECT_EQ(ex->step(), StepResult::kFailed);
  EXPECT_TRUE(state_.batches.empty());
  state_.resume_hash.clear();  // the file moved away and a matching one in its place
  ex->reopen();
  while (ex->step() == StepResult::kDelivered) {
  }
  EXPECT_EQ(delivered(), seqs(3, 3));
}

TEST_F(ExporterTest, TheCursorStoresOnlyTheSettledSeqAndARestartResendsTheRest) {
  append(6);
  state_.settled = 2;  // the sink still keeps 3..6 for resending
  {
    auto ex = make();
    while (ex->step() == StepResult::kDelivered) {
    }
    EXPECT_EQ(delivered(), seqs(1, 6));  // the next batch starts after what was sent
    EXPECT_EQ(cursor(), 2);
    EXPECT_EQ(ex->delivered_seq(), 6);  // accepted by the sink: the lag and the gate count it
    // ... and so does a one-shot poll's gate, from the stored cursor (daemon/export_gate.h).
    auto stored = storage::read_export_cursor(store_->db(), "remote");
    ASSERT_TRUE(stored.ok() && stored->has_value());
    EXPECT_EQ((*stored)->sent_seq, 6);
    EXPECT_EQ((*stored)->delivered_seq, 2);
    state_.settled = 4;  // settles while idle
    EXPECT_EQ(ex->step(), StepResult::kIdle);
    EXPECT_EQ(cursor(), 4);
  }
  state_.batches.clear();
  state_.settled.reset();
  auto ex = make();  // a restart: the kept range is sent again
  while (ex->step() == StepResult::kDelivered) {
  }
  EXPECT_EQ(delivered(), seqs(5, 6));
  EXPECT_EQ(cursor(), 6);
}

TEST_F(ExporterTest, AFailedDatabaseReadMakesTheOldestUndeliveredUnknown) {
  append(2);
  auto ex = make();
  while (ex->step() == StepResult::kDelivered) {
  }
  EXPECT_TRUE(ex->status().oldest_known);
  ASSERT_TRUE(ex->status().last_ok.has_value());
  EXPECT_EQ(*ex->status().last_ok, clock_.now());
  ASSERT_TRUE(store_->db().exec("DROP TABLE IF EXISTS chain_head").ok());
  clock_.advance(std::chrono::seconds(5));
  EXPECT_EQ(ex->step(), StepResult::kFailed);
  EXPECT_FALSE(ex->status().oldest_known);
  EXPECT_EQ(*ex->status().last_ok, clock_.now() - std::chrono::seconds(5));
}

TEST_F(ExporterTest, WarnsButResumesWhenTheCursorWasStoredForAnotherTarget) {
  append(3);
  ASSERT_TRUE(storage::write_export_cursor(
                  store_->db(), {"remote", "fake:elsewhere", 2, std::nullopt, 2, std::nullopt})
                  .ok());
  auto ex = make();
  while (ex->step() == StepResult::kDelivered) {
  }
  EXPECT_EQ(delivered(), seqs(3, 3));
}

TEST_F(ExporterTest, CatchesUpEventsWrittenByAnotherConnection) {
  auto ex = make(100);
  EXPECT_EQ(ex->step(), StepResult::kIdle);
  // Another process (a one-shot `poll`) writes through its own store.
  {
    auto other = storage::AuditStore::open(path_, storage::AuditStore::Mode::kReadWrite);
    ASSERT_TRUE(other.ok());
    auto txn = (*other)->begin();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(txn->append({EventKind::kDaemonStarted, "", "", "{}"}, clock_.now()).ok());
    ASSERT_TRUE(txn->commit().ok());
  }
  EXPECT_EQ(ex->step(), StepResult::kDelivered);
  EXPECT_EQ(delivered(), seqs(1, 1));
}

TEST_F(ExporterTest, ReopenReachesTheSinkAndAsksItsResumePointAgain) {
  append(2);
  auto ex = make();
  EXPECT_EQ(ex->step(), StepResult::kDelivered);
  append(3);
  state_.resume = 4;  // as if the destination already held up to 4
  ex->reopen();
  EXPECT_EQ(state_.reopened, 1);
  EXPECT_EQ(ex->step(), StepResult::kDelivered);
  EXPECT_EQ(delivered(), (std::vector<std::int64_t>{1, 2, 5}));
}

TEST_F(ExporterTest, PublishesLagAndFailuresAsMetrics) {
  metrics::Metrics m("test");
  append(4);
  clock_.advance(std::chrono::minutes(10));
  auto ex = make(3, &m);
  state_.fail_next = 1;
  EXPECT_EQ(ex->step(), StepResult::kFailed);
  std::string text = m.render();
  EXPECT_NE(text.find("tokenwarden_export_failures_total{sink=\"remote\"} 1"), std::string::npos);
  EXPECT_NE(text.find("tokenwarden_export_lag_events{sink=\"remote\"} 4"), std::string::npos);
  EXPECT_NE(text.find("tokenwarden_export_lag_seconds{sink=\"remote\"} 600"), std::string::npos);
  EXPECT_NE(text.find("tokenwarden_export_up{sink=\"remote\"} 0"), std::string::npos);
  while (ex->step() == StepResult::kDelivered) {
  }
  text = m.render();
  EXPECT_NE(text.find("tokenwarden_export_delivered_seq{sink=\"remote\"} 4"), std::string::npos);
  EXPECT_NE(text.find("tokenwarden_export_lag_events{sink=\"remote\"} 0"), std::string::npos);
  EXPECT_NE(text.find("tokenwarden_export_lag_seconds{sink=\"remote\"} 0"), std::string::npos);
  EXPECT_NE(text.find("tokenwarden_export_up{sink=\"remote\"} 1"), std::string::npos);
}

TEST_F(ExporterTest, TheLagInSecondsKeepsGrowingAtAScrapeDuringALongDelivery) {
  metrics::Metrics m("test");
  append(4);
  clock_.advance(std::chrono::minutes(10));
  auto ex = make(3, &m);
  state_.fail_next = 1;
  EXPECT_EQ(ex->step(), StepResult::kFailed);
  clock_.advance(std::chrono::minutes(1));  // no step since: the thread is busy delivering
  ex->refresh_lag_metric(clock_.now());
  EXPECT_NE(m.render().find("tokenwarden_export_lag_seconds{sink=\"remote\"} 660"),
            std::string::npos);
}

TEST_F(ExporterTest, TheThreadDrainsEverythingBeforeItStops) {
  append(10);
  ExportThread t(make(3));
  t.notify();
  t.drain_and_stop(std::chrono::seconds(60));  // returns once caught up, not after 60 s
  EXPECT_EQ(delivered(), seqs(1, 10));
  EXPECT_EQ(cursor(), 10);
}

TEST_F(ExporterTest, ADrainStopsAtItsGraceWhenTheSinkKeepsFailing) {
  append(2);
  state_.fail_next = 1'000'000;
  ExportThread t(make());
  t.drain_and_stop(std::chrono::milliseconds(50));
  EXPECT_GE(state_.attempts, 1);
  EXPECT_TRUE(state_.batches.empty());
  EXPECT_EQ(cursor(), -1);
}

TEST(ExportBackoff, DoublesFromOneSecondToThirty) {
  EXPECT_EQ(export_backoff(1), std::chrono::seconds(1));
  EXPECT_EQ(export_backoff(2), std::chrono::seconds(2));
  EXPECT_EQ(export_backoff(5), std::chrono::seconds(16));
  EXPECT_EQ(export_backoff(6), std::chrono::seconds(30));
  EXPECT_EQ(export_backoff(100), std::chrono::seconds(30));
}

}  // namespace
}  // namespace tw::exporting

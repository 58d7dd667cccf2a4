// Tests for daemon/poller.h: ClusterPoller::run_once with a scripted fake ClusterClient
// (tests/support/fakes.h), a real temp-file audit store and a manual clock.

#include "daemon/poller.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "storage/audit_store.h"
#include "storage/recorder.h"
#include "storage/sqlite.h"
#include "tests/support/fakes.h"
#include "tests/unit/core/test_support.h"

namespace tw::daemon {
namespace {

using tw::testing::ts;

Token token(std::string id, std::string description = "d") {
  Token t;
  t.id = std::move(id);
  t.description = std::move(description);
  t.permissions = {{"read", "db1"}};
  t.created_at = ts("2025-12-01T00:00:00Z");
  return t;
}

std::vector<Token> tokens(int n) {
  std::vector<Token> out;
  for (int i = 0; i < n; ++i) out.push_back(token("tok-" + std::to_string(i)));
  return out;
}

using tw::testing::FakeCluster;
using FakeState = tw::testing::FakeClusterState;

class PollerTest : public ::testing::Test {
 protected:
  PollerTest() {
    auto s =
        storage::AuditStore::open(dir_.file("audit.db"), storage::AuditStore::Mode::kReadWrite);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    if (s.ok()) store_ = std::move(*s);
  }
  void SetUp() override {
    ASSERT_NE(store_, nullptr);
    recorder_ = std::make_unique<storage::InventoryRecorder>(*store_);
    ClusterConfig cfg;
    cfg.name = "prod-eu";
    cfg.source.cluster = "prod-eu";
    cfg.poll_interval = std::chrono::minutes(1);
    poller_ = std::make_unique<ClusterPoller>(cfg, std::make_unique<FakeCluster>(fake_, clock_),
                                              *recorder_, clock_, Logger("poller", sink_));
  }

  void script_ok(std::vector<Token> list, bool replaced = false) {
    influx::TokenList l;
    l.tokens = std::move(list);
    l.replaced_invalid_utf8 = replaced;
    fake_->script.emplace_back(std::move(l));
  }
  void script_digest(std::vector<Token> list, std::string digest) {
    influx::TokenList l;
    l.tokens = std::move(list);
    l.digest = std::move(digest);
    fake_->script.emplace_back(std::move(l));
  }
  void script_error(ErrorCode code, std::string message) {
    fake_->script.emplace_back(make_error(code, std::move(message)));
  }
  CycleReport run(RunOptions options = {}) {
    auto rep = poller_->run_once(options);
    clock_.advance(std::chrono::minutes(1));
    return rep;
  }
  std::int64_t count(const std::string& sql) {
    auto db = storage::Db::open(dir_.file("audit.db"), storage::Db::Mode::kReadOnly);
    EXPECT_TRUE(db.ok());
    auto st = (*db)->prepare(sql);
    EXPECT_TRUE(st.ok()) << sql;
    auto row = st->step();
    EXPECT_TRUE(row.ok() && *row);
    return st->int64(0);
  }
  static std::int64_t n(const storage::EventCounts& c, EventKind k) {
    return c[static_cast<std::size_t>(k)];
  }

  tw::testing::TempDir dir_;
  std::unique_ptr<storage::AuditStore> store_;
  std::unique_ptr<storage::InventoryRecorder> recorder_;
  ManualClock clock_{ts("2026-01-01T00:00:00Z")};
  // Lists only what a test scripts (1.5 s each); get_token finds `tokens`.
  std::shared_ptr<FakeState> fake_ = [] {
    auto s = std::make_shared<FakeState>();
    s->script_only = true;
    s->fetch_time = std::chrono::milliseconds(1500);
    return s;
  }();
  std::shared_ptr<MemoryLogSink> sink_ = std::make_shared<MemoryLogSink>();
  std::unique_ptr<ClusterPoller> poller_;
};

TEST_F(PollerTest, SuccessfulFirstPoll) {
  script_ok(tokens(3));
  Timestamp start = clock_.now();
  auto rep = run();
  EXPECT_EQ(rep.cluster, "prod-eu");
  EXPECT_TRUE(rep.recorded);
  EXPECT_TRUE(rep.error.empty()) << rep.error;
  EXPECT_EQ(rep.started_at, start);
  EXPECT_EQ(rep.finished_at, start + std::chrono::milliseconds(1500))
      << "finish is read after the fetch";
  EXPECT_EQ(rep.summary.outcome, storage::PollOutcome::kOk);
  EXPECT_GT(rep.summary.poll_id, 0);
  EXPECT_EQ(rep.summary.token_count, 3u);
  EXPECT_EQ(n(rep.summary.events, EventKind::kTokenDiscovered), 3);
  EXPECT_EQ(fake_->list_calls, 1);
  EXPECT_EQ(fake_->revoke_calls() + fake_->restrict_calls(), 0) << "polling never acts";
  EXPECT_EQ(count("SELECT COUNT(*) FROM polls WHERE outcome = 'ok'"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log WHERE event = 'token_discovered'"), 3);
}

TEST_F(PollerTest, UnchangedPollRecordsNoEvents) {
  script_ok(tokens(3));
  script_ok(tokens(3));
  run();
  auto rep = run();
  EXPECT_TRUE(rep.recorded);
  EXPECT_EQ(rep.summary.outcome, storage::PollOutcome::kOk);
  for (int k = 0; k < kEventKindCount; ++k)
    EXPECT_EQ(rep.summary.events[static_cast<std::size_t>(k)], 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log"), 3);
  EXPECT_EQ(count("SELECT COUNT(*) FROM polls"), 2);
}

TEST_F(PollerTest, FailedFetchIsRecordedAsFailed) {
  script_ok(tokens(2));
  script_error(ErrorCode::kNetwork,
               "GET https://h/api/v0/tokens: connection refused while connecting");
  run();
  auto rep = run();
  EXPECT_TRUE(rep.recorded);
  EXPECT_EQ(rep.summary.outcome, storage::PollOutcome::kFailed);
  EXPECT_EQ(rep.error, "GET https://h/api/v0/tokens: connection refused while connecting");
  EXPECT_EQ(n(rep.summary.events, EventKind::kPollFailed), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM polls WHERE outcome = 'failed'"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log WHERE event = 'poll_failed'"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM token_inventory WHERE status = 'active'"), 2);
}

TEST_F(PollerTest, SuspectPollIsReported) {
  script_ok(tokens(10));
  script_ok(tokens(2));
  script_ok(tokens(2));
  run();
  auto rep = run();
  EXPECT_TRUE(rep.recorded);
  EXPECT_EQ(rep.summary.outcome, storage::PollOutcome::kSuspect);
  EXPECT_EQ(rep.summary.known, 10u);
  EXPECT_EQ(rep.summary.vanished, 8u);
  EXPECT_FALSE(rep.error.empty());
  EXPECT_EQ(rep.error, rep.summary.message);
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log WHERE event = 'token_removed'"), 0);

  auto confirm = run();
  EXPECT_EQ(confirm.summary.outcome, storage::PollOutcome::kOk);
  EXPECT_TRUE(confirm.summary.confirmed_suspect);
  EXPECT_TRUE(confirm.error.empty());
  EXPECT_EQ(n(confirm.summary.events, EventKind::kTokenRemoved), 8);
}

TEST_F(PollerTest, MaxVanishedPercentIsPassedThrough) {
  script_ok(tokens(10));
  script_ok(tokens(2));
  run();
  RunOptions o;
  o.max_vanished_percent = 100;
  auto rep = run(o);
  EXPECT_EQ(rep.summary.outcome, storage::PollOutcome::kOk);
  EXPECT_EQ(n(rep.summary.events, EventKind::kTokenRemoved), 8);
}

TEST_F(PollerTest, CancelledFetchRecordsNothing) {
  script_ok(tokens(2));
  script_error(ErrorCode::kCancelled, "GET https://h/api/v0/tokens was cancelled by shutdown");
  run();
  std::int64_t audit = count("SELECT COUNT(*) FROM audit_log");
  std::int64_t polls = count("SELECT COUNT(*) FROM polls");
  std::atomic<bool> cancel{true};
  RunOptions o;
  o.cancel = &cancel;
  auto rep = run(o);
  EXPECT_FALSE(rep.recorded);
  EXPECT_EQ(rep.summary.outcome, storage::PollOutcome::kFailed);
  EXPECT_EQ(rep.summary.poll_id, 0);
  EXPECT_NE(rep.error.find("cancelled"), std::string::npos) << rep.error;
  EXPECT_EQ(fake_->last_cancel, &cancel) << "the cancel flag reaches the source";
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log"), audit);
  EXPECT_EQ(count("SELECT COUNT(*) FROM polls"), polls);
}

TEST_F(PollerTest, DryRunWritesNothingButReports) {
  script_ok(tokens(4));
  RunOptions o;
  o.dry_run = true;
  auto rep = run(o);
  EXPECT_TRUE(rep.recorded);
  EXPECT_EQ(rep.summary.poll_id, 0);
  EXPECT_EQ(n(rep.summary.events, EventKind::kTokenDiscovered), 4);
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log"), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM polls"), 0);
}

TEST_F(PollerTest, InvalidUtf8ListIsRecordedAndWarned) {
  Token t = token("a", "bad \xEF\xBF\xBD");
  script_ok({t}, true);
  auto rep = run();
  EXPECT_TRUE(rep.recorded);
  EXPECT_EQ(rep.summary.outcome, storage::PollOutcome::kOk);
  bool warned = false;
  for (const auto& line : sink_->lines()) {
    if (line.rfind("warn poller:", 0) == 0 && line.find("cluster=prod-eu") != std::string::npos)
      warned = true;
  }
  EXPECT_TRUE(warned);
}

TEST_F(PollerTest, DatabaseFailureIsReportedNotThrown) {
  script_ok(tokens(2));
  run();
  {
    auto db = storage::Db::open(dir_.file("audit.db"), storage::Db::Mode::kReadWrite);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->exec("DROP VIEW polls; DROP TABLE poll_runs;").ok());
  }
  script_ok(tokens(3));
  auto rep = run();
  EXPECT_FALSE(rep.recorded);
  EXPECT_FALSE(rep.error.empty());
  EXPECT_EQ(rep.summary.outcome, storage::PollOutcome::kOk) << "the fetch itself succeeded";
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log"), 2) << "nothing partial was written";
}

TEST_F(PollerTest, EachRunCallsTheSourceOnce) {
  for (int i = 0; i < 5; ++i) script_ok(tokens(1));
  for (int i = 0; i < 5; ++i) run();
  EXPECT_EQ(fake_->list_calls, 5);
  EXPECT_EQ(count("SELECT COUNT(*) FROM polls"), 5);
  EXPECT_EQ(poller_->cluster().name, "prod-eu");
  EXPECT_EQ(poller_->client().describe(), "fake cluster");
}

TEST_F(PollerTest, SteadyStateOffersTheKnownDigestAndRecordsOnlyAPollRow) {
  script_digest(tokens(3), "d1");
  auto first = run();
  ASSERT_TRUE(first.recorded);
  EXPECT_EQ(fake_->last_known_digest, "");
  script_digest(tokens(3), "d1");
  auto second = run();
  ASSERT_TRUE(second.recorded) << second.error;
  EXPECT_EQ(fake_->last_known_digest, "d1");
  EXPECT_EQ(second.summary.outcome, storage::PollOutcome::kOk);
  EXPECT_EQ(second.summary.token_count, 3u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log"), 3);
  EXPECT_EQ(count("SELECT COUNT(*) FROM polls"), 2);
  EXPECT_EQ(fake_->list_calls, 2);
}

TEST_F(PollerTest, AnExpiryIsRecordedWithoutTheFullList) {
  auto list = tokens(2);
  list[0].expires_at = clock_.now() + std::chrono::minutes(2);
  script_digest(list, "d1");
  ASSERT_TRUE(run().recorded);  // the clock moves 1.5 s per fetch and 1 min per run
  // The digest is offered however soon a token expires; the expiry passing between two polls
  // of the same bytes is recorded from the inventory in memory.
  for (int i = 0; i < 2; ++i) {
    script_digest(list, "d1");
    auto rep = run();
    ASSERT_TRUE(rep.recorded) << rep.error;
    EXPECT_EQ(fake_->last_known_digest, "d1");
  }
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log WHERE event = 'token_expired'"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM token_inventory WHERE status = 'expired'"), 1);
  EXPECT_EQ(fake_->list_calls, 3) << "no second fetch for the full list";
}

// --- the management token tokenwarden uses (daemon/credential_watch.h) ----------------------

influx::OwnCredential credential(const char* expires_at) {
  influx::OwnCredential c;
  c.id = "mgmt-1";
  c.description = "tokenwarden";
  if (expires_at != nullptr) c.expires_at = ts(expires_at);
  return c;
}

TEST_F(PollerTest, ManagementTokenExpiryIsAMetricAndReadHourly) {
  metrics::Metrics m("test");
  poller_->set_metrics(&m);
  fake_->credential = std::optional(credential("2026-01-20T00:00:00Z"));
  for (int i = 0; i < 3; ++i) script_ok(tokens(1));
  EXPECT_TRUE(run().error.empty());
  EXPECT_NE(
      m.render().find("tokenwarden_management_token_expiry_timestamp_seconds{cluster=\"prod-eu\"} "
                      "1768867200"),
      std::string::npos)
      << m.render();
  EXPECT_TRUE(run().error.empty());
  EXPECT_EQ(fake_->credential_calls, 1) << "read once an hour, not at every poll";
  clock_.advance(std::chrono::hours(1));
  fake_->credential = std::optional(credential(nullptr));  // replaced by one that never expires
  EXPECT_TRUE(run().error.empty());
  EXPECT_EQ(fake_->credential_calls, 2);
  EXPECT_EQ(m.render().find("tokenwarden_management_token_expiry_timestamp_seconds{"),
            std::string::npos)
      << "a token that never expires has no expiry series";
}

TEST_F(PollerTest, LapsedManagementTokenFailsThePollWithTheReasonUntilReplaced) {
  fake_->credential = std::optional(credential("2026-01-01T00:30:00Z"));
  script_ok(tokens(1));
  script_ok(tokens(1));
  EXPECT_TRUE(run().error.empty());
  clock_.advance(std::chrono::minutes(40));
  // influxctl now fails even to list management tokens: the expiry already known tells why.
  fake_->credential = make_error(ErrorCode::kIo, "influxctl exited with status 1: unauthenticated");
  auto rep = run();
  EXPECT_EQ(rep.summary.outcome, storage::PollOutcome::kFailed);
  EXPECT_NE(rep.error.find("expired at 2026-01-01T00:30:00"), std::string::npos) << rep.error;
  EXPECT_NE(rep.error.find("influxctl management create"), std::string::npos) << rep.error;
  EXPECT_NE(rep.error.find("mgmt-1"), std::string::npos) << rep.error;
  EXPECT_EQ(fake_->list_calls, 1) << "the list is not asked for with a lapsed credential";
  EXPECT_EQ(count("SELECT COUNT(*) FROM polls WHERE outcome = 'failed'"), 1);
  // Re-read at every poll while lapsed: a replacement is noticed at once.
  fake_->credential = std::optional(credential("2027-01-01T00:00:00Z"));
  auto next = run();
  EXPECT_TRUE(next.error.empty()) << next.error;
  EXPECT_EQ(fake_->list_calls, 2);
}

TEST_F(PollerTest, RevokedManagementTokenFailsThePoll) {
  auto c = credential(nullptr);
  c.revoked_at = ts("2025-12-31T00:00:00Z");
  fake_->credential = std::optional(c);
  script_ok(tokens(1));
  auto rep = run();
  EXPECT_NE(rep.error.find("was revoked at 2025-12-31"), std::string::npos) << rep.error;
  EXPECT_EQ(fake_->list_calls, 0);
}

TEST_F(PollerTest, UnreadableManagementListNeverFailsAPoll) {
  fake_->credential = make_error(ErrorCode::kParse, "influxctl management list printed junk");
  script_ok(tokens(1));
  script_ok(tokens(1));
  EXPECT_TRUE(run().error.empty());
  clock_.advance(std::chrono::hours(1));
  EXPECT_TRUE(run().error.empty());
  std::size_t logged = 0;
  for (const auto& line : sink_->lines()) {
    if (line.find("cannot tell when the management token expires") != std::string::npos) ++logged;
  }
  EXPECT_EQ(logged, 1u) << "the same failure is logged once";
}

}  // namespace
}  // namespace tw::daemon

namespace tw::daemon {
namespace {

// ---- Retry-After (issue 10) ---------------------------------------------------------------------

Error told_to_wait(Duration wait) {
  Error e = make_error(ErrorCode::kHttpStatus,
                       "GET https://h/api/v0/tokens answered 429 Too Many Requests; the server "
                       "asks to retry after 30s",
                       429);
  e.retry_after = wait;
  return e;
}

TEST_F(PollerTest, AFailedPollReportsTheWaitTheClusterAskedFor) {
  fake_->script.emplace_back(told_to_wait(std::chrono::seconds(30)));
  auto rep = run();
  EXPECT_EQ(rep.summary.outcome, storage::PollOutcome::kFailed);
  EXPECT_EQ(rep.retry_after, std::optional<Duration>(std::chrono::seconds(30)));
  EXPECT_NE(rep.error.find("retry after 30s"), std::string::npos) << rep.error;
  EXPECT_EQ(rep.error.find('\n'), std::string::npos) << rep.error;

  script_error(ErrorCode::kNetwork, "GET https://h/api/v0/tokens: connection refused");
  EXPECT_EQ(run().retry_after, std::nullopt) << "only the cycle that was told to wait waits";
}

TEST_F(PollerTest, DirectReadsStopOnceTheClusterAsksToWait) {
  script_ok(tokens(10));
  script_ok(tokens(7));  // three vanished: each would be read directly
  run();
  fake_->read_error = told_to_wait(std::chrono::minutes(1));
  auto rep = run();
  EXPECT_EQ(fake_->get_calls, 1) << "the other reads are not sent";
  EXPECT_EQ(rep.summary.outcome, storage::PollOutcome::kSuspect);
  EXPECT_EQ(rep.retry_after, std::optional<Duration>(std::chrono::minutes(1)));
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log WHERE event = 'token_removed'"), 0);
}

}  // namespace
}  // namespace tw::daemon

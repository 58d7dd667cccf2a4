// Tests for daemon/schedule.h: the next poll on the interval grid (overruns, Retry-After) and
// the reload plan (settings that need a restart; clusters kept, rebuilt, added, removed).
#include "daemon/schedule.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/unit/core/test_support.h"

namespace tw::daemon {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;
using tw::testing::ts;

struct NextPollCase {
  std::string name;
  std::string planned, now;
  std::optional<Duration> retry_after;
  std::string want;
  std::int64_t skipped;
  bool waited;
};

class NextPollTable : public ::testing::TestWithParam<NextPollCase> {};

TEST_P(NextPollTable, FollowsTheGrid) {
  const auto& c = GetParam();
  const NextPoll n = next_poll(ts(c.planned), minutes(1), ts(c.now), c.retry_after);
  EXPECT_EQ(format_timestamp(n.planned), format_timestamp(ts(c.want)));
  EXPECT_EQ(n.skipped, c.skipped);
  EXPECT_EQ(n.waited, c.waited);
}

INSTANTIATE_TEST_SUITE_P(
    Table, NextPollTable,
    ::testing::Values(
        // A cycle that finished within its interval: the next slot, from the planned time (not
        // the finish time).
        NextPollCase{"on_time",
                     "2026-12-01T10:00:00Z",
                     "2026-12-01T10:00:20Z",
                     {},
                     "2026-12-01T10:01:00Z",
                     0,
                     false},
        NextPollCase{"finished_before_planned",
                     "2026-12-01T10:00:00Z",
                     "2026-12-01T09:59:59Z",
                     {},
                     "2026-12-01T10:01:00Z",
                     0,
                     false},
        // Exactly one interval late: the next slot is due now, nothing is skipped.
        NextPollCase{"one_interval_late",
                     "2026-12-01T10:00:00Z",
                     "2026-12-01T10:01:00Z",
                     {},
                     "2026-12-01T10:01:00Z",
                     0,
                     false},
        // Overran into the third interval: the two missed slots are skipped, the grid holds.
        NextPollCase{"overran_two_slots",
                     "2026-12-01T10:00:00Z",
                     "2026-12-01T10:02:30Z",
                     {},
                     "2026-12-01T10:03:00Z",
                     2,
                     false},
        NextPollCase{"overran_to_a_slot_boundary",
                     "2026-12-01T10:00:00Z",
                     "2026-12-01T10:03:00Z",
                     {},
                     "2026-12-01T10:03:00Z",
                     2,
                     false},
        NextPollCase{"overran_by_a_millisecond",
                     "2026-12-01T10:00:00Z",
                     "2026-12-01T10:01:00.001Z",
                     {},
                     "2026-12-01T10:02:00Z",
                     1,
                     false},
        // Retry-After longer than the rest of the slot: wait for it; the grid restarts there.
        NextPollCase{"retry_after_pushes_out", "2026-12-01T10:00:00Z", "2026-12-01T10:00:20Z",
                     seconds(120), "2026-12-01T10:02:20Z", 0, true},
        // Retry-After that ends before the next slot changes nothing.
        NextPollCase{"retry_after_shorter", "2026-12-01T10:00:00Z", "2026-12-01T10:00:20Z",
                     seconds(10), "2026-12-01T10:01:00Z", 0, false},
        NextPollCase{"retry_after_ends_on_the_slot", "2026-12-01T10:00:00Z", "2026-12-01T10:00:20Z",
                     seconds(40), "2026-12-01T10:01:00Z", 0, false},
        NextPollCase{"overran_and_retry_after", "2026-12-01T10:00:00Z", "2026-12-01T10:02:30Z",
                     seconds(60), "2026-12-01T10:03:30Z", 2, true}),
    tw::testing::CaseName());

TEST(NextPoll, RepeatedSlotsStayOnTheGrid) {
  // Cycles that each take 50 s of a 1-minute interval never drift.
  Timestamp planned = ts("2026-12-01T10:00:00Z");
  for (int i = 0; i < 100; ++i) {
    planned = next_poll(planned, minutes(1), planned + seconds(50)).planned;
  }
  EXPECT_EQ(format_timestamp(planned), format_timestamp(ts("2026-12-01T11:40:00Z")));
}

ClusterConfig cluster(std::string name, std::string url = "http://127.0.0.1:1") {
  ClusterConfig c;
  c.name = std::move(name);
  c.source.cluster = c.name;
  c.source.url = std::move(url);
  c.source.token_file = "/etc/tokenwarden/credentials/" + c.name;
  c.poll_interval = minutes(1);
  return c;
}

TEST(SameCluster, ComparesSourceIntervalAndLabels) {
  const ClusterConfig a = cluster("a");
  EXPECT_TRUE(same_cluster(a, a));
  ClusterConfig b = a;
  b.source.url = "http://127.0.0.1:2";
  EXPECT_FALSE(same_cluster(a, b));
  b = a;
  b.source.token_file = "/elsewhere";
  EXPECT_FALSE(same_cluster(a, b));
  b = a;
  b.source.timeout = seconds(30);
  EXPECT_FALSE(same_cluster(a, b));
  b = a;
  b.poll_interval = minutes(5);
  EXPECT_FALSE(same_cluster(a, b));
  b = a;
  b.labels["env"] = "prod";
  EXPECT_FALSE(same_cluster(a, b));
  b = a;
  b.name = "b";
  EXPECT_FALSE(same_cluster(a, b));
}

TEST(PlanClusters, KeepsRebuildsAddsAndRemoves) {
  const ClusterConfig a = cluster("a"), b = cluster("b"), c = cluster("c");
  const std::vector<const ClusterConfig*> running{&a, &b, &c};
  ClusterConfig b2 = cluster("b", "http://127.0.0.1:9");
  const std::vector<ClusterConfig> next{cluster("d"), b2, a, cluster("e")};
  const ClusterPlan plan = plan_clusters(running, next);
  EXPECT_EQ(plan.unchanged, (std::vector<std::string>{"a"}));
  EXPECT_EQ(plan.changed, (std::vector<std::string>{"b"}));
  EXPECT_EQ(plan.added, (std::vector<std::string>{"d", "e"}));
  EXPECT_EQ(plan.removed, (std::vector<std::string>{"c"}));
}

TEST(PlanClusters, IdenticalConfigurationChangesNothing) {
  const ClusterConfig a = cluster("a"), b = cluster("b");
  const ClusterPlan plan = plan_clusters({&a, &b}, {a, b});
  EXPECT_EQ(plan.unchanged, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(plan.changed.empty());
  EXPECT_TRUE(plan.added.empty());
  EXPECT_TRUE(plan.removed.empty());
}

TEST(PlanClusters, FromNothingAndToNothing) {
  const ClusterConfig a = cluster("a");
  EXPECT_EQ(plan_clusters({}, {a}).added, (std::vector<std::string>{"a"}));
  EXPECT_EQ(plan_clusters({&a}, {}).removed, (std::vector<std::string>{"a"}));
}

TEST(RestartOnlyChange, AuditExportSettingsNeedARestart) {
  Config running;
  running.clusters = {cluster("a")};
  ExportSinkConfig sink;
  sink.name = "remote";
  sink.type = ExportType::kSyslog;
  sink.address = "logs.example.com:6514";
  running.audit.exports = {sink};
  Config next = running;
  next.audit.checkpoint_events = 5;  // not an export setting
  EXPECT_FALSE(restart_only_change(running, next).has_value());
  next = running;
  next.audit.exports[0].address = "other.example.com:6514";
  EXPECT_NE(restart_only_change(running, next).value_or("").find("[audit] export"),
            std::string::npos);
  next = running;
  next.audit.exports.push_back(sink);
  EXPECT_TRUE(restart_only_change(running, next).has_value());
  next = running;
  next.audit.require_export = true;
  EXPECT_TRUE(restart_only_change(running, next).has_value());
  next = running;
  next.audit.export_max_lag = std::chrono::minutes(1);
  EXPECT_TRUE(restart_only_change(running, next).has_value());
}

TEST(RestartOnlyChange, NamesTheSettingThatNeedsARestart) {
  Config running;
  running.clusters = {cluster("a")};
  EXPECT_FALSE(restart_only_change(running, running).has_value());

  Config next = running;
  next.clusters.push_back(cluster("b"));  // clusters, policies, alerting: a reload applies them
  next.daemon.poll_jitter = seconds(9);
  EXPECT_FALSE(restart_only_change(running, next).has_value());

  next = running;
  next.daemon.database = "/elsewhere/audit.db";
  EXPECT_NE(restart_only_change(running, next).value_or("").find("daemon.database"),
            std::string::npos);
  next = running;
  next.daemon.max_concurrent_polls = running.daemon.max_concurrent_polls + 1;
  EXPECT_NE(restart_only_change(running, next).value_or("").find("max_concurrent_polls"),
            std::string::npos);
  next = running;
  next.http.listen = "127.0.0.1:0";
  EXPECT_NE(restart_only_change(running, next).value_or("").find("[http]"), std::string::npos);
  next = running;
  next.http.web.users["admin"] = "$2b$12$hash";
  EXPECT_NE(restart_only_change(running, next).value_or("").find("web_config"), std::string::npos);
  next = running;
  next.http.web.tls_cert_file = "/etc/tokenwarden/cert.pem";
  EXPECT_TRUE(restart_only_change(running, next).has_value());
  next = running;
  next.http.reuse_metrics_text = !running.http.reuse_metrics_text;
  EXPECT_TRUE(restart_only_change(running, next).has_value());
}

}  // namespace
}  // namespace tw::daemon

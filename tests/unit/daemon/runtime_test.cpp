// Tests for daemon/runtime.h: build_runtime composes the store (a temp-dir file), metrics fed by
// every commit, the compiled policies, an alert dispatcher only where alerts can go, and one
// poller per cluster (or the one asked for); each way it fails is one sentence; and
// active_exemptions() counts what has not expired.

#include "daemon/runtime.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "tests/unit/core/test_support.h"

namespace tw::daemon {
namespace {

using tw::testing::ts;

ClusterConfig cluster(const std::string& name, const std::string& url) {
  ClusterConfig c;
  c.name = name;
  c.source.cluster = name;
  c.source.type = influx::SourceType::kClustered;
  c.source.url = url;
  c.source.token_file = "/nonexistent/" + name + ".token";  // read at a call, not at build
  c.poll_interval = std::chrono::minutes(1);
  return c;
}

RuntimeOptions options(std::string only_cluster, bool alerting = true,
                       bool always_dispatch = false) {
  RuntimeOptions o;
  o.only_cluster = std::move(only_cluster);
  o.alerting = alerting;
  o.always_dispatch = always_dispatch;
  return o;
}

policy::ExemptionSpec exemption(const std::string& policy, Timestamp expires) {
  policy::ExemptionSpec e;
  e.policy = policy;
  e.token_id = "tok-1";
  e.reason = "test";
  e.expires = expires;
  return e;
}

class RuntimeTest : public ::testing::Test {
 protected:
  RuntimeTest() {
    config_.daemon.database = dir_.file("audit.db");
    config_.clusters = {cluster("prod-eu", "https://eu.example.com/api/v0"),
                        cluster("prod-us", "https://us.example.com/api/v0")};
  }
  Result<Runtime> build(const RuntimeOptions& o = {}) {
    return build_runtime(config_, clock_, sink_, o);
  }

  tw::testing::TempDir dir_;
  Config config_;
  ManualClock clock_{ts("2026-01-01T00:00:00Z")};
  std::shared_ptr<MemoryLogSink> sink_ = std::make_shared<MemoryLogSink>();
};

TEST_F(RuntimeTest, OnePollerPerClusterOrOnlyTheOneAskedFor) {
  {
    auto rt = build();
    ASSERT_TRUE(rt.ok()) << rt.error().message;
    ASSERT_NE(rt->store, nullptr);
    ASSERT_NE(rt->recorder, nullptr);
    ASSERT_NE(rt->metrics, nullptr);
    ASSERT_NE(rt->policies, nullptr);
    ASSERT_EQ(rt->pollers.size(), 2u);
    EXPECT_EQ(rt->pollers[0]->cluster().name, "prod-eu");
    EXPECT_EQ(rt->pollers[1]->cluster().name, "prod-us");
  }
  auto one = build(options("prod-us"));
  ASSERT_TRUE(one.ok()) << one.error().message;
  ASSERT_EQ(one->pollers.size(), 1u);
  EXPECT_EQ(one->pollers[0]->cluster().name, "prod-us");
}

TEST_F(RuntimeTest, AlertsAreDispatchedOnlyWhereTheyCanGo) {
  EXPECT_EQ(build()->alerts, nullptr) << "no receiver configured";
  EXPECT_NE(build(options("", true, true))->alerts, nullptr) << "a reload may add receivers";
  config_.alerting.webhook_url = "https://hooks.example.com/p";
  EXPECT_NE(build()->alerts, nullptr);
  EXPECT_EQ(build(options("", false))->alerts, nullptr) << "a dry run sends nothing";
  config_.alerting.webhook_url.clear();
  config_.alerting.alertmanager_url = "http://127.0.0.1:9093";
  EXPECT_NE(build()->alerts, nullptr);
}

TEST_F(RuntimeTest, EveryCommitIsCountedInTheMetrics) {
  auto rt = build();
  ASSERT_TRUE(rt.ok()) << rt.error().message;
  auto txn = rt->store->begin();
  ASSERT_TRUE(txn.ok()) << txn.error().message;
  ASSERT_TRUE(txn->append({EventKind::kDaemonStarted, {}, {}, "{}"}, clock_.now()).ok());
  ASSERT_TRUE(txn->commit().ok());
  const std::string text = rt->metrics->render();
  EXPECT_NE(text.find("tokenwarden_audit_events_total{event=\"daemon_started\"} 1"),
            std::string::npos)
      << text;
}

TEST_F(RuntimeTest, ASourceThatCannotBeBuiltNamesItsCluster) {
  config_.clusters[1].source.url = "not a url";
  auto rt = build();
  ASSERT_FALSE(rt.ok());
  EXPECT_EQ(rt.error().message.rfind("cluster prod-us: ", 0), 0u) << rt.error().message;
  // The same cluster left out: the rest builds.
  auto other = build(options("prod-eu"));
  EXPECT_TRUE(other.ok()) << other.error().message;
}

TEST_F(RuntimeTest, ADatabaseThatCannotBeOpenedIsAnError) {
  config_.daemon.database = dir_.file("missing-dir/audit.db");
  auto rt = build();
  ASSERT_FALSE(rt.ok());
  EXPECT_EQ(rt.error().code, ErrorCode::kDatabase);
  EXPECT_NE(rt.error().message.find("missing-dir/audit.db"), std::string::npos)
      << rt.error().message;
}

TEST_F(RuntimeTest, PoliciesThatDoNotCompileAreAnError) {
  auto bad = exemption("*", ts("2026-02-01T00:00:00Z"));
  bad.token_id.clear();
  bad.description = "(unclosed";
  config_.exemptions = {bad};
  auto rt = build();
  EXPECT_FALSE(rt.ok());
}

TEST(ActiveExemptions, CountsThoseNotYetExpiredPerPolicy) {
  Config c;
  c.policies.resize(2);
  c.policies[0].name = "max-age";
  c.policies[1].name = "naming";
  const Timestamp now = ts("2026-01-01T00:00:00Z");
  c.exemptions = {exemption("max-age", now + std::chrono::hours(1)),
                  exemption("max-age", now + std::chrono::hours(2)),
                  exemption("max-age", now),  // expires now: no longer active
                  exemption("*", now + std::chrono::hours(1)),
                  exemption("naming", now - std::chrono::hours(1))};
  const std::map<std::string, std::int64_t> want = {{"max-age", 2}, {"naming", 0}, {"*", 1}};
  EXPECT_EQ(active_exemptions(c, now), want);
  EXPECT_EQ(active_exemptions(Config{}, now), (std::map<std::string, std::int64_t>{}));
}

}  // namespace
}  // namespace tw::daemon

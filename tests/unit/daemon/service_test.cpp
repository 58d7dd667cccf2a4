// Tests for daemon/service.h, embedded as the demo runs it (no signal handlers, no sd_notify,
// a manual clock): the first poll of each cluster starts at once, a stop after it records
// daemon_stopped and run() returns 0; a stop asked for before run() still records the start and
// the stop; an endpoint that cannot be bound fails the start without an audit event; create()
// fails with one sentence. The cluster is a REST URL on loopback where nothing listens, so its
// polls fail fast without a network.

#include "daemon/service.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "storage/sqlite.h"
#include "tests/unit/core/test_support.h"

namespace tw::daemon {
namespace {

using tw::testing::ts;

class ServiceTest : public ::testing::Test {
 protected:
  ServiceTest() {
    config_.path = dir_.file("tokenwarden.toml");
    config_.hash = "h1";
    config_.daemon.database = dir_.file("audit.db");
    config_.daemon.poll_jitter = Duration(0);
    config_.http.listen = "";
    ClusterConfig c;
    c.name = "prod";
    c.source.cluster = "prod";
    c.source.url = "http://127.0.0.1:1/api/v0";  // nothing listens: refused at once
    c.source.token_file = dir_.write("prod.token", "apiv1_test\n");
    c.source.timeout = std::chrono::seconds(5);
    c.poll_interval = std::chrono::hours(1);
    config_.clusters = {c};
  }
  Result<std::unique_ptr<Service>> create() {
    ServiceDeps deps;
    deps.clock = &clock_;
    deps.sink = sink_;
    deps.handle_signals = false;
    deps.notify_systemd = false;
    return Service::create(config_, std::move(deps));
  }
  // The audit log's events, in order.
  std::vector<std::string> events() const {
    auto db = storage::Db::open(dir_.file("audit.db"), storage::Db::Mode::kReadOnly);
    if (!db.ok()) return {};
    auto st = (*db)->prepare("SELECT event FROM audit_log ORDER BY seq");
    std::vector<std::string> out;
    while (st.ok()) {
      auto more = st->step();
      if (!more.ok() || !*more) break;
      out.push_back(st->text(0));
    }
    return out;
  }

  tw::testing::TempDir dir_;
  Config config_;
  ManualClock clock_{ts("2026-01-01T00:00:00Z")};
  std::shared_ptr<MemoryLogSink> sink_ = std::make_shared<MemoryLogSink>();
};

TEST_F(ServiceTest, FirstPollAtOnceThenACleanStop) {
  auto service = create();
  ASSERT_TRUE(service.ok()) << service.error().message;
  std::vector<CycleReport> cycles;
  (*service)->on_cycle([&](const CycleReport& rep) {
    cycles.push_back(rep);
    (*service)->request_stop();
  });
  EXPECT_EQ((*service)->run(), 0);
  ASSERT_EQ(cycles.size(), 1u) << "no second poll within the hour of a manual clock";
  EXPECT_EQ(cycles[0].cluster, "prod");
  EXPECT_FALSE(cycles[0].error.empty()) << "nothing listens on the cluster's port";
  EXPECT_EQ(events(), (std::vector<std::string>{"daemon_started", "config_applied", "poll_failed",
                                                "daemon_stopped"}));
  EXPECT_EQ((*service)->endpoint_url(), "") << "[http] listen is empty: no endpoint";
}

TEST_F(ServiceTest, AStopAskedForBeforeRunStopsWithoutPolling) {
  auto service = create();
  ASSERT_TRUE(service.ok()) << service.error().message;
  int cycles = 0;
  (*service)->on_cycle([&](const CycleReport&) { ++cycles; });
  (*service)->request_stop();
  EXPECT_EQ((*service)->run(), 0);
  EXPECT_EQ(cycles, 0);
  EXPECT_EQ(events(),
            (std::vector<std::string>{"daemon_started", "config_applied", "daemon_stopped"}));
}

TEST_F(ServiceTest, TheEndpointIsBoundOnPortZeroWhileRunning) {
  config_.http.listen = "127.0.0.1:0";
  auto service = create();
  ASSERT_TRUE(service.ok()) << service.error().message;
  std::string url;
  (*service)->on_cycle([&](const CycleReport&) {
    url = (*service)->endpoint_url();
    (*service)->request_stop();
  });
  EXPECT_EQ((*service)->run(), 0);
  EXPECT_EQ(url.rfind("http://127.0.0.1:", 0), 0u) << url;
  EXPECT_NE(url, "http://127.0.0.1:0") << "the port the system chose";
}

TEST_F(ServiceTest, AnEndpointThatCannotBeBoundFailsTheStartWithoutAuditEvents) {
  config_.http.listen = "192.0.2.1:0";  // TEST-NET-1: not an address of this machine
  auto service = create();
  ASSERT_TRUE(service.ok()) << service.error().message;
  // Should it bind after all (net.ipv4.ip_nonlocal_bind), the test fails instead of hanging.
  (*service)->on_cycle([&](const CycleReport&) { (*service)->request_stop(); });
  EXPECT_EQ((*service)->run(), 1);
  EXPECT_EQ(events(), std::vector<std::string>{}) << "a failed start leaves the audit log alone";
}

TEST_F(ServiceTest, CreateFailsWithOneSentence) {
  config_.clusters[0].source.url = "not a url";
  auto bad_source = create();
  ASSERT_FALSE(bad_source.ok());
  EXPECT_EQ(bad_source.error().message.rfind("cluster prod: ", 0), 0u)
      << bad_source.error().message;
  config_.clusters[0].source.url = "http://127.0.0.1:1/api/v0";
  config_.daemon.database = dir_.file("no-such-dir/audit.db");
  auto bad_db = create();
  ASSERT_FALSE(bad_db.ok());
  EXPECT_EQ(bad_db.error().code, ErrorCode::kDatabase);
}

}  // namespace
}  // namespace tw::daemon

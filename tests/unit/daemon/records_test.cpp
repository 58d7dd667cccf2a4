// Tests for daemon/records.h: the daemon's own audit events in a real temp-dir store —
// daemon_started with config_applied only when the configuration's hash changed, the JSON
// details of config_applied and config_rejected, and a store that cannot be written.

#include "daemon/records.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/version.h"
#include "storage/sqlite.h"
#include "tests/unit/core/test_support.h"

namespace tw::daemon {
namespace {

using nlohmann::json;
using tw::testing::ts;

struct Row {
  std::string event;
  std::string cluster;
  std::string token_id;
  std::string detail;
  std::string recorded_at;
};

Config config(const std::string& hash) {
  Config c;
  c.path = "/etc/tokenwarden/tokenwarden.toml";
  c.hash = hash;
  c.clusters.resize(2);
  c.clusters[0].name = "prod-eu";
  c.clusters[1].name = "prod-us";
  c.policies.resize(1);
  c.policies[0].name = "max-age";
  c.exemptions.resize(3);
  return c;
}

class RecordsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = storage::AuditStore::open(path_, storage::AuditStore::Mode::kReadWrite);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(*s);
  }
  std::vector<Row> rows() const {
    auto db = storage::Db::open(path_, storage::Db::Mode::kReadOnly);
    EXPECT_TRUE(db.ok());
    if (!db.ok()) return {};
    auto st = (*db)->prepare(
        "SELECT event, cluster, token_id, detail, recorded_at FROM audit_log ORDER BY seq");
    EXPECT_TRUE(st.ok());
    std::vector<Row> out;
    while (st.ok()) {
      auto more = st->step();
      if (!more.ok() || !*more) break;
      out.push_back({st->text(0), st->text(1), st->text(2), st->text(3), st->text(4)});
    }
    return out;
  }

  tw::testing::TempDir dir_;
  std::string path_ = dir_.file("audit.db");
  std::unique_ptr<storage::AuditStore> store_;
  const Timestamp now_ = ts("2026-01-01T00:00:00Z");
};

TEST_F(RecordsTest, AppendDaemonEventIsOneCommittedRowWithoutClusterOrToken) {
  ASSERT_TRUE(
      append_daemon_event(*store_, EventKind::kDaemonStopped, R"({"signal":"SIGTERM"})", now_)
          .ok());
  auto got = rows();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].event, "daemon_stopped");
  EXPECT_EQ(got[0].cluster, "");
  EXPECT_EQ(got[0].token_id, "");
  EXPECT_EQ(json::parse(got[0].detail), json::parse(R"({"signal":"SIGTERM"})"));
  EXPECT_EQ(got[0].recorded_at.rfind("2026-01-01T00:00:00", 0), 0u) << got[0].recorded_at;
}

TEST_F(RecordsTest, StartupRecordsConfigAppliedOnlyWhenTheHashChanged) {
  ASSERT_TRUE(record_startup(*store_, config("h1"), now_).ok());
  auto first = rows();
  ASSERT_EQ(first.size(), 2u) << "first start: started and applied";
  EXPECT_EQ(first[0].event, "daemon_started");
  EXPECT_EQ(first[1].event, "config_applied");
  EXPECT_EQ(json::parse(first[1].detail)["config_hash"], "h1");

  ASSERT_TRUE(record_startup(*store_, config("h1"), now_ + std::chrono::hours(1)).ok());
  auto second = rows();
  ASSERT_EQ(second.size(), 3u) << "a restart with the same file applies nothing new";
  EXPECT_EQ(second[2].event, "daemon_started");

  ASSERT_TRUE(record_startup(*store_, config("h2"), now_ + std::chrono::hours(2)).ok());
  auto third = rows();
  ASSERT_EQ(third.size(), 5u) << "the file changed while the daemon was down";
  EXPECT_EQ(third[3].event, "daemon_started");
  EXPECT_EQ(third[4].event, "config_applied");
  EXPECT_EQ(json::parse(third[4].detail)["config_hash"], "h2");
}

TEST_F(RecordsTest, DaemonStartedNamesVersionPidAndConfigHash) {
  ASSERT_TRUE(record_startup(*store_, config("abc"), now_).ok());
  auto got = rows();
  ASSERT_FALSE(got.empty());
  const json d = json::parse(got[0].detail);
  EXPECT_EQ(d["version"], kVersion);
  EXPECT_EQ(d["pid"], static_cast<std::int64_t>(::getpid()));
  EXPECT_EQ(d["config_hash"], "abc");
  EXPECT_EQ(d.size(), 3u) << d.dump();
}

TEST(ConfigAppliedDetail, NamesClustersPoliciesAndCountsExemptions) {
  const json d = json::parse(config_applied_detail(config("h1")));
  EXPECT_EQ(d, json::parse(R"({"config_hash":"h1","path":"/etc/tokenwarden/tokenwarden.toml",
                              "clusters":["prod-eu","prod-us"],"policies":["max-age"],
                              "exemptions":3})"));
  const json empty = json::parse(config_applied_detail(Config{}));
  EXPECT_EQ(empty["clusters"], json::array());
  EXPECT_EQ(empty["policies"], json::array());
  EXPECT_EQ(empty["exemptions"], 0);
}

TEST(ConfigRejectedDetail, AnUnreadableFileHasANullHash) {
  const json unreadable =
      json::parse(config_rejected_detail("/etc/tw.toml", "", "run1", "cannot read the file"));
  EXPECT_TRUE(unreadable["config_hash"].is_null());
  EXPECT_EQ(unreadable["running_config_hash"], "run1");
  EXPECT_EQ(unreadable["path"], "/etc/tw.toml");
  const json rejected = json::parse(
      config_rejected_detail("/etc/tw.toml", "new1", "run1", "clusters[0].url: \"x\"\nbad"));
  EXPECT_EQ(rejected["config_hash"], "new1");
  EXPECT_EQ(rejected["reason"], "clusters[0].url: \"x\"\nbad") << "quotes and newlines escaped";
  EXPECT_EQ(rejected.size(), 4u) << rejected.dump();
}

TEST_F(RecordsTest, AReadOnlyStoreIsAnErrorNotACrash) {
  ASSERT_TRUE(record_startup(*store_, config("h1"), now_).ok());  // creates the schema
  auto ro = storage::AuditStore::open(path_, storage::AuditStore::Mode::kReadOnly);
  ASSERT_TRUE(ro.ok()) << ro.error().message;
  auto appended = append_daemon_event(**ro, EventKind::kDaemonStopped, "{}", now_);
  EXPECT_FALSE(appended.ok());
  EXPECT_EQ(appended.error().code, ErrorCode::kDatabase);
  auto started = record_startup(**ro, config("h2"), now_);
  EXPECT_FALSE(started.ok());
  EXPECT_EQ(rows().size(), 2u) << "nothing was written";
}

}  // namespace
}  // namespace tw::daemon

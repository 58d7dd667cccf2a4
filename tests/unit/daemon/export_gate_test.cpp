// Tests for daemon/export_gate.h: the require_export gate of a one-shot poll, read from the
// sinks' stored cursors — no cursor, a cursor behind by more than export_max_lag, a caught-up
// cursor, a sink that lags a little, and every configured sink counting.

#include "daemon/export_gate.h"

#include <gtest/gtest.h>

#include "storage/audit_store.h"
#include "storage/export_log.h"
#include "tests/unit/core/test_support.h"

namespace tw::daemon {
namespace {

using tw::testing::ts;

class ExportGateTest : public ::testing::Test {
 protected:
  ExportGateTest() {
    auto s =
        storage::AuditStore::open(dir_.file("audit.db"), storage::AuditStore::Mode::kReadWrite);
    EXPECT_TRUE(s.ok());
    store_ = std::move(*s);
    audit_.require_export = true;
    audit_.export_max_lag = std::chrono::minutes(5);
    for (const char* name : {"siem", "copy"}) {
      ExportSinkConfig e;
      e.name = name;
      e.type = ExportType::kFile;
      e.path = "/var/log/tokenwarden/" + std::string(name) + ".jsonl";
      audit_.exports.push_back(e);
    }
    // seq 1 at 10:00, seq 2 at 10:10, seq 3 at 10:20
    for (int i = 0; i < 3; ++i) {
      auto txn = store_->begin();
      EXPECT_TRUE(txn.ok());
      EXPECT_TRUE(txn->append(NewEvent{EventKind::kDaemonStarted, "", "", "{}"},
                              ts("2026-12-07T10:00:00Z") + std::chrono::minutes(10 * i))
                      .ok());
      EXPECT_TRUE(txn->commit().ok());
    }
  }

  // `settled` behind `sent`: a syslog sink keeping what its collector may not have read.
  void cursor(const std::string& name, std::int64_t sent, std::int64_t settled = -1) {
    const Timestamp at = ts("2026-12-07T10:30:00Z");
    storage::ExportCursor c{name, "file:x", settled < 0 ? sent : settled, at, sent, at};
    ASSERT_TRUE(storage::write_export_cursor(store_->db(), c).ok());
  }
  std::optional<std::string> reason(const char* now) {
    return stored_export_blocking_reason(store_->db(), audit_, ts(now));
  }

  tw::testing::TempDir dir_;
  std::unique_ptr<storage::AuditStore> store_;
  AuditSection audit_;
};

TEST_F(ExportGateTest, ASinkWithoutACursorHoldsActionsBack) {
  cursor("siem", 3);
  auto r = reason("2026-12-07T10:21:00Z");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, "export sink copy has not delivered anything yet");
}

TEST_F(ExportGateTest, ACursorBehindByMoreThanTheLagHoldsActionsBack) {
  cursor("siem", 3);
  cursor("copy", 1);  // seq 2 (10:10) not delivered
  auto r = reason("2026-12-07T10:21:00Z");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, "export sink copy has not delivered events recorded 11m ago (export_max_lag 5m)");
}

TEST_F(ExportGateTest, WhatTheSinkAcceptedCountsNotWhatItStillKeeps) {
  cursor("siem", 3, 1);  // sent everything; seq 2 and 3 kept for resending
  cursor("copy", 3);
  EXPECT_EQ(reason("2026-12-07T12:00:00Z"), std::nullopt);
}

TEST_F(ExportGateTest, CaughtUpOrWithinTheLagLetsActionsRun) {
  cursor("siem", 3);
  cursor("copy", 2);  // seq 3 (10:20) not delivered, 4 minutes ago
  EXPECT_EQ(reason("2026-12-07T10:24:00Z"), std::nullopt);
  EXPECT_TRUE(reason("2026-12-07T10:26:00Z").has_value());
  cursor("copy", 3);
  EXPECT_EQ(reason("2026-12-07T12:00:00Z"), std::nullopt);
}

}  // namespace
}  // namespace tw::daemon

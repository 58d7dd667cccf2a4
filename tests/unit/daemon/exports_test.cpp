// The require_export gate's rule for one exporter's report (export_gate_reason): closed before
// the first report, when the report is stale (a stuck delivery, a failing database), when the
// oldest undelivered event is unknown or older than export_max_lag; open when caught up.
#include "daemon/exports.h"

#include <gtest/gtest.h>

#include "tests/unit/core/test_support.h"

namespace tw::daemon {
namespace {

using tw::testing::ts;

const Timestamp kNow = ts("2026-01-01T00:10:00Z");
const Duration kMaxLag = std::chrono::minutes(2);

exporting::ExportStatus caught_up() {
  exporting::ExportStatus st;
  st.name = "siem";
  st.reported = true;
  st.oldest_known = true;
  st.last_ok = kNow - std::chrono::seconds(1);
  return st;
}

TEST(ExportGate, OpenWhenCaughtUpOrWithinTheLag) {
  auto st = caught_up();
  EXPECT_EQ(export_gate_reason(st, kNow, kMaxLag), std::nullopt);
  st.oldest_undelivered = kNow - std::chrono::seconds(90);
  EXPECT_EQ(export_gate_reason(st, kNow, kMaxLag), std::nullopt);
}

TEST(ExportGate, ClosedBeforeTheFirstReport) {
  exporting::ExportStatus st;
  st.name = "siem";
  EXPECT_TRUE(export_gate_reason(st, kNow, kMaxLag).has_value());
}

TEST(ExportGate, ClosedWhenTheOldestUndeliveredIsOlderThanTheLag) {
  auto st = caught_up();
  st.oldest_undelivered = kNow - std::chrono::minutes(3);
  EXPECT_TRUE(export_gate_reason(st, kNow, kMaxLag).has_value());
}

TEST(ExportGate, ClosedWhenTheLastReportIsStaleAlthoughItSaidCaughtUp) {
  auto st = caught_up();
  st.last_ok = kNow - std::chrono::seconds(30);  // bound: min(2 min, 30 s) + 1 s
  EXPECT_EQ(export_gate_reason(st, kNow, kMaxLag), std::nullopt);
  st.last_ok = kNow - std::chrono::seconds(32);
  EXPECT_TRUE(export_gate_reason(st, kNow, kMaxLag).has_value());
  // A short export_max_lag shortens the bound.
  st.last_ok = kNow - std::chrono::seconds(12);
  EXPECT_TRUE(export_gate_reason(st, kNow, std::chrono::seconds(10)).has_value());
}

TEST(ExportGate, TheBoundGrowsWithTheBackoff) {
  auto st = caught_up();
  st.last_ok = kNow - std::chrono::seconds(40);
  st.failures = 6;  // backoff 30 s: the next attempt is due only after 30 s + 30 s
  EXPECT_EQ(export_gate_reason(st, kNow, kMaxLag), std::nullopt);
  st.failures = 1;
  EXPECT_TRUE(export_gate_reason(st, kNow, kMaxLag).has_value());
}

TEST(ExportGate, ClosedWhenTheOldestUndeliveredIsUnknownAfterAFailure) {
  auto st = caught_up();
  st.oldest_known = false;
  st.failures = 1;
  EXPECT_TRUE(export_gate_reason(st, kNow, kMaxLag).has_value());
}

}  // namespace
}  // namespace tw::daemon

// Tests for daemon/credential_watch.h: when the management token tokenwarden uses is read (first
// check, hourly, at every check while it has lapsed, again if the clock went back), the sentence
// that fails a poll once it expired or was revoked, the expiry metric, and read failures that
// keep what was known. The fake cluster of tests/support/fakes.h answers own_credential().

#include "daemon/credential_watch.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

#include "metrics/metrics.h"
#include "tests/support/fakes.h"
#include "tests/unit/core/test_support.h"

namespace tw::daemon {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using tw::testing::ts;

constexpr const char* kSeries =
    "tokenwarden_management_token_expiry_timestamp_seconds{cluster=\"prod-eu\"}";

influx::OwnCredential credential(std::optional<Timestamp> expires_at,
                                 std::string description = "tokenwarden") {
  influx::OwnCredential c;
  c.id = "mgmt-1";
  c.description = std::move(description);
  c.expires_at = expires_at;
  return c;
}

class CredentialWatchTest : public ::testing::Test {
 protected:
  std::optional<std::string> check() {
    return watch_.check(client_, influx::CallContext{}, clock_.now(), &metrics_);
  }
  void answer(influx::OwnCredential c) { fake_->credential = std::optional(std::move(c)); }
  // The value of the expiry series, or "" if there is none.
  std::string expiry_metric() const {
    const std::string text = metrics_.render();
    auto at = text.find(std::string(kSeries) + " ");
    if (at == std::string::npos) return "";
    at += std::string(kSeries).size() + 1;
    return text.substr(at, text.find('\n', at) - at);
  }
  int warnings_logged() const {
    int n = 0;
    for (const auto& line : sink_->lines()) {
      if (line.find("cannot tell when the management token expires") != std::string::npos) ++n;
    }
    return n;
  }

  ManualClock clock_{ts("2026-01-01T00:00:00Z")};
  std::shared_ptr<tw::testing::FakeClusterState> fake_ =
      std::make_shared<tw::testing::FakeClusterState>();
  tw::testing::FakeCluster client_{fake_, clock_};
  std::shared_ptr<MemoryLogSink> sink_ = std::make_shared<MemoryLogSink>();
  metrics::Metrics metrics_{"test"};
  CredentialWatch watch_{"prod-eu", Logger("poller", sink_)};
};

TEST_F(CredentialWatchTest, ReadAtTheFirstCheckThenHourly) {
  answer(credential(ts("2026-03-01T00:00:00Z")));
  EXPECT_EQ(check(), std::nullopt);
  EXPECT_EQ(fake_->credential_calls, 1);
  clock_.advance(minutes(59));
  EXPECT_EQ(check(), std::nullopt);
  EXPECT_EQ(fake_->credential_calls, 1) << "not due within the hour";
  clock_.advance(minutes(1));
  EXPECT_EQ(check(), std::nullopt);
  EXPECT_EQ(fake_->credential_calls, 2) << "due after kCredentialCheckInterval";
  clock_.set(ts("2025-12-31T00:00:00Z"));  // the wall clock stepped back
  EXPECT_EQ(check(), std::nullopt);
  EXPECT_EQ(fake_->credential_calls, 3) << "a clock that went back makes the check due";
}

TEST_F(CredentialWatchTest, ExpiryIsPublishedAsUnixSeconds) {
  answer(credential(ts("2026-01-20T00:00:00Z")));
  EXPECT_EQ(check(), std::nullopt);
  EXPECT_EQ(expiry_metric(), "1768867200");
  clock_.advance(hours(1));
  answer(credential(std::nullopt));  // replaced by one that never expires
  EXPECT_EQ(check(), std::nullopt);
  EXPECT_EQ(expiry_metric(), "") << "no series for a token that never expires";
}

TEST_F(CredentialWatchTest, WithoutMetricsTheCheckStillWorks) {
  answer(credential(ts("2026-01-01T00:00:00Z")));
  auto why = watch_.check(client_, influx::CallContext{}, clock_.now(), nullptr);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("expired at 2026-01-01T00:00:00"), std::string::npos) << *why;
}

TEST_F(CredentialWatchTest, AnExpiredTokenFailsWithHowToReplaceIt) {
  answer(credential(ts("2026-01-01T00:30:00Z")));
  EXPECT_EQ(check(), std::nullopt) << "not expired yet";
  clock_.advance(minutes(30));  // expires_at <= now: expired at that very instant
  auto why = check();
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(
      *why,
      "the management token tokenwarden uses for cluster prod-eu (id mgmt-1, "
      "\"tokenwarden\") expired at 2026-01-01T00:30:00.000Z; create a new one with `influxctl "
      "management create` and set it as mgmt_token in the influxctl profile");
}

TEST_F(CredentialWatchTest, ARevokedTokenFailsAndLosesItsExpirySeries) {
  auto c = credential(ts("2027-01-01T00:00:00Z"), "");
  c.revoked_at = ts("2025-12-31T00:00:00Z");
  answer(c);
  auto why = check();
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("(id mgmt-1) was revoked at 2025-12-31T00:00:00.000Z"), std::string::npos)
      << "no description, no quoted part: " << *why;
  EXPECT_EQ(expiry_metric(), "") << "a revoked token's expiry is no warning";
}

TEST_F(CredentialWatchTest, ALapsedTokenIsReadAtEveryCheckUntilReplaced) {
  answer(credential(ts("2026-01-01T00:10:00Z")));
  EXPECT_EQ(check(), std::nullopt);
  clock_.advance(minutes(20));
  EXPECT_TRUE(check().has_value());
  EXPECT_EQ(fake_->credential_calls, 2) << "the hour is not waited for while lapsed";
  clock_.advance(minutes(1));
  EXPECT_TRUE(check().has_value());
  EXPECT_EQ(fake_->credential_calls, 3);
  answer(credential(ts("2027-01-01T00:00:00Z")));
  clock_.advance(minutes(1));
  EXPECT_EQ(check(), std::nullopt) << "the replacement is noticed at the next check";
  EXPECT_EQ(fake_->credential_calls, 4);
}

TEST_F(CredentialWatchTest, AFailedReadKeepsWhatWasKnownAndIsLoggedOncePerError) {
  answer(credential(ts("2026-01-01T02:30:00Z")));
  EXPECT_EQ(check(), std::nullopt);
  fake_->credential = make_error(ErrorCode::kIo, "influxctl exited with status 1");
  for (int i = 0; i < 2; ++i) {
    clock_.advance(hours(1));
    EXPECT_EQ(check(), std::nullopt) << "a failed read never fails a poll";
  }
  EXPECT_EQ(expiry_metric(), "1767234600") << "the known expiry stays published";
  EXPECT_EQ(warnings_logged(), 1) << "the same error is logged once";
  fake_->credential = make_error(ErrorCode::kParse, "influxctl management list printed junk");
  clock_.advance(hours(1));
  auto why = check();  // now past the known expiry: the reason comes from what was known
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("expired at 2026-01-01T02:30:00.000Z"), std::string::npos) << *why;
  EXPECT_EQ(warnings_logged(), 2) << "a different error is logged again";
  fake_->credential = make_error(ErrorCode::kCancelled, "shutting down");
  clock_.advance(hours(1));
  (void)check();
  EXPECT_EQ(warnings_logged(), 2) << "a cancelled read (shutdown) is not a warning";
}

TEST_F(CredentialWatchTest, UntrustedIdAndDescriptionArePrintable) {
  auto c = credential(ts("2025-12-01T00:00:00Z"), "evil\x1b[31m\nline");
  c.id = "id\nwith newline";
  answer(c);
  auto why = check();
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(why->find('\n'), std::string::npos) << *why;
  EXPECT_EQ(why->find('\x1b'), std::string::npos) << *why;
  EXPECT_NE(why->find("evil"), std::string::npos) << *why;
}

TEST_F(CredentialWatchTest, ASourceThatCannotTellNeverFails) {
  // The default answer: the source cannot see its own credential (REST, InfluxDB 3).
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(check(), std::nullopt);
    clock_.advance(hours(1));
  }
  EXPECT_EQ(fake_->credential_calls, 3);
  EXPECT_EQ(expiry_metric(), "");
  EXPECT_EQ(warnings_logged(), 0);
}

}  // namespace
}  // namespace tw::daemon

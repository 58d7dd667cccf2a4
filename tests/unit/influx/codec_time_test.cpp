// Tests for influx/codec.h on placeholder timestamps (issue 9, item 5): 0001-01-01T00:00:00Z,
// 1970-01-01T00:00:00Z, "" and the zero {seconds,nanos} objects mean *unset*, as strings
// (REST) or objects (influxctl); a placeholder createdAt is reported as created_at_unset with the
// value as sent. A createdAt in the future is kept: whether it is an anomaly depends on the poll
// time, which the decoder does not know.

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "core/time_anomaly.h"
#include "influx/codec.h"
#include "tests/unit/core/test_support.h"

namespace tw::influx {
namespace {

using tw::testing::ts;

struct PlaceholderCase {
  std::string name;
  std::string field;  // the key, e.g. createdAt or expires_at
  std::string json;   // its JSON value
  std::string raw;    // the anomaly's value ("-": no anomaly expected)
};

class PlaceholderTest : public ::testing::TestWithParam<PlaceholderCase> {};

TEST_P(PlaceholderTest, ReadsAsUnset) {
  const PlaceholderCase& c = GetParam();
  const std::string body =
      R"([{"id":"t1","description":"d","permissions":[],")" + c.field + "\":" + c.json + "}]";
  auto list = decode_token_list(body);
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_EQ(list->tokens.size(), 1u);
  const Token& t = list->tokens[0];
  EXPECT_EQ(t.created_at, std::nullopt);
  EXPECT_EQ(t.expires_at, std::nullopt);
  EXPECT_EQ(t.revoked_at, std::nullopt);
  EXPECT_EQ(status_at(t, ts("2026-06-01T00:00:00Z")), TokenStatus::kActive);
  if (c.raw == "-") {
    EXPECT_TRUE(list->anomalies.empty());
  } else {
    ASSERT_EQ(list->anomalies.size(), 1u);
    EXPECT_EQ(list->anomalies[0], (TimeAnomaly{"t1", kCreatedAtUnset, c.raw}));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Placeholders, PlaceholderTest,
    ::testing::Values(
        // REST: strings.
        PlaceholderCase{"created_go_zero", "createdAt", R"("0001-01-01T00:00:00Z")",
                        "0001-01-01T00:00:00Z"},
        PlaceholderCase{"created_go_zero_millis", "createdAt", R"("0001-01-01T00:00:00.000Z")",
                        "0001-01-01T00:00:00.000Z"},
        PlaceholderCase{"created_epoch", "createdAt", R"("1970-01-01T00:00:00Z")",
                        "1970-01-01T00:00:00Z"},
        PlaceholderCase{"created_epoch_offset", "createdAt", R"("1970-01-01T01:00:00+01:00")",
                        "1970-01-01T01:00:00+01:00"},
        PlaceholderCase{"created_empty_string", "createdAt", R"("")", ""},
        PlaceholderCase{"created_null_is_no_anomaly", "createdAt", "null", "-"},
        PlaceholderCase{"expires_go_zero", "expiresAt", R"("0001-01-01T00:00:00Z")", "-"},
        PlaceholderCase{"expires_epoch", "expiresAt", R"("1970-01-01T00:00:00.000Z")", "-"},
        PlaceholderCase{"revoked_go_zero", "revokedAt", R"("0001-01-01T00:00:00Z")", "-"},
        PlaceholderCase{"revoked_epoch", "revokedAt", R"("1970-01-01T00:00:00Z")", "-"},
        // influxctl: protobuf Timestamps rendered by encoding/json.
        PlaceholderCase{"created_object_empty", "created_at", "{}", "{}"},
        PlaceholderCase{"created_object_seconds_0", "created_at", R"({"seconds":0})",
                        R"({"seconds":0})"},
        PlaceholderCase{"created_object_seconds_and_nanos_0", "created_at",
                        R"({"seconds":0,"nanos":0})", R"({"seconds":0,"nanos":0})"},
        PlaceholderCase{"created_object_seconds_string_0", "created_at", R"({"seconds":"0"})",
                        R"({"seconds":0})"},
        PlaceholderCase{"created_object_go_zero", "created_at", R"({"seconds":-62135596800})",
                        R"({"seconds":-62135596800})"},
        PlaceholderCase{"expires_object_go_zero", "expires_at", R"({"seconds":-62135596800})", "-"},
        PlaceholderCase{"expires_object_zero", "expires_at", R"({"seconds":0})", "-"},
        PlaceholderCase{"revoked_object_empty", "revoked_at", "{}", "-"},
        PlaceholderCase{"revoked_object_go_zero", "revoked_at",
                        R"({"seconds":-62135596800,"nanos":0})", "-"}),
    [](const ::testing::TestParamInfo<PlaceholderCase>& i) { return i.param.name; });

TEST(CodecTimeTest, NearPlaceholdersAreRealTimes) {
  auto list = decode_token_list(R"([
    {"id":"a","createdAt":"1970-01-01T00:00:00.001Z","expiresAt":"0001-01-01T00:00:01Z"},
    {"id":"b","created_at":{"seconds":0,"nanos":1000000},"revoked_at":{"seconds":1}},
    {"id":"c","created_at":{"seconds":-62135596799}}
  ])");
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_EQ(list->tokens.size(), 3u);
  EXPECT_EQ(list->tokens[0].created_at, ts("1970-01-01T00:00:00.001Z"));
  EXPECT_EQ(list->tokens[0].expires_at, ts("0001-01-01T00:00:01Z"));
  EXPECT_EQ(list->tokens[1].created_at, ts("1970-01-01T00:00:00.001Z"));
  EXPECT_EQ(list->tokens[1].revoked_at, ts("1970-01-01T00:00:01Z"));
  EXPECT_EQ(list->tokens[2].created_at, ts("0001-01-01T00:00:01Z"));
  EXPECT_TRUE(list->anomalies.empty());
}

TEST(CodecTimeTest, FutureCreatedAtIsKeptForThePollerToJudge) {
  auto list = decode_token_list(
      R"([{"id":"f","createdAt":"9999-12-31T00:00:00Z","permissions":[{"action":"write","resource":"*"}]},)"
      R"({"id":"g","created_at":{"seconds":253402300799}}])");
  ASSERT_TRUE(list.ok()) << list.error().message;
  EXPECT_EQ(list->tokens[0].created_at, ts("9999-12-31T00:00:00Z"));
  EXPECT_EQ(list->tokens[1].created_at, ts("9999-12-31T23:59:59Z"));
  EXPECT_TRUE(list->anomalies.empty());
}

TEST(CodecTimeTest, AnomaliesNameTheirTokensInListOrderWhereverTheIdComes) {
  auto list = decode_token_list(R"([
    {"createdAt":"0001-01-01T00:00:00Z","id":"late-id"},
    {"id":"ok","createdAt":"2025-01-01T00:00:00Z"},
    {"id":"obj","created_at":{}}
  ])");
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_EQ(list->anomalies.size(), 2u);
  EXPECT_EQ(list->anomalies[0], (TimeAnomaly{"late-id", kCreatedAtUnset, "0001-01-01T00:00:00Z"}));
  EXPECT_EQ(list->anomalies[1], (TimeAnomaly{"obj", kCreatedAtUnset, "{}"}));
}

TEST(CodecTimeTest, SingleTokenPlaceholdersReadAsUnset) {
  auto t = decode_token(
      R"({"id":"t","createdAt":"0001-01-01T00:00:00Z","expiresAt":"1970-01-01T00:00:00Z"})");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->created_at, std::nullopt);
  EXPECT_EQ(t->expires_at, std::nullopt);
}

}  // namespace
}  // namespace tw::influx

// Tests for parse_naive_utc (core/time.h): InfluxDB 3's zone-less timestamps read as UTC, and
// that parse_rfc3339 still refuses them.

#include <gtest/gtest.h>

#include <string>

#include "core/time.h"
#include "tests/unit/core/test_support.h"

namespace tw {
namespace {

using tw::testing::ts;

TEST(NaiveTime, ReadsZoneLessTimesAsUtc) {
  struct Case {
    const char* text;
    const char* utc;
  };
  for (const Case& c : {
           Case{"2025-04-18T14:02:45", "2025-04-18T14:02:45Z"},
           Case{"2025-04-18T14:02:45.331", "2025-04-18T14:02:45.331Z"},
           Case{"2025-04-18T14:02:45.5", "2025-04-18T14:02:45.500Z"},
           Case{"2025-04-18T14:02:45.123456789", "2025-04-18T14:02:45.123Z"},  // truncated
           Case{"1970-01-01T00:00:00", "1970-01-01T00:00:00Z"},
           Case{"2024-02-29 23:59:59", "2024-02-29T23:59:59Z"},  // the SQL literal form
       }) {
    auto t = parse_naive_utc(c.text);
    ASSERT_TRUE(t.ok()) << c.text << ": " << t.error().message;
    EXPECT_EQ(*t, ts(c.utc)) << c.text;
  }
}

TEST(NaiveTime, RefusesZonesAndGarbageWithOneSentence) {
  for (const char* bad :
       {"2025-04-18T14:02:45Z", "2025-04-18T14:02:45+02:00", "2025-04-18T14:02:45.331z",
        "2025-02-30T00:00:00", "2025-04-18", "2025-04-18T14:02", "2025-04-18T24:00:00",
        "2025-04-18T14:02:45.", "", "yesterday", "2025-04-18T14:02:45 "}) {
    auto t = parse_naive_utc(bad);
    ASSERT_FALSE(t.ok()) << "accepted \"" << bad << "\"";
    EXPECT_EQ(t.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(t.error().message.find("invalid timestamp"), std::string::npos) << t.error().message;
    EXPECT_EQ(t.error().message.find('\n'), std::string::npos);
  }
}

TEST(NaiveTime, Rfc3339StillRequiresAZone) {
  auto t = parse_rfc3339("2025-04-18T14:02:45.331");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("missing time zone"), std::string::npos) << t.error().message;
  auto z = parse_rfc3339("2025-04-18T14:02:45.331+02:00");
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(*z, ts("2025-04-18T12:02:45.331Z"));
}

}  // namespace
}  // namespace tw

// Tests for core/time.h: durations, RFC 3339 timestamps, command-line time arguments, clocks.

#include "core/time.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tw {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

constexpr std::int64_t kDayMs = 86'400'000;

// --- parse_duration / format_duration ---------------------------------------------------------

struct DurationCase {
  std::string text;
  std::int64_t millis;
};

class ParseDurationOk : public ::testing::TestWithParam<DurationCase> {};

TEST_P(ParseDurationOk, Parses) {
  auto d = parse_duration(GetParam().text);
  ASSERT_TRUE(d.ok()) << GetParam().text << ": " << d.error().message;
  EXPECT_EQ(d->count(), GetParam().millis) << GetParam().text;
}

INSTANTIATE_TEST_SUITE_P(
    Table, ParseDurationOk,
    ::testing::Values(DurationCase{"0s", 0}, DurationCase{"0ms", 0}, DurationCase{"250ms", 250},
                      DurationCase{"1ms", 1}, DurationCase{"30s", 30'000},
                      DurationCase{"5m", 300'000}, DurationCase{"12h", 12 * 3'600'000LL},
                      DurationCase{"90d", 90 * kDayMs}, DurationCase{"2w", 14 * kDayMs},
                      DurationCase{"1h30m", 5'400'000}, DurationCase{"1m5s", 65'000},
                      DurationCase{"1d2h3m4s5ms", kDayMs + 7'384'005},
                      DurationCase{"1m1m", 120'000},             // a sum, not a syntax error
                      DurationCase{"  5m \n", 300'000},          // surrounding whitespace trimmed
                      DurationCase{"36600d", 36600 * kDayMs}));  // exactly the 100-year limit

class ParseDurationBad : public ::testing::TestWithParam<std::string> {};

TEST_P(ParseDurationBad, Rejects) {
  auto d = parse_duration(GetParam());
  ASSERT_FALSE(d.ok()) << "accepted \"" << GetParam() << "\" as " << d->count() << "ms";
  EXPECT_EQ(d.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(d.error().message.find('\n'), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Table, ParseDurationBad,
                         ::testing::Values("", "   ", "5", "5x", "m", "-5s", "+5s", "1.5h", "5 m",
                                           "5M", "5S", "5mss", "h5", "1y", "5sec",
                                           "99999999999999999999s", "36601d", "5300w"));

TEST(ParseDuration, ErrorQuotesTheInput) {
  auto d = parse_duration("5x");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().message.find("\"5x\""), std::string::npos) << d.error().message;
}

TEST(ParseDuration, HugeNumberIsAnErrorNotAnOverflow) {
  for (const char* text : {"9223372036854775807ms", "9223372036854775807w", "18446744073709551616s",
                           "1000000000w1000000000w"}) {
    auto d = parse_duration(text);
    EXPECT_FALSE(d.ok()) << text;
  }
}

struct FormatCase {
  std::int64_t millis;
  std::string text;
};

class FormatDuration : public ::testing::TestWithParam<FormatCase> {};

TEST_P(FormatDuration, ShortestExactForm) {
  EXPECT_EQ(format_duration(Duration(GetParam().millis)), GetParam().text);
}

TEST_P(FormatDuration, RoundTripsThroughParse) {
  auto d = parse_duration(format_duration(Duration(GetParam().millis)));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->count(), GetParam().millis);
}

INSTANTIATE_TEST_SUITE_P(
    Table, FormatDuration,
    ::testing::Values(FormatCase{0, "0s"}, FormatCase{1, "1ms"}, FormatCase{250, "250ms"},
                      FormatCase{1000, "1s"}, FormatCase{1500, "1s500ms"}, FormatCase{60'000, "1m"},
                      FormatCase{5'400'000, "1h30m"}, FormatCase{12 * 3'600'000LL, "12h"},
                      FormatCase{90 * kDayMs, "90d"},
                      FormatCase{14 * kDayMs, "14d"},  // days, not weeks
                      FormatCase{kDayMs + 1, "1d1ms"},
                      FormatCase{kDayMs + 3'600'000 + 60'000 + 1000 + 1, "1d1h1m1s1ms"}));

TEST(FormatDuration, NegativeHasASign) {
  EXPECT_EQ(format_duration(Duration(-30'000)), "-30s");
  EXPECT_EQ(format_duration(Duration(-5'400'001)), "-1h30m1ms");
}

// --- parse_rfc3339 ----------------------------------------------------------------------------

struct TimeCase {
  std::string text;
  Timestamp expected;
};

class ParseRfc3339Ok : public ::testing::TestWithParam<TimeCase> {};

TEST_P(ParseRfc3339Ok, Parses) {
  auto t = parse_rfc3339(GetParam().text);
  ASSERT_TRUE(t.ok()) << GetParam().text << ": " << t.error().message;
  EXPECT_EQ(format_timestamp(*t), format_timestamp(GetParam().expected)) << GetParam().text;
  EXPECT_EQ(*t, GetParam().expected);
}

const Timestamp kBase = make_timestamp(2025, 1, 2, 3, 4, 5);

INSTANTIATE_TEST_SUITE_P(
    Zones, ParseRfc3339Ok,
    ::testing::Values(
        TimeCase{"2025-01-02T03:04:05Z", kBase}, TimeCase{"2025-01-02T03:04:05z", kBase},
        TimeCase{"2025-01-02t03:04:05Z", kBase}, TimeCase{"2025-01-02 03:04:05Z", kBase},
        TimeCase{"2025-01-02T03:04:05+00:00", kBase}, TimeCase{"2025-01-02T03:04:05-00:00", kBase},
        TimeCase{"2025-01-02T03:04:05+0000", kBase},  // no colon: sent by published examples
        TimeCase{"2025-01-02T05:04:05+02:00", kBase}, TimeCase{"2025-01-02T05:04:05+0200", kBase},
        TimeCase{"2025-01-01T21:34:05-0530", kBase}, TimeCase{"2025-01-01T21:34:05-05:30", kBase},
        // The offset moves the instant across midnight, a month and a year.
        TimeCase{"2025-01-01T00:30:00+01:00", make_timestamp(2024, 12, 31, 23, 30)},
        TimeCase{"2024-12-31T23:30:00-01:00", make_timestamp(2025, 1, 1, 0, 30)},
        TimeCase{"2025-01-02T03:04:05+23:59", kBase - hours(23) - minutes(59)}));

INSTANTIATE_TEST_SUITE_P(
    Fractions, ParseRfc3339Ok,
    ::testing::Values(TimeCase{"2025-01-02T03:04:05.5Z", kBase + milliseconds(500)},
                      TimeCase{"2025-01-02T03:04:05.0Z", kBase},
                      TimeCase{"2025-01-02T03:04:05.12Z", kBase + milliseconds(120)},
                      TimeCase{"2025-01-02T03:04:05.123Z", kBase + milliseconds(123)},
                      TimeCase{"2025-01-02T03:04:05.1234Z", kBase + milliseconds(123)},
                      TimeCase{"2025-01-02T03:04:05.12345Z", kBase + milliseconds(123)},
                      TimeCase{"2025-01-02T03:04:05.123456Z", kBase + milliseconds(123)},
                      TimeCase{"2025-01-02T03:04:05.1234567Z", kBase + milliseconds(123)},
                      TimeCase{"2025-01-02T03:04:05.12345678Z", kBase + milliseconds(123)},
                      TimeCase{"2025-01-02T03:04:05.123456789Z", kBase + milliseconds(123)},
                      // Truncated, not rounded.
                      TimeCase{"2025-01-02T03:04:05.999999999Z", kBase + milliseconds(999)},
                      TimeCase{"2025-01-02T03:04:05.000Z", kBase},
                      TimeCase{"2025-01-02T03:04:05.001+01:00",
                               kBase - hours(1) + milliseconds(1)}));

INSTANTIATE_TEST_SUITE_P(
    Calendar, ParseRfc3339Ok,
    ::testing::Values(
        TimeCase{"1970-01-01T00:00:00Z", Timestamp(Duration(0))},
        TimeCase{"1969-12-31T23:59:59.999Z", Timestamp(Duration(-1))},
        TimeCase{"2024-02-29T12:00:00Z", make_timestamp(2024, 2, 29, 12)},  // leap year
        TimeCase{"2000-02-29T00:00:00Z", make_timestamp(2000, 2, 29)},      // 400-year rule
        TimeCase{"0001-01-01T00:00:00Z", make_timestamp(1, 1, 1)},
        TimeCase{"9999-12-31T23:59:59.999Z", make_timestamp(9999, 12, 31, 23, 59, 59, 999)},
        // A leap second is accepted and clamped to :59 (we have no use for it).
        TimeCase{"2016-12-31T23:59:60Z", make_timestamp(2016, 12, 31, 23, 59, 59)},
        TimeCase{"2016-12-31T23:59:60.500Z", make_timestamp(2016, 12, 31, 23, 59, 59, 500)}));

class ParseRfc3339Bad : public ::testing::TestWithParam<std::string> {};

TEST_P(ParseRfc3339Bad, Rejects) {
  auto t = parse_rfc3339(GetParam());
  ASSERT_FALSE(t.ok()) << "accepted \"" << GetParam() << "\" as " << format_timestamp(*t);
  EXPECT_EQ(t.error().code, ErrorCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(
    Table, ParseRfc3339Bad,
    ::testing::Values("", "2025", "2025-01-02", "2025-01-02T", "2025-01-02T03:04",
                      "2025-01-02T03:04:05",      // missing zone
                      "2025-01-02T03:04:05.123",  // missing zone after a fraction
                      "2025-02-30T00:00:00Z",     // no such date
                      "2023-02-29T00:00:00Z",     // not a leap year
                      "1900-02-29T00:00:00Z",     // century rule
                      "2025-04-31T00:00:00Z", "2025-13-01T00:00:00Z", "2025-00-10T00:00:00Z",
                      "2025-01-00T00:00:00Z", "0000-01-01T00:00:00Z", "2025-01-02T24:00:00Z",
                      "2025-01-02T23:60:00Z", "2025-01-02T23:59:61Z", "2025-01-02T03:04:05.Z",
                      "2025-01-02T03:04:05ZZ", "2025-01-02T03:04:05Z ", " 2025-01-02T03:04:05Z",
                      "2025-01-02T03:04:05+02", "2025-01-02T03:04:05+2:00",
                      "2025-01-02T03:04:05+24:00", "2025-01-02T03:04:05+02:60",
                      "2025-01-02T03:04:05+02:00:00", "2025-01-02X03:04:05Z",
                      "2025/01/02T03:04:05Z", "25-01-02T03:04:05Z", "2025-1-02T03:04:05Z",
                      "2025-01-02T3:04:05Z", "2025-01-02T03:04:05UTC", "2025-01-02T03:04:05 Z",
                      "2025-01-02T03:04:05,123Z", "yesterday"));

TEST(ParseRfc3339, ErrorQuotesTheInputAndSaysWhy) {
  auto t = parse_rfc3339("2025-02-30T00:00:00Z");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("\"2025-02-30T00:00:00Z\""), std::string::npos)
      << t.error().message;
  EXPECT_NE(t.error().message.find("no such date"), std::string::npos) << t.error().message;

  auto z = parse_rfc3339("2025-01-02T03:04:05");
  ASSERT_FALSE(z.ok());
  EXPECT_NE(z.error().message.find("zone"), std::string::npos) << z.error().message;
}

TEST(ParseRfc3339, HostileInputIsQuotedTerminalSafe) {
  auto t = parse_rfc3339("2025-01-02T03:04:05\n\x1b[2Jforged");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().message.find('\n'), std::string::npos);
  EXPECT_EQ(t.error().message.find('\x1b'), std::string::npos);
}

// --- format_timestamp -------------------------------------------------------------------------

TEST(FormatTimestamp, DatabaseFormat) {
  EXPECT_EQ(format_timestamp(make_timestamp(2026, 1, 1)), "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(format_timestamp(make_timestamp(2025, 12, 31, 23, 59, 59, 999)),
            "2025-12-31T23:59:59.999Z");
  EXPECT_EQ(format_timestamp(Timestamp(Duration(0))), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_timestamp(Timestamp(Duration(-1))), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format_timestamp(Timestamp(Duration(7))), "1970-01-01T00:00:00.007Z");
  EXPECT_EQ(format_timestamp(make_timestamp(2024, 2, 29, 1, 2, 3, 40)), "2024-02-29T01:02:03.040Z");
  EXPECT_EQ(format_timestamp(make_timestamp(9999, 12, 31, 23, 59, 59, 999)),
            "9999-12-31T23:59:59.999Z");
}

TEST(FormatTimestamp, AppendAddsToTheEnd) {
  std::string out = "at ";
  append_timestamp(out, make_timestamp(2026, 3, 4, 5, 6, 7, 8));
  EXPECT_EQ(out, "at 2026-03-04T05:06:07.008Z");
}

TEST(FormatTimestamp, RoundTripsThroughParse) {
  std::vector<Timestamp> samples{Timestamp(Duration(0)), Timestamp(Duration(-86'400'001)),
                                 make_timestamp(2026, 7, 15, 12, 30, 45, 123),
                                 make_timestamp(1999, 12, 31, 23, 59, 59, 999)};
  for (std::int64_t ms = 1'700'000'000'000; ms < 1'700'000'000'000 + 50 * kDayMs;
       ms += 987'654'321) {
    samples.emplace_back(Duration(ms));
  }
  for (auto t : samples) {
    auto back = parse_rfc3339(format_timestamp(t));
    ASSERT_TRUE(back.ok()) << format_timestamp(t);
    EXPECT_EQ(*back, t) << format_timestamp(t);
  }
}

TEST(MakeTimestamp, CivilFields) {
  EXPECT_EQ(make_timestamp(1970, 1, 1).time_since_epoch().count(), 0);
  EXPECT_EQ(make_timestamp(1970, 1, 2, 0, 0, 0, 1).time_since_epoch().count(), kDayMs + 1);
  EXPECT_EQ(make_timestamp(2000, 3, 1) - make_timestamp(2000, 2, 28), Duration(2 * kDayMs));
}

// --- parse_time_arg ---------------------------------------------------------------------------

const Timestamp kNow = make_timestamp(2026, 5, 20, 12, 0, 0, 250);

class ParseTimeArgOk : public ::testing::TestWithParam<TimeCase> {};

TEST_P(ParseTimeArgOk, Parses) {
  auto t = parse_time_arg(GetParam().text, kNow);
  ASSERT_TRUE(t.ok()) << GetParam().text << ": " << t.error().message;
  EXPECT_EQ(format_timestamp(*t), format_timestamp(GetParam().expected)) << GetParam().text;
}

INSTANTIATE_TEST_SUITE_P(
    Table, ParseTimeArgOk,
    ::testing::Values(
        TimeCase{"now", kNow}, TimeCase{" now ", kNow}, TimeCase{"0s", kNow},
        TimeCase{"7d", kNow - hours(24 * 7)}, TimeCase{"90m", kNow - minutes(90)},
        TimeCase{"1h30m", kNow - minutes(90)}, TimeCase{"250ms", kNow - milliseconds(250)},
        TimeCase{"2w", kNow - hours(24 * 14)}, TimeCase{"2026-11-01", make_timestamp(2026, 11, 1)},
        TimeCase{"2024-02-29", make_timestamp(2024, 2, 29)},
        TimeCase{"2026-11-01T10:00", make_timestamp(2026, 11, 1, 10)},
        TimeCase{"2026-11-01 10:00", make_timestamp(2026, 11, 1, 10)},
        TimeCase{"2026-11-01T10:00:30", make_timestamp(2026, 11, 1, 10, 0, 30)},
        TimeCase{"2026-11-01T10:00:30.5", make_timestamp(2026, 11, 1, 10, 0, 30, 500)},
        TimeCase{"2026-11-01T10:00:00Z", make_timestamp(2026, 11, 1, 10)},
        TimeCase{"2026-11-01T10:00:00+02:00", make_timestamp(2026, 11, 1, 8)},
        TimeCase{"2026-11-01T10:00:00-0530", make_timestamp(2026, 11, 1, 15, 30)},
        TimeCase{"2026-11-01T10:00:00.123z", make_timestamp(2026, 11, 1, 10, 0, 0, 123)}));

class ParseTimeArgBad : public ::testing::TestWithParam<std::string> {};

TEST_P(ParseTimeArgBad, Rejects) {
  auto t = parse_time_arg(GetParam(), kNow);
  ASSERT_FALSE(t.ok()) << "accepted \"" << GetParam() << "\" as " << format_timestamp(*t);
  EXPECT_EQ(t.error().code, ErrorCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Table, ParseTimeArgBad,
                         ::testing::Values("", "Now", "yesterday", "7", "7x", "-7d", "2026-13-01",
                                           "2026-02-30", "2026-11-01T25:00", "2026-11-01T10",
                                           "2026-11-01T10:00:00+25:00", "2026-11-01T10:00:61",
                                           "2026-11-01Tgarbage", "2026"));

// --- clocks -----------------------------------------------------------------------------------

TEST(ManualClock, SetAndAdvance) {
  ManualClock clock(make_timestamp(2026, 1, 1));
  EXPECT_EQ(clock.now(), make_timestamp(2026, 1, 1));
  clock.advance(seconds(90));
  EXPECT_EQ(format_timestamp(clock.now()), "2026-01-01T00:01:30.000Z");
  clock.advance(milliseconds(1));
  EXPECT_EQ(format_timestamp(clock.now()), "2026-01-01T00:01:30.001Z");
  clock.set(make_timestamp(2020, 6, 1));
  EXPECT_EQ(format_timestamp(clock.now()), "2020-06-01T00:00:00.000Z");
  const Clock& as_clock = clock;
  EXPECT_EQ(as_clock.now(), make_timestamp(2020, 6, 1));
}

TEST(SystemClock, IsAfter2020) {
  // The only test that reads the real clock: it must be a sane, millisecond-precision time.
  SystemClock clock;
  EXPECT_GT(clock.now(), make_timestamp(2020, 1, 1));
}

}  // namespace
}  // namespace tw

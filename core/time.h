#pragma once
// Time values, parsing and formatting, and the injectable Clock.
//
// Timestamps are UTC with millisecond precision (the audit database's resolution). Everything
// that needs "now" receives a Clock; only SystemClock reads the real clock, so tests advance a
// ManualClock instead of sleeping.
//
// Thread safety: the free functions are pure; SystemClock and ManualClock are thread-safe.
// Errors: parse functions return Result with a one-sentence message quoting the bad input.

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace tw {

using Duration = std::chrono::milliseconds;
using Timestamp = std::chrono::sys_time<std::chrono::milliseconds>;

// "30s", "5m", "12h", "90d", "2w", "250ms", and sums like "1h30m". Zero is "0s".
Result<Duration> parse_duration(std::string_view text);
// The shortest exact form in the units above: 90d, 1h30m, 250ms, 0s.
std::string format_duration(Duration d);

// RFC 3339: "2025-01-02T03:04:05Z", fractional seconds (any number of digits, truncated to
// milliseconds), "Z"/"z" or a "+hh:mm"/"+hhmm" offset; 'T', 't' or ' ' between date and time.
Result<Timestamp> parse_rfc3339(std::string_view text);
// A date and time without a zone, read as UTC: "2025-01-02T03:04:05" with an optional fraction
// (any number of digits, truncated to milliseconds). InfluxDB 3 Core/Enterprise render their
// zone-less timestamp(ms) columns so. Text with a zone is refused: this is no RFC 3339 parser.
Result<Timestamp> parse_naive_utc(std::string_view text);
// Stored optional timestamps (database columns): nullopt for NULL or unreadable text.
std::optional<Timestamp> parse_optional_timestamp(const std::optional<std::string>& text);
// "YYYY-MM-DDTHH:MM:SS.mmmZ", the database and API format.
std::string format_timestamp(Timestamp t);
void append_timestamp(std::string& out, Timestamp t);

// Command-line time arguments: RFC 3339, a date "2026-11-01" (midnight UTC),
// "2026-11-01T10:00[:00]" without zone (UTC), "now", or a duration meaning that long ago ("7d").
Result<Timestamp> parse_time_arg(std::string_view text, Timestamp now);

// Builds a UTC timestamp from civil fields; fields must be valid.
Timestamp make_timestamp(int year, unsigned month, unsigned day, int hour = 0, int minute = 0,
                         int second = 0, int millis = 0);

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Timestamp now() const = 0;
};

class SystemClock final : public Clock {
 public:
  Timestamp now() const override;
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(Timestamp start) : now_(start.time_since_epoch().count()) {}
  Timestamp now() const override { return Timestamp(Duration(now_.load())); }
  void set(Timestamp t) { now_.store(t.time_since_epoch().count()); }
  void advance(Duration d) { now_.fetch_add(d.count()); }

 private:
  std::atomic<Duration::rep> now_;
};

}  // namespace tw

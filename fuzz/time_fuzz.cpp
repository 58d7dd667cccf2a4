// Fuzzes time parsing (core/time.h): RFC 3339, zone-less UTC, durations and command-line time
// arguments. Properties: a duration is within 0..100 years and its format_duration() reads back
// to the same value; an RFC 3339 time in years 1-9999 reads back from format_timestamp(); a
// zone-less time equals the same text read as RFC 3339 with "Z".
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.h"
#include "core/time.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto first = tw::make_timestamp(1, 1, 1);
  const auto last = tw::make_timestamp(9999, 12, 31, 23, 59, 59, 999);

  auto d = tw::parse_duration(text);
  if (d.ok()) {
    FUZZ_CHECK(*d >= tw::Duration(0));
    FUZZ_CHECK(*d <= std::chrono::days(100 * 366));
    auto again = tw::parse_duration(tw::format_duration(*d));
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(*again == *d);
  }

  auto t = tw::parse_rfc3339(text);
  if (t.ok() && *t >= first && *t <= last) {
    auto again = tw::parse_rfc3339(tw::format_timestamp(*t));
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(*again == *t);
  }

  auto naive = tw::parse_naive_utc(text);
  if (naive.ok()) {
    auto zoned = tw::parse_rfc3339(std::string(text) + "Z");
    FUZZ_CHECK(zoned.ok());
    FUZZ_CHECK(*zoned == *naive);
  }

  (void)tw::parse_time_arg(text, tw::make_timestamp(2026, 12, 7));
  return 0;
}

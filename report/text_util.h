#pragma once
// Small helpers shared by the renderers: durations, numbers and times for people (HTML,
// Markdown), and seconds for machines (CSV, JSON). Untrusted text goes through printable()
// (core/strings.h).
//
// Thread safety: pure functions.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/time.h"

namespace tw::report {

// "3d 4h", "2h 5m", "45s" (two largest units).
std::string human_duration(double seconds);
std::string human_duration(Duration d);
// A duration in seconds (CSV, JSON).
inline double seconds(Duration d) { return std::chrono::duration<double>(d).count(); }
// 1234567 -> "1,234,567".
std::string thousands(std::int64_t n);
// "2026-11-01 12:00 UTC" (minutes; the machine formats keep milliseconds).
std::string short_time(Timestamp t);
std::string short_time(const std::optional<Timestamp>& t, std::string_view none = "—");

}  // namespace tw::report

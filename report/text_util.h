#pragma once
// Small text helpers shared by the human-readable renderers (HTML, Markdown).
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
// 1234567 -> "1,234,567".
std::string thousands(std::int64_t n);
// "2026-11-01 12:00 UTC" (minutes; the machine formats keep milliseconds).
std::string short_time(Timestamp t);
std::string short_time(const std::optional<Timestamp>& t, std::string_view none = "—");

// Untrusted text made safe for display: invalid UTF-8 replaced, control characters (newlines,
// ESC, …) shown as \n, \x1b, …, and cut at max_bytes with "…".
std::string display_text(std::string_view s, std::size_t max_bytes = 300);

}  // namespace tw::report

#include "report/text_util.h"

#include <cmath>
#include <cstdio>

#include "core/strings.h"

namespace tw::report {

std::string human_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "—";
  auto s = static_cast<std::int64_t>(std::llround(seconds));
  if (s < 60) return std::to_string(s) + "s";
  const std::int64_t d = s / 86400, h = (s % 86400) / 3600, m = (s % 3600) / 60, sec = s % 60;
  if (d > 0) return std::to_string(d) + "d" + (h > 0 ? " " + std::to_string(h) + "h" : "");
  if (h > 0) return std::to_string(h) + "h" + (m > 0 ? " " + std::to_string(m) + "m" : "");
  return std::to_string(m) + "m" + (sec > 0 ? " " + std::to_string(sec) + "s" : "");
}

std::string human_duration(Duration d) {
  return human_duration(std::chrono::duration<double>(d).count());
}

std::string thousands(std::int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string short_time(Timestamp t) {
  std::string s = format_timestamp(t);  // 2026-11-01T12:00:00.000Z
  if (s.size() >= 16) return s.substr(0, 10) + " " + s.substr(11, 5) + " UTC";
  return s;
}

std::string short_time(const std::optional<Timestamp>& t, std::string_view none) {
  return t ? short_time(*t) : std::string(none);
}

}  // namespace tw::report

#include "core/time.h"

#include <array>
#include <cstdint>
#include <cstdio>

#include "core/strings.h"

namespace tw {
namespace {

using std::chrono::days;
using std::chrono::sys_days;

struct Unit {
  std::string_view name;
  std::int64_t millis;
};
// Longest names first so "ms" wins over "m".
constexpr std::array<Unit, 6> kUnits{{{"ms", 1},
                                      {"s", 1000},
                                      {"m", 60'000},
                                      {"h", 3'600'000},
                                      {"d", 86'400'000},
                                      {"w", 604'800'000}}};

bool read_digits(std::string_view s, std::size_t& pos, std::size_t count, int& out) {
  if (pos + count > s.size()) return false;
  int v = 0;
  for (std::size_t i = 0; i < count; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  pos += count;
  return true;
}

bool expect(std::string_view s, std::size_t& pos, char c) {
  if (pos < s.size() && s[pos] == c) {
    ++pos;
    return true;
  }
  return false;
}

Error bad_time(std::string_view text, std::string_view why) {
  return make_error(ErrorCode::kInvalidArgument,
                    "invalid timestamp \"" + printable(text, 64) + "\": " + std::string(why));
}

bool valid_date(int y, int m, int d) {
  std::chrono::year_month_day ymd{std::chrono::year{y},
                                  std::chrono::month{static_cast<unsigned>(m)},
                                  std::chrono::day{static_cast<unsigned>(d)}};
  return y >= 1 && y <= 9999 && ymd.ok();
}

}  // namespace

Timestamp make_timestamp(int year, unsigned month, unsigned day, int hour, int minute, int second,
                         int millis) {
  sys_days date{std::chrono::year{year} / std::chrono::month{month} / std::chrono::day{day}};
  return Timestamp(std::chrono::duration_cast<Duration>(date.time_since_epoch()) +
                   std::chrono::hours(hour) + std::chrono::minutes(minute) +
                   std::chrono::seconds(second) + Duration(millis));
}

Result<Duration> parse_duration(std::string_view text) {
  std::string_view s = trim(text);
  if (s.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "empty duration (expected e.g. \"30s\", \"5m\")");
  }
  std::int64_t total = 0;
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::int64_t n = 0;
    std::size_t start = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (n > 1'000'000'000) {
        return make_error(ErrorCode::kInvalidArgument,
                          "duration \"" + printable(text, 64) + "\" is too large");
      }
      n = n * 10 + (s[pos] - '0');
      ++pos;
    }
    if (pos == start) {
      return make_error(ErrorCode::kInvalidArgument,
                        "invalid duration \"" + printable(text, 64) +
                            "\" (expected a number and a unit: ms, s, m, h, d, w)");
    }
    const Unit* unit = nullptr;
    for (const auto& u : kUnits) {
      if (s.substr(pos, u.name.size()) == u.name) {
        unit = &u;
        break;
      }
    }
    if (unit == nullptr) {
      return make_error(ErrorCode::kInvalidArgument,
                        "invalid duration \"" + printable(text, 64) +
                            "\" (each number needs a unit: ms, s, m, h, d, w)");
    }
    pos += unit->name.size();
    total += n * unit->millis;
    if (total > std::int64_t{100} * 366 * 86'400'000) {
      return make_error(ErrorCode::kInvalidArgument,
                        "duration \"" + printable(text, 64) + "\" is longer than 100 years");
    }
  }
  return Duration(total);
}

std::string format_duration(Duration d) {
  std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out += '-';
    ms = -ms;
  }
  // Use days (not weeks) as the largest unit: "90d" reads better than "12w6d".
  static constexpr std::array<Unit, 5> kFormat{
      {{"d", 86'400'000}, {"h", 3'600'000}, {"m", 60'000}, {"s", 1000}, {"ms", 1}}};
  for (const auto& u : kFormat) {
    if (ms >= u.millis) {
      out += std::to_string(ms / u.millis);
      out += u.name;
      ms %= u.millis;
    }
  }
  return out;
}

namespace {

// "YYYY-MM-DD[T ]HH:MM:SS[.fraction]" from the start of `text`, as if in UTC; `pos` ends after it.
Result<Timestamp> parse_date_time(std::string_view text, std::size_t& pos) {
  std::string_view s = text;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!read_digits(s, pos, 4, y) || !expect(s, pos, '-') || !read_digits(s, pos, 2, mo) ||
      !expect(s, pos, '-') || !read_digits(s, pos, 2, d)) {
    return bad_time(text, "expected YYYY-MM-DD");
  }
  if (!valid_date(y, mo, d)) return bad_time(text, "no such date");
  if (pos >= s.size() || (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ')) {
    return bad_time(text, "expected 'T' and a time of day");
  }
  ++pos;
  if (!read_digits(s, pos, 2, h) || !expect(s, pos, ':') || !read_digits(s, pos, 2, mi) ||
      !expect(s, pos, ':') || !read_digits(s, pos, 2, sec)) {
    return bad_time(text, "expected HH:MM:SS");
  }
  if (h > 23 || mi > 59 || sec > 60) return bad_time(text, "time of day out of range");
  if (sec == 60) sec = 59;  // leap second: clamp, we have no use for it
  int millis = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::size_t digits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (digits < 3) millis = millis * 10 + (s[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return bad_time(text, "expected digits after '.'");
    for (std::size_t i = digits; i < 3; ++i) millis *= 10;
  }
  return make_timestamp(y, static_cast<unsigned>(mo), static_cast<unsigned>(d), h, mi, sec, millis);
}

}  // namespace

Result<Timestamp> parse_rfc3339(std::string_view text) {
  std::string_view s = text;
  std::size_t pos = 0;
  auto local = parse_date_time(text, pos);
  if (!local.ok()) return local;
  int offset_minutes = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int sign = s[pos] == '-' ? -1 : 1;
    ++pos;
    int oh = 0, om = 0;
    if (!read_digits(s, pos, 2, oh)) return bad_time(text, "bad zone offset");
    expect(s, pos, ':');  // "+0000" (no colon) is tolerated: published examples send it
    if (!read_digits(s, pos, 2, om) || oh > 23 || om > 59) return bad_time(text, "bad zone offset");
    offset_minutes = sign * (oh * 60 + om);
  } else {
    return bad_time(text, "missing time zone ('Z' or an offset)");
  }
  if (pos != s.size()) return bad_time(text, "unexpected characters after the time zone");
  return *local - std::chrono::minutes(offset_minutes);
}

Result<Timestamp> parse_naive_utc(std::string_view text) {
  std::size_t pos = 0;
  auto local = parse_date_time(text, pos);
  if (!local.ok()) return local;
  if (pos != text.size()) {
    return bad_time(text, "unexpected characters after the time (a zone-less time was expected)");
  }
  return local;
}

void append_timestamp(std::string& out, Timestamp t) {
  auto day_point = std::chrono::floor<days>(t);
  std::chrono::year_month_day ymd{day_point};
  auto ms = (t - day_point).count();
  auto two = [](char* p, unsigned v) {
    p[0] = static_cast<char>('0' + v / 10);
    p[1] = static_cast<char>('0' + v % 10);
  };
  // YYYY-MM-DDTHH:MM:SS.mmmZ, written by hand: this runs for every timestamp of every event.
  char buf[24];
  auto year = static_cast<unsigned>(static_cast<int>(ymd.year()));
  two(buf, year / 100 % 100);
  two(buf + 2, year % 100);
  buf[4] = '-';
  two(buf + 5, static_cast<unsigned>(ymd.month()));
  buf[7] = '-';
  two(buf + 8, static_cast<unsigned>(ymd.day()));
  buf[10] = 'T';
  two(buf + 11, static_cast<unsigned>(ms / 3'600'000));
  buf[13] = ':';
  two(buf + 14, static_cast<unsigned>(ms / 60'000 % 60));
  buf[16] = ':';
  two(buf + 17, static_cast<unsigned>(ms / 1000 % 60));
  buf[19] = '.';
  auto milli = static_cast<unsigned>(ms % 1000);
  buf[20] = static_cast<char>('0' + milli / 100);
  two(buf + 21, milli % 100);
  buf[23] = 'Z';
  out.append(buf, sizeof buf);
}

std::string format_timestamp(Timestamp t) {
  std::string out;
  out.reserve(24);
  append_timestamp(out, t);
  return out;
}

Result<Timestamp> parse_time_arg(std::string_view text, Timestamp now) {
  std::string_view s = trim(text);
  if (s == "now") return now;
  if (!s.empty() && s[0] >= '0' && s[0] <= '9' && s.find('-') == std::string_view::npos) {
    auto d = parse_duration(s);
    if (!d.ok()) return d.take_error();
    return now - *d;
  }
  if (s.size() == 10) {
    return parse_rfc3339(std::string(s) + "T00:00:00Z");
  }
  auto full = parse_rfc3339(s);
  if (full.ok()) return full;
  // Date and time without a zone: read as UTC.
  if (s.size() == 16) return parse_rfc3339(std::string(s) + ":00Z");
  if (s.size() >= 19 && s.find_first_of("Zz+", 19) == std::string_view::npos &&
      s.find('-', 19) == std::string_view::npos) {
    return parse_rfc3339(std::string(s) + "Z");
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "invalid time \"" + printable(text, 64) +
                        "\" (use RFC 3339, a date like 2026-11-01, \"now\", or an age like 7d)");
}

std::optional<Timestamp> parse_optional_timestamp(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  auto t = parse_rfc3339(*text);
  if (!t.ok()) return std::nullopt;
  return *t;
}

Timestamp SystemClock::now() const {
  return std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now());
}

}  // namespace tw

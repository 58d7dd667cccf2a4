#include "core/strings.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <utility>

namespace tw {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace

std::size_t utf8_sequence(std::string_view s, std::size_t pos, std::uint32_t& cp) {
  auto b0 = static_cast<unsigned char>(s[pos]);
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  std::size_t len = 0;
  std::uint32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    cp = b0 & 0x1Fu;
    min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    cp = b0 & 0x0Fu;
    min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    cp = b0 & 0x07u;
    min = 0x10000;
  } else {
    return 0;
  }
  if (pos + len > s.size()) return 0;
  for (std::size_t i = 1; i < len; ++i) {
    auto b = static_cast<unsigned char>(s[pos + i]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n\f\v";
  auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    auto p = s.find(sep, start);
    if (p == std::string_view::npos) {
      out.emplace_back(s.substr(start));
      return out;
    }
    out.emplace_back(s.substr(start, p - start));
    start = p + 1;
  }
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += sep;
    out += parts[i];
  }
  return out;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool glob_match(std::string_view pattern, std::string_view text) {
  // Iterative matcher with single-star backtracking: linear in practice, no recursion.
  std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool is_valid_utf8(std::string_view s) {
  std::uint32_t cp = 0;
  for (std::size_t i = 0; i < s.size();) {
    // ASCII fast path: eight bytes at a time while none has the high bit set.
    if (i + 8 <= s.size()) {
      std::uint64_t word = 0;
      std::memcpy(&word, s.data() + i, 8);
      if ((word & 0x8080808080808080ULL) == 0) {
        i += 8;
        continue;
      }
    }
    std::size_t n = utf8_sequence(s, i, cp);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void append_csv_field(std::string& out, std::string_view v, bool untrusted_text) {
  std::string fixed;
  if (untrusted_text && !is_valid_utf8(v)) {
    fixed = sanitize_utf8(v);
    v = fixed;
  }
  const bool guard =
      untrusted_text && !v.empty() &&
      (v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@' || v[0] == '\t' || v[0] == '\r');
  // (string_view::find_first_of calls memchr on the set for every byte: a plain loop is faster.)
  const bool quote = std::any_of(
      v.begin(), v.end(), [](char c) { return c == ',' || c == '"' || c == '\r' || c == '\n'; });
  if (quote) out += '"';
  if (guard) out += '\'';
  if (!quote) {
    out.append(v);
    return;
  }
  // Quotes doubled in one pass into room made once (JSON in a cell has many).
  const auto quotes = static_cast<std::size_t>(std::count(v.begin(), v.end(), '"'));
  std::size_t at = out.size();
  out.resize(at + v.size() + quotes + 1);
  for (char c : v) {
    out[at++] = c;
    if (c == '"') out[at++] = '"';
  }
  out[at] = '"';
}

std::string sanitize_utf8(std::string_view s) {
  if (is_valid_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  std::uint32_t cp = 0;
  for (std::size_t i = 0; i < s.size();) {
    std::size_t n = utf8_sequence(s, i, cp);
    if (n == 0) {
      out += kReplacement;
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string printable(std::string_view s, std::size_t max_bytes) {
  std::string out;
  out.reserve(s.size() < max_bytes ? s.size() : max_bytes + 3);
  std::uint32_t cp = 0;
  for (std::size_t i = 0; i < s.size();) {
    if (out.size() >= max_bytes) {
      out += "...";
      break;
    }
    std::size_t n = utf8_sequence(s, i, cp);
    if (n == 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    char buf[16];
    if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0x20 || cp == 0x7F) {
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(cp));
      out += buf;
    } else if ((cp >= 0x80 && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) ||
               (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029) {
      // C1 controls, bidirectional overrides and line separators: shown, not obeyed.
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp));
      out += buf;
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  return out;
}

std::string_view truncate_utf8(std::string_view s, std::size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  std::size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return s.substr(0, end);
}

namespace {

constexpr std::string_view kRedacted = "[redacted]";

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// `lowered` is already lower case.
bool equal_ci_at(std::string_view text, std::size_t pos, std::string_view lowered) {
  if (pos + lowered.size() > text.size()) return false;
  for (std::size_t i = 0; i < lowered.size(); ++i) {
    if (ascii_lower(text[pos + i]) != lowered[i]) return false;
  }
  return true;
}

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// RFC 9110 token68 characters (the credential of an auth scheme).
bool is_token68(char c) {
  return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' ||
         c == '=';
}

using Span = std::pair<std::size_t, std::size_t>;  // [begin, end)

// Calls add(begin, end) for every span redact() replaces; stops early when add returns false.
template <class Add>
void find_secret_spans(std::string_view text, const std::vector<std::string>& secrets,
                       Credentials which, Add add) {
  for (const auto& secret : secrets) {
    if (secret.empty() || secret.size() > text.size()) continue;
    const std::string lowered = to_lower(secret);
    const char first_lower = lowered[0];
    for (std::size_t pos = 0; pos + lowered.size() <= text.size(); ++pos) {
      if (ascii_lower(text[pos]) != first_lower || !equal_ci_at(text, pos, lowered)) continue;
      if (!add(pos, pos + lowered.size())) return;
    }
  }
  if (which != Credentials::kAlsoBearer) return;
  constexpr std::string_view kScheme = "bearer";
  for (std::size_t pos = 0; pos + kScheme.size() < text.size(); ++pos) {
    if (ascii_lower(text[pos]) != 'b' || !equal_ci_at(text, pos, kScheme)) continue;
    if (pos > 0 && is_alnum(text[pos - 1])) continue;
    std::size_t begin = pos + kScheme.size();
    if (text[begin] != ' ' && text[begin] != '\t') continue;
    while (begin < text.size() && (text[begin] == ' ' || text[begin] == '\t')) ++begin;
    std::size_t end = begin;
    while (end < text.size() && is_token68(text[end])) ++end;
    if (end > begin && !add(begin, end)) return;
  }
}

}  // namespace

bool needs_redaction(std::string_view text, const std::vector<std::string>& secrets,
                     Credentials which) {
  bool found = false;
  find_secret_spans(text, secrets, which, [&](std::size_t, std::size_t) {
    found = true;
    return false;
  });
  return found;
}

std::string redact(std::string_view text, const std::vector<std::string>& secrets,
                   Credentials which) {
  std::vector<Span> spans;
  find_secret_spans(text, secrets, which, [&](std::size_t b, std::size_t e) {
    spans.emplace_back(b, e);
    return true;
  });
  if (spans.empty()) return std::string(text);
  std::sort(spans.begin(), spans.end());
  std::string out;
  out.reserve(text.size());
  std::size_t copied = 0;
  for (std::size_t i = 0; i < spans.size();) {
    auto [begin, end] = spans[i];
    for (++i; i < spans.size() && spans[i].first <= end; ++i) end = std::max(end, spans[i].second);
    out.append(text.substr(copied, begin - copied));
    out.append(kRedacted);
    copied = end;
  }
  out.append(text.substr(copied));
  return out;
}

std::string redact(std::string text, std::string_view secret) {
  return redact(std::string_view(text), std::vector<std::string>{std::string(secret)});
}

bool is_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

}  // namespace tw

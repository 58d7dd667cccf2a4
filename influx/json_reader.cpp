#include "influx/json_reader.h"

#include <cstring>
#include <limits>

#include "core/strings.h"

namespace tw::influx {
namespace {

constexpr int kMaxDepth = 64;

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool hex4(std::string_view s, std::size_t pos, std::uint32_t& out) {
  if (pos + 4 > s.size()) return false;
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    char c = s[pos + i];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= static_cast<std::uint32_t>(c - '0');
    else if (c >= 'a' && c <= 'f')
      v |= static_cast<std::uint32_t>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      v |= static_cast<std::uint32_t>(c - 'A' + 10);
    else
      return false;
  }
  out = v;
  return true;
}

}  // namespace

void JsonReader::skip_ws() {
  while (pos_ < s_.size()) {
    char c = s_[pos_];
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') return;
    ++pos_;
  }
}

bool JsonReader::fail(const char* expected) {
  if (error_.empty()) {
    error_ = pos_ >= s_.size()
                 ? std::string("the document ends early (expected ") + expected + ")"
                 : std::string("expected ") + expected + " at byte " + std::to_string(pos_);
  }
  return false;
}

JsonReader::Kind JsonReader::peek() {
  skip_ws();
  if (pos_ >= s_.size()) return Kind::kNone;
  switch (s_[pos_]) {
    case '{':
      return Kind::kObject;
    case '[':
      return Kind::kArray;
    case '"':
      return Kind::kString;
    case 't':
    case 'f':
      return Kind::kBool;
    case 'n':
      return Kind::kNull;
    default: {
      char c = s_[pos_];
      return c == '-' || (c >= '0' && c <= '9') ? Kind::kNumber : Kind::kNone;
    }
  }
}

bool JsonReader::enter_array() {
  skip_ws();
  if (pos_ >= s_.size() || s_[pos_] != '[') return fail("'['");
  if (depth_ >= kMaxDepth) return fail("less nesting");
  ++pos_;
  first_[++depth_] = true;
  return true;
}

bool JsonReader::next_element() {
  if (!ok()) return false;
  skip_ws();
  if (pos_ >= s_.size()) return fail("',' or ']'");
  if (s_[pos_] == ']') {
    ++pos_;
    --depth_;
    return false;
  }
  if (!first_[depth_]) {
    if (s_[pos_] != ',') return fail("',' or ']'");
    ++pos_;
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ']') return fail("a value after ','");
  }
  first_[depth_] = false;
  return true;
}

bool JsonReader::enter_object() {
  skip_ws();
  if (pos_ >= s_.size() || s_[pos_] != '{') return fail("'{'");
  if (depth_ >= kMaxDepth) return fail("less nesting");
  ++pos_;
  first_[++depth_] = true;
  key_start_[depth_] = keys_.size();
  return true;
}

bool JsonReader::next_member(std::string& key) {
  if (!ok()) return false;
  skip_ws();
  if (pos_ >= s_.size()) return fail("',' or '}'");
  if (s_[pos_] == '}') {
    ++pos_;
    keys_.resize(key_start_[depth_]);
    --depth_;
    return false;
  }
  if (!first_[depth_]) {
    if (s_[pos_] != ',') return fail("',' or '}'");
    ++pos_;
    skip_ws();
  }
  first_[depth_] = false;
  if (pos_ >= s_.size() || s_[pos_] != '"') return fail("a member name");
  const std::size_t key_at = pos_;
  if (!read_string(key)) return false;
  for (std::size_t i = key_start_[depth_]; i < keys_.size(); ++i) {
    if (keys_[i] == key) {
      pos_ = key_at;
      error_ = "the key \"" + printable(key, 60) + "\" appears twice in one object at byte " +
               std::to_string(key_at);
      return false;
    }
  }
  keys_.push_back(key);
  skip_ws();
  if (pos_ >= s_.size() || s_[pos_] != ':') return fail("':'");
  ++pos_;
  return true;
}

bool JsonReader::read_string(std::string& out) {
  skip_ws();
  if (pos_ >= s_.size() || s_[pos_] != '"') return fail("a string");
  ++pos_;
  out.clear();
  const char* data = s_.data();
  const std::size_t n = s_.size();
  while (true) {
    // Copy the run of plain ASCII characters in one go.
    std::size_t start = pos_;
    while (pos_ < n) {
      auto c = static_cast<unsigned char>(data[pos_]);
      if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
      ++pos_;
    }
    out.append(data + start, pos_ - start);
    if (pos_ >= n) return fail("'\"' to end the string");
    auto c = static_cast<unsigned char>(data[pos_]);
    if (c == '"') {
      ++pos_;
      return true;
    }
    if (c < 0x20) return fail("no control character inside a string");
    if (c >= 0x80) {
      std::uint32_t cp = 0;
      std::size_t len = utf8_sequence(s_, pos_, cp);
      if (len == 0) {
        out += "\xEF\xBF\xBD";
        replaced_ = true;
        ++pos_;
      } else {
        out.append(data + pos_, len);
        pos_ += len;
      }
      continue;
    }
    // Escape.
    if (pos_ + 1 >= n) return fail("an escape sequence");
    char e = data[pos_ + 1];
    pos_ += 2;
    switch (e) {
      case '"':
        out += '"';
        break;
      case '\\':
        out += '\\';
        break;
      case '/':
        out += '/';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        std::uint32_t cp = 0;
        if (!hex4(s_, pos_, cp)) return fail("four hex digits after \\u");
        pos_ += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          std::uint32_t lo = 0;
          if (pos_ + 6 <= n && data[pos_] == '\\' && data[pos_ + 1] == 'u' &&
              hex4(s_, pos_ + 2, lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            pos_ += 6;
          } else {
            cp = 0xFFFD;
            replaced_ = true;
          }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          cp = 0xFFFD;
          replaced_ = true;
        }
        append_utf8(out, cp);
        break;
      }
      default:
        pos_ -= 1;
        return fail("a valid escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u)");
    }
  }
}

bool JsonReader::skip_number() {
  std::size_t p = pos_;
  if (p < s_.size() && s_[p] == '-') ++p;
  if (p >= s_.size()) {
    pos_ = p;
    return fail("a digit");
  }
  if (s_[p] == '0') {
    ++p;
  } else if (s_[p] >= '1' && s_[p] <= '9') {
    while (p < s_.size() && s_[p] >= '0' && s_[p] <= '9') ++p;
  } else {
    pos_ = p;
    return fail("a digit");
  }
  if (p < s_.size() && s_[p] == '.') {
    ++p;
    std::size_t d = p;
    while (p < s_.size() && s_[p] >= '0' && s_[p] <= '9') ++p;
    if (p == d) {
      pos_ = p;
      return fail("a digit after '.'");
    }
  }
  if (p < s_.size() && (s_[p] == 'e' || s_[p] == 'E')) {
    ++p;
    if (p < s_.size() && (s_[p] == '+' || s_[p] == '-')) ++p;
    std::size_t d = p;
    while (p < s_.size() && s_[p] >= '0' && s_[p] <= '9') ++p;
    if (p == d) {
      pos_ = p;
      return fail("a digit in the exponent");
    }
  }
  pos_ = p;
  return true;
}

bool JsonReader::read_integer(std::int64_t& out) {
  skip_ws();
  std::size_t start = pos_;
  if (!skip_number()) return false;
  std::string_view text = s_.substr(start, pos_ - start);
  // A valid number that is not a 64-bit integer is a shape problem, not malformed JSON: the
  // value is consumed, false returned, and ok() stays true.
  if (text.find_first_of(".eE") != std::string_view::npos) return false;
  bool neg = text[0] == '-';
  std::uint64_t v = 0;
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  for (std::size_t i = neg ? 1 : 0; i < text.size(); ++i) {
    auto d = static_cast<std::uint64_t>(text[i] - '0');
    if (v > (kMax + (neg ? 1 : 0) - d) / 10) return false;
    v = v * 10 + d;
  }
  out = neg ? static_cast<std::int64_t>(0 - v) : static_cast<std::int64_t>(v);
  return true;
}

bool JsonReader::skip_literal(std::string_view word) {
  if (s_.substr(pos_, word.size()) != word) return fail("a value");
  pos_ += word.size();
  return true;
}

bool JsonReader::read_null() {
  skip_ws();
  return skip_literal("null");
}

bool JsonReader::skip_container(int depth) {
  bool object = s_[pos_] == '{';
  if (object ? !enter_object() : !enter_array()) return false;
  std::string key;
  while (object ? next_member(key) : next_element()) {
    if (!skip_value_at(depth + 1)) return false;
  }
  return ok();
}

bool JsonReader::skip_value_at(int depth) {
  if (depth > kMaxDepth) return fail("less nesting");
  std::string scratch;
  switch (peek()) {
    case Kind::kObject:
    case Kind::kArray:
      return skip_container(depth);
    case Kind::kString:
      return read_string(scratch);
    case Kind::kNumber:
      return skip_number();
    case Kind::kBool:
      return s_[pos_] == 't' ? skip_literal("true") : skip_literal("false");
    case Kind::kNull:
      return skip_literal("null");
    case Kind::kNone:
      return fail("a value");
  }
  return fail("a value");
}

bool JsonReader::skip_value() { return skip_value_at(depth_); }

bool JsonReader::at_end() {
  skip_ws();
  return pos_ == s_.size();
}

}  // namespace tw::influx

#include "influx/codec.h"

#include <simdjson.h>

#include <charconv>
#include <cstdint>
#include <unordered_set>

#include "core/json_writer.h"
#include "core/strings.h"

namespace tw::influx {
namespace {

namespace od = simdjson::ondemand;

Error parse_error(std::string message) { return make_error(ErrorCode::kParse, std::move(message)); }

std::string where(std::size_t index, std::string_view field) {
  return "token #" + std::to_string(index) + " field \"" + std::string(field) + "\"";
}

std::string simd_message(simdjson::error_code e) { return simdjson::error_message(e); }

// Appends code point cp as UTF-8.
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

bool read_hex4(std::string_view s, std::size_t pos, std::uint32_t& out) {
  if (pos + 4 > s.size()) return false;
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    char c = s[pos + i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= static_cast<std::uint32_t>(c - '0');
    else if (c >= 'a' && c <= 'f') v |= static_cast<std::uint32_t>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= static_cast<std::uint32_t>(c - 'A' + 10);
    else return false;
  }
  out = v;
  return true;
}

// Unescapes a raw JSON string token (with quotes), replacing lone surrogates by U+FFFD.
// Used only when the strict unescaper refused a description.
bool tolerant_unescape(std::string_view raw, std::string& out) {
  auto open = raw.find('"');
  auto close = raw.rfind('"');
  if (open == std::string_view::npos || close <= open) return false;
  std::string_view s = raw.substr(open + 1, close - open - 1);
  out.clear();
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i >= s.size()) return false;
    switch (s[i]) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        std::uint32_t cp = 0;
        if (!read_hex4(s, i + 1, cp)) return false;
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          std::uint32_t lo = 0;
          if (i + 2 < s.size() && s[i + 1] == '\\' && s[i + 2] == 'u' && read_hex4(s, i + 3, lo) &&
              lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
          } else {
            cp = 0xFFFD;
          }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          cp = 0xFFFD;
        }
        append_utf8(out, cp);
        break;
      }
      default: return false;
    }
  }
  return true;
}

Result<std::int64_t> integer_of(od::value& v, std::string_view what) {
  auto type = v.type();
  if (type.error()) return parse_error(std::string(what) + ": " + simd_message(type.error()));
  if (type.value_unsafe() == od::json_type::number) {
    std::int64_t n = 0;
    if (auto e = v.get_int64().get(n); e) {
      return parse_error(std::string(what) + " is not an integer");
    }
    return n;
  }
  if (type.value_unsafe() == od::json_type::string) {  // proto3 JSON renders int64 as a string
    std::string_view s;
    if (auto e = v.get_string().get(s); e) return parse_error(std::string(what) + " is not a string");
    std::int64_t n = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || p != s.data() + s.size()) {
      return parse_error(std::string(what) + " is not an integer");
    }
    return n;
  }
  return parse_error(std::string(what) + " is not a number");
}

// A timestamp: RFC 3339 string, {"seconds","nanos"} object, or null.
Result<std::optional<Timestamp>> timestamp_of(od::value& v, const std::string& what) {
  auto type = v.type();
  if (type.error()) return parse_error(what + ": " + simd_message(type.error()));
  switch (type.value_unsafe()) {
    case od::json_type::null:
      return std::optional<Timestamp>{};
    case od::json_type::string: {
      std::string_view s;
      if (auto e = v.get_string().get(s); e) return parse_error(what + ": " + simd_message(e));
      if (s.empty()) return std::optional<Timestamp>{};
      auto t = parse_rfc3339(s);
      if (!t.ok()) return parse_error(what + ": " + t.error().message);
      return std::optional<Timestamp>{*t};
    }
    case od::json_type::object: {
      od::object obj;
      if (auto e = v.get_object().get(obj); e) return parse_error(what + ": " + simd_message(e));
      std::int64_t seconds = 0, nanos = 0;
      for (auto field : obj) {
        std::string_view key;
        if (auto e = field.unescaped_key().get(key); e) return parse_error(what + ": " + simd_message(e));
        od::value fv;
        if (auto e = field.value().get(fv); e) return parse_error(what + ": " + simd_message(e));
        if (key == "seconds") {
          auto n = integer_of(fv, what + ".seconds");
          if (!n.ok()) return n.take_error();
          seconds = *n;
        } else if (key == "nanos") {
          auto n = integer_of(fv, what + ".nanos");
          if (!n.ok()) return n.take_error();
          nanos = *n;
        }
      }
      // influxctl renders protobuf Timestamps; the zero value (1970-01-01, which its table output
      // shows for unset times) means "not set", not "expired in 1970".
      if (seconds == 0 && nanos == 0) return std::optional<Timestamp>{};
      // Protobuf Timestamp range: 0001-01-01 .. 9999-12-31.
      if (seconds < -62135596800 || seconds > 253402300799 || nanos < 0 || nanos > 999999999) {
        return parse_error(what + " is out of range");
      }
      return std::optional<Timestamp>{Timestamp(Duration(seconds * 1000 + nanos / 1'000'000))};
    }
    default:
      return parse_error(what + " is neither a timestamp string nor a {seconds, nanos} object");
  }
}

Result<std::vector<Permission>> permissions_of(od::value& v, const std::string& what) {
  std::vector<Permission> out;
  auto type = v.type();
  if (type.error()) return parse_error(what + ": " + simd_message(type.error()));
  if (type.value_unsafe() == od::json_type::null) return out;
  if (type.value_unsafe() == od::json_type::object) {
    // The Clustered docs show `"permissions": {}` for an empty list; accept only an empty object.
    od::object obj;
    if (auto e = v.get_object().get(obj); e) return parse_error(what + ": " + simd_message(e));
    for (auto field : obj) {
      (void)field;
      return parse_error(what + " is an object, expected an array");
    }
    return out;
  }
  od::array arr;
  if (auto e = v.get_array().get(arr); e) return parse_error(what + " is not an array");
  for (auto elem : arr) {
    od::object obj;
    if (auto e = elem.get_object().get(obj); e) return parse_error(what + " has an element that is not an object");
    Permission p;
    for (auto field : obj) {
      std::string_view key;
      if (auto e = field.unescaped_key().get(key); e) return parse_error(what + ": " + simd_message(e));
      od::value fv;
      if (auto e = field.value().get(fv); e) return parse_error(what + ": " + simd_message(e));
      if (key == "action" || key == "resource") {
        std::string_view s;
        if (auto e = fv.get_string().get(s); e) {
          return parse_error(what + "." + std::string(key) + " is not a string");
        }
        (key == "action" ? p.action : p.resource) = std::string(s);
      }
    }
    if (p.action.empty() || p.resource.empty()) {
      return parse_error(what + " has an element without \"action\" or \"resource\"");
    }
    out.push_back(std::move(p));
  }
  sort_permissions(out);
  return out;
}

Result<Token> token_of(od::object obj, std::size_t index) {
  Token t;
  bool has_id = false;
  for (auto field : obj) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key); e) {
      return parse_error("token #" + std::to_string(index) + ": " + simd_message(e));
    }
    od::value v;
    if (auto e = field.value().get(v); e) {
      return parse_error(where(index, key) + ": " + simd_message(e));
    }
    if (key == "id") {
      std::string_view s;
      if (auto e = v.get_string().get(s); e || s.empty()) {
        return parse_error(where(index, key) + " is not a non-empty string");
      }
      t.id = std::string(s);
      has_id = true;
    } else if (key == "description") {
      auto type = v.type();
      if (type.error()) return parse_error(where(index, key) + ": " + simd_message(type.error()));
      if (type.value_unsafe() == od::json_type::null) continue;
      std::string_view s;
      if (auto e = v.get_string().get(s); !e) {
        t.description = std::string(s);
      } else {
        std::string_view raw = v.raw_json_token();
        if (!tolerant_unescape(raw, t.description)) {
          return parse_error(where(index, key) + " is not a string");
        }
      }
    } else if (key == "permissions") {
      auto p = permissions_of(v, where(index, key));
      if (!p.ok()) return p.take_error();
      t.permissions = std::move(*p);
    } else if (key == "createdAt" || key == "created_at" || key == "expiresAt" ||
               key == "expires_at" || key == "revokedAt" || key == "revoked_at") {
      auto ts = timestamp_of(v, where(index, key));
      if (!ts.ok()) return ts.take_error();
      char c = key[0];
      (c == 'c' ? t.created_at : c == 'e' ? t.expires_at : t.revoked_at) = *ts;
    }
    // Unknown fields (accountId, clusterId, accessToken, …) are ignored.
  }
  if (!has_id) return parse_error("token #" + std::to_string(index) + " has no \"id\"");
  return t;
}

// True when nothing but whitespace follows the value just consumed.
bool at_end(od::document& doc) {
  const char* loc = nullptr;
  auto e = doc.current_location().get(loc);
  return e == simdjson::OUT_OF_BOUNDS;
}

// Ensures the buffer has simdjson's padding and valid UTF-8.
bool prepare(std::string& body) {
  bool replaced = false;
  if (!simdjson::validate_utf8(body.data(), body.size())) {
    body = sanitize_utf8(body);
    replaced = true;
  }
  body.reserve(body.size() + simdjson::SIMDJSON_PADDING);
  return replaced;
}

}  // namespace

Result<DecodedList> decode_token_list(std::string& body) {
  DecodedList out;
  out.replaced_invalid_utf8 = prepare(body);
  od::parser parser;
  simdjson::padded_string_view view(body.data(), body.size(), body.capacity());
  od::document doc;
  if (auto e = parser.iterate(view).get(doc); e) {
    return parse_error("response is not valid JSON (" + simd_message(e) + ")");
  }
  od::array arr;
  if (auto e = doc.get_array().get(arr); e) {
    return parse_error("response is not a JSON array of tokens (" + simd_message(e) + ")");
  }
  std::unordered_set<std::string_view> seen;
  std::size_t index = 0;
  for (auto elem : arr) {
    od::object obj;
    if (auto e = elem.get_object().get(obj); e) {
      return parse_error("token #" + std::to_string(index) + " is not a JSON object (" +
                         simd_message(e) + ")");
    }
    auto t = token_of(obj, index);
    if (!t.ok()) return t.take_error();
    out.tokens.push_back(std::move(*t));
    ++index;
  }
  if (!at_end(doc)) return parse_error("response has trailing data after the token array");
  seen.reserve(out.tokens.size());
  for (const auto& t : out.tokens) {
    if (!seen.insert(t.id).second) {
      return parse_error("token id \"" + printable(t.id, 80) + "\" appears twice in the list");
    }
  }
  return out;
}

Result<Token> decode_token(std::string body) {
  prepare(body);
  od::parser parser;
  simdjson::padded_string_view view(body.data(), body.size(), body.capacity());
  od::document doc;
  if (auto e = parser.iterate(view).get(doc); e) {
    return parse_error("response is not valid JSON (" + simd_message(e) + ")");
  }
  od::object obj;
  if (auto e = doc.get_object().get(obj); e) return parse_error("response is not a JSON object");
  auto t = token_of(obj, 0);
  if (!t.ok()) return t;
  if (!at_end(doc)) return parse_error("response has trailing data after the token");
  return t;
}

std::string encode_permissions_update(const std::vector<Permission>& permissions) {
  std::string out = "{\"permissions\":";
  append_permissions_json(out, permissions);
  out += '}';
  return out;
}

std::string decode_error_message(std::string_view body) {
  std::string copy(body);
  copy.reserve(copy.size() + simdjson::SIMDJSON_PADDING);
  if (!simdjson::validate_utf8(copy.data(), copy.size())) return {};
  od::parser parser;
  simdjson::padded_string_view view(copy.data(), copy.size(), copy.capacity());
  od::document doc;
  if (parser.iterate(view).get(doc)) return {};
  od::object obj;
  if (doc.get_object().get(obj)) return {};
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return {};
    if (key == "message") {
      std::string_view s;
      if (field.value().get_string().get(s)) return {};
      return std::string(s);
    }
  }
  return {};
}

}  // namespace tw::influx

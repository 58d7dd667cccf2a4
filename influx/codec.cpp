#include "influx/codec.h"

#include <unordered_set>

#include "core/json_writer.h"
#include "core/sha256.h"
#include "core/strings.h"
#include "core/time_anomaly.h"
#include "influx/json_reader.h"

namespace tw::influx {
namespace {

using Kind = JsonReader::Kind;

Error parse_error(std::string message) { return make_error(ErrorCode::kParse, std::move(message)); }

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kObject:
      return "an object";
    case Kind::kArray:
      return "an array";
    case Kind::kString:
      return "a string";
    case Kind::kNumber:
      return "a number";
    case Kind::kBool:
      return "a boolean";
    case Kind::kNull:
      return "null";
    case Kind::kNone:
      return "not a JSON value";
  }
  return "unknown";
}

// Names a field in error messages; the text is built only when an error is reported.
struct Where {
  std::size_t index;
  std::string_view field;
  std::string str() const {
    return "token #" + std::to_string(index) + " field \"" + std::string(field) + "\"";
  }
};

// The reader's own error (malformed JSON) wins over a shape error: it is the real cause.
Error fail(JsonReader& r, const std::string& shape_error) {
  if (!r.ok()) return parse_error("response is not valid JSON: " + r.error());
  return parse_error(shape_error);
}

Result<std::int64_t> integer_of(JsonReader& r, const Where& at, const char* suffix) {
  auto what = [&] { return at.str() + suffix; };
  std::int64_t n = 0;
  Kind k = r.peek();
  if (k == Kind::kNumber) {
    if (!r.read_integer(n)) return fail(r, what() + " is not an integer");
    return n;
  }
  if (k == Kind::kString) {  // proto3 JSON renders int64 as a string
    std::string s;
    if (!r.read_string(s)) return fail(r, what() + " is not a string");
    JsonReader inner(s);
    if (inner.peek() != Kind::kNumber || !inner.read_integer(n) || !inner.at_end()) {
      return parse_error(what() + " is not an integer");
    }
    return n;
  }
  return fail(r, what() + " is not a number");
}

// A timestamp: RFC 3339 string, {"seconds","nanos"} object, or null. A placeholder meaning
// "unset" (core/time_anomaly.h: 0001-01-01T00:00:00Z, 1970-01-01T00:00:00Z, "", {}, {"seconds":0})
// reads as nullopt, and `placeholder` receives it as sent (objects in a canonical form).
Result<std::optional<Timestamp>> timestamp_of(JsonReader& r, const Where& at,
                                              std::optional<std::string>& placeholder) {
  switch (r.peek()) {
    case Kind::kNull:
      if (!r.read_null()) return fail(r, at.str());
      return std::optional<Timestamp>{};
    case Kind::kString: {
      std::string s;
      if (!r.read_string(s)) return fail(r, at.str());
      if (s.empty()) {
        placeholder = "";
        return std::optional<Timestamp>{};
      }
      auto t = parse_rfc3339(s);
      if (!t.ok()) return parse_error(at.str() + ": " + t.error().message);
      if (is_placeholder_time(*t)) {
        placeholder = printable(s, 64);  // kept for the audit log: bounded (any fraction parses)
        return std::optional<Timestamp>{};
      }
      return std::optional<Timestamp>{*t};
    }
    case Kind::kObject: {
      if (!r.enter_object()) return fail(r, at.str());
      std::int64_t seconds = 0, nanos = 0;
      bool has_seconds = false, has_nanos = false;
      std::string key;
      while (r.next_member(key)) {
        if (key == "seconds") {
          auto n = integer_of(r, at, ".seconds");
          if (!n.ok()) return n.take_error();
          seconds = *n;
          has_seconds = true;
        } else if (key == "nanos") {
          auto n = integer_of(r, at, ".nanos");
          if (!n.ok()) return n.take_error();
          nanos = *n;
          has_nanos = true;
        } else if (!r.skip_value()) {
          return fail(r, at.str());
        }
      }
      if (!r.ok()) return fail(r, at.str());
      // Protobuf Timestamp range: 0001-01-01 .. 9999-12-31.
      if (seconds < -62135596800 || seconds > 253402300799 || nanos < 0 || nanos > 999999999) {
        return parse_error(at.str() + " is out of range");
      }
      // influxctl renders protobuf Timestamps; the zero value (1970-01-01, which its table output
      // shows for unset times) and Go's zero time (0001-01-01) mean "not set", not "expired then".
      if (nanos == 0 && (seconds == 0 || seconds == -62135596800)) {
        std::string raw = "{";
        if (has_seconds) raw += "\"seconds\":" + std::to_string(seconds);
        if (has_nanos) raw += std::string(has_seconds ? "," : "") + "\"nanos\":0";
        placeholder = raw + "}";
        return std::optional<Timestamp>{};
      }
      return std::optional<Timestamp>{Timestamp(Duration(seconds * 1000 + nanos / 1'000'000))};
    }
    default:
      return fail(r, at.str() + " is neither a timestamp string nor a {seconds, nanos} object");
  }
}

Result<std::vector<Permission>> permissions_of(JsonReader& r, const Where& at) {
  std::vector<Permission> out;
  Kind k = r.peek();
  if (k == Kind::kNull) {
    if (!r.read_null()) return fail(r, at.str());
    return out;
  }
  if (k == Kind::kObject) {
    // The Clustered docs show `"permissions": {}` for an empty list; accept only an empty object.
    std::string key;
    if (!r.enter_object()) return fail(r, at.str());
    if (r.next_member(key)) return parse_error(at.str() + " is an object, expected an array");
    if (!r.ok()) return fail(r, at.str());
    return out;
  }
  if (k != Kind::kArray || !r.enter_array()) return fail(r, at.str() + " is not an array");
  std::string key;
  while (r.next_element()) {
    if (r.peek() != Kind::kObject || !r.enter_object()) {
      return fail(r, at.str() + " has an element that is not an object");
    }
    Permission p;
    while (r.next_member(key)) {
      if (key == "action" || key == "resource") {
        if (r.peek() != Kind::kString) return fail(r, at.str() + "." + key + " is not a string");
        if (!r.read_string(key == "action" ? p.action : p.resource)) return fail(r, at.str());
      } else if (!r.skip_value()) {
        return fail(r, at.str());
      }
    }
    if (!r.ok()) return fail(r, at.str());
    if (p.action.empty() || p.resource.empty()) {
      return parse_error(at.str() + " has an element without \"action\" or \"resource\"");
    }
    out.push_back(std::move(p));
  }
  if (!r.ok()) return fail(r, at.str());
  sort_permissions(out);
  return out;
}

// Reads one token object; the reader is positioned at its '{'. A placeholder createdAt is added
// to `anomalies` (if given) as created_at_unset.
Result<Token> token_of(JsonReader& r, std::size_t index, std::vector<TimeAnomaly>* anomalies) {
  const std::string where = "token #" + std::to_string(index);
  if (r.peek() != Kind::kObject) {
    return fail(r, where + " is not a JSON object (it is " + kind_name(r.peek()) + ")");
  }
  r.enter_object();
  Token t;
  bool has_id = false;
  std::optional<std::string> created_placeholder;
  unsigned timestamps_seen = 0;
  std::string key;
  while (r.next_member(key)) {
    Where at{index, key};
    if (key == "id") {
      if (r.peek() != Kind::kString || !r.read_string(t.id) || t.id.empty()) {
        return fail(r, at.str() + " is not a non-empty string");
      }
      has_id = true;
    } else if (key == "description") {
      Kind k = r.peek();
      if (k == Kind::kNull) {
        if (!r.read_null()) return fail(r, at.str());
      } else if (k != Kind::kString || !r.read_string(t.description)) {
        return fail(r, at.str() + " is not a string");
      }
    } else if (key == "permissions") {
      auto p = permissions_of(r, at);
      if (!p.ok()) return p.take_error();
      t.permissions = std::move(*p);
    } else if (key == "createdAt" || key == "created_at" || key == "expiresAt" ||
               key == "expires_at" || key == "revokedAt" || key == "revoked_at") {
      char c = key[0];
      // createdAt and created_at are one field: both in one object is as ambiguous as a repeat.
      const unsigned bit = c == 'c' ? 1u : c == 'e' ? 2u : 4u;
      if ((timestamps_seen & bit) != 0) {
        return parse_error(at.str() + " repeats a timestamp already given under another name");
      }
      timestamps_seen |= bit;
      std::optional<std::string> placeholder;
      auto ts = timestamp_of(r, at, placeholder);
      if (!ts.ok()) return ts.take_error();
      (c == 'c' ? t.created_at : c == 'e' ? t.expires_at : t.revoked_at) = *ts;
      if (c == 'c') created_placeholder = std::move(placeholder);
    } else if (!r.skip_value()) {
      // Unknown fields (accountId, clusterId, accessToken, …) are ignored, but must be JSON.
      return fail(r, at.str());
    }
  }
  if (!r.ok()) return fail(r, where);
  if (!has_id) return parse_error(where + " has no \"id\"");
  if (created_placeholder && anomalies != nullptr) {
    anomalies->push_back(TimeAnomaly{t.id, kCreatedAtUnset, std::move(*created_placeholder)});
  }
  return t;
}

// Reads one management token object; the reader is positioned at its '{'.
Result<ManagementToken> management_token_of(JsonReader& r, std::size_t index) {
  const std::string where = "management token #" + std::to_string(index);
  if (r.peek() != Kind::kObject || !r.enter_object()) {
    return fail(r, where + " is not a JSON object");
  }
  ManagementToken m;
  std::string key;
  while (r.next_member(key)) {
    Where at{index, key};
    if (key == "id" || key == "token_prefix" || key == "description") {
      std::string& target = key == "id"             ? m.id
                            : key == "token_prefix" ? m.token_prefix
                                                    : m.description;
      if (r.peek() == Kind::kNull) {
        if (!r.read_null()) return fail(r, where);
      } else if (r.peek() != Kind::kString || !r.read_string(target)) {
        return fail(r, where + " field \"" + key + "\" is not a string");
      }
    } else if (key == "created_at" || key == "expires_at" || key == "revoked_at") {
      std::optional<std::string> placeholder;
      auto ts = timestamp_of(r, at, placeholder);
      if (!ts.ok()) return parse_error("management " + ts.error().message);
      (key[0] == 'c' ? m.created_at : key[0] == 'e' ? m.expires_at : m.revoked_at) = *ts;
    } else if (!r.skip_value()) {
      return fail(r, where);
    }
  }
  if (!r.ok()) return fail(r, where);
  if (m.id.empty()) return parse_error(where + " has no \"id\"");
  return m;
}

}  // namespace

Result<DecodedList> decode_token_list(std::string_view body, EmptyList empty) {
  DecodedList out;
  JsonReader r(body);
  Kind top = r.peek();
  if (top == Kind::kNull && empty == EmptyList::kNullOrArray) {
    if (!r.read_null() || !r.at_end()) return fail(r, "response has trailing data after null");
    return out;
  }
  if (top != Kind::kArray) {
    if (top == Kind::kNone)
      return fail(
          r, "response is not valid JSON: " +
                 std::string(r.at_end() ? "it is empty" : "it does not start with a JSON value"));
    return parse_error(std::string("response is not a JSON array of tokens (it is ") +
                       kind_name(top) + ")");
  }
  r.enter_array();
  out.tokens.reserve(body.size() / 200);  // a typical token takes 200-300 bytes of JSON
  std::size_t index = 0;
  while (r.next_element()) {
    auto t = token_of(r, index, &out.anomalies);
    if (!t.ok()) return t.take_error();
    out.tokens.push_back(std::move(*t));
    ++index;
  }
  if (!r.ok()) return fail(r, "response is not valid JSON");
  if (!r.at_end()) return parse_error("response has trailing data after the token array");
  std::unordered_set<std::string_view> seen;
  seen.reserve(out.tokens.size());
  for (const auto& t : out.tokens) {
    if (!seen.insert(t.id).second) {
      return parse_error("token id \"" + printable(t.id, 80) + "\" appears twice in the list");
    }
  }
  out.replaced_invalid_utf8 = r.replaced_invalid_utf8();
  return out;
}

std::string list_digest(std::string_view body) { return sha256_hex(body); }

Result<std::vector<ManagementToken>> decode_management_tokens(std::string_view body) {
  std::vector<ManagementToken> out;
  JsonReader r(body);
  Kind top = r.peek();
  if (top == Kind::kNull) {
    if (!r.read_null() || !r.at_end()) return fail(r, "response has trailing data after null");
    return out;
  }
  if (top != Kind::kArray || !r.enter_array()) {
    return fail(r, std::string("response is not a JSON array of management tokens (it is ") +
                       kind_name(top) + ")");
  }
  while (r.next_element()) {
    auto m = management_token_of(r, out.size());
    if (!m.ok()) return m.take_error();
    out.push_back(std::move(*m));
  }
  if (!r.ok()) return fail(r, "response is not valid JSON");
  if (!r.at_end()) return parse_error("response has trailing data after the array");
  return out;
}

Result<Token> decode_token(std::string body) {
  JsonReader r(body);
  if (r.peek() != Kind::kObject) return fail(r, "response is not a JSON object");
  auto t = token_of(r, 0, nullptr);
  if (!t.ok()) return t;
  if (!r.at_end()) return parse_error("response has trailing data after the token");
  return t;
}

std::string encode_permissions_update(const std::vector<Permission>& permissions) {
  std::string out = "{\"permissions\":";
  append_permissions_json(out, permissions);
  out += '}';
  return out;
}

std::string decode_error_message(std::string_view body) {
  if (!is_valid_utf8(body)) return {};
  JsonReader r(body);
  if (r.peek() != Kind::kObject || !r.enter_object()) return {};
  std::string key, message;
  bool found = false;
  while (r.next_member(key)) {
    if (key == "message" && r.peek() == Kind::kString) {
      if (!r.read_string(message)) return {};
      found = true;
    } else if (!r.skip_value()) {
      return {};
    }
  }
  if (!r.ok() || !r.at_end()) return found ? message : std::string();
  return message;
}

}  // namespace tw::influx

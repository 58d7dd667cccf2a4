#include "influx/influxdb3_codec.h"

#include <algorithm>
#include <optional>
#include <unordered_set>

#include "core/strings.h"
#include "core/time_anomaly.h"
#include "influx/json_reader.h"

namespace tw::influx {
namespace {

using Kind = JsonReader::Kind;

Error parse_error(std::string message) { return make_error(ErrorCode::kParse, std::move(message)); }

// The reader's own error (malformed JSON) wins over a shape error: it is the real cause.
Error fail(JsonReader& r, const std::string& shape_error) {
  if (!r.ok()) return parse_error("response is not valid JSON: " + r.error());
  return parse_error(shape_error);
}

bool is_word(std::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
}

// The comma-separated, trimmed, non-empty items of one field; nullopt if one is empty.
std::optional<std::vector<std::string>> items(std::string_view field) {
  std::vector<std::string> out;
  for (const auto& item : split(field, ',')) {
    std::string_view t = trim(item);
    if (t.empty()) return std::nullopt;
    out.emplace_back(t);
  }
  return out;
}

Error bad_permission(std::string_view part, std::string_view why) {
  return parse_error("permission \"" + printable(part, 80) + "\" " + std::string(why));
}

// One TYPE:NAMES:ACTIONS part, appended to `out`.
Status parse_part(std::string_view part, std::vector<Permission>& out) {
  auto fields = split(part, ':');
  if (fields.size() != 3) return bad_permission(part, "is not RESOURCE_TYPE:NAMES:ACTIONS");
  std::string type(trim(fields[0]));
  auto names = items(fields[1]);
  auto actions = items(fields[2]);
  if (!names || !actions) return bad_permission(part, "has an empty resource name or action");
  if (type == "*") {
    if (*names != std::vector<std::string>{"*"} || *actions != std::vector<std::string>{"*"}) {
      return bad_permission(part, "has the type \"*\", which only \"*:*:*\" may have");
    }
    for (std::string_view a : {kAdminAction, std::string_view("read"), std::string_view("write")}) {
      out.push_back({std::string(a), std::string(kAllDatabases)});
    }
    return ok_status();
  }
  if (!is_word(type))
    return bad_permission(part, "has a resource type that is not a lower-case word");
  if (names->size() > 1 && std::find(names->begin(), names->end(), "*") != names->end()) {
    return bad_permission(part, "mixes \"*\" with resource names");
  }
  const bool database = type == "db";
  for (const auto& action : *actions) {
    if (action != "*" && !is_word(action))
      return bad_permission(part, "has an action that is not a lower-case word");
  }
  for (const auto& name : *names) {
    std::string resource = database ? name : type + ":" + name;
    for (const auto& action : *actions) {
      if (action == "*" && database) {
        out.push_back({"read", resource});
        out.push_back({"write", resource});
      } else {
        out.push_back({action, resource});
      }
    }
  }
  return ok_status();
}

struct Row {
  Token token;
  std::string name;
  bool has_id = false;
  bool has_permissions = false;
  std::optional<std::string> created_placeholder;
};

// Names a column in error messages; the text is built only when an error is reported.
struct At {
  std::size_t index;
  std::string_view column;
  std::string str() const {
    return "row #" + std::to_string(index) + " column \"" + std::string(column) + "\"";
  }
};

// A zone-less time (as the server sends it) or, tolerated, an RFC 3339 one; null: unset.
Result<std::optional<Timestamp>> time_of(JsonReader& r, const At& at) {
  if (r.peek() == Kind::kNull) {
    if (!r.read_null()) return fail(r, at.str());
    return std::optional<Timestamp>{};
  }
  std::string s;
  if (r.peek() != Kind::kString || !r.read_string(s))
    return fail(r, at.str() + " is not a time string");
  auto t = parse_naive_utc(s);
  if (!t.ok()) {
    auto zoned = parse_rfc3339(s);
    if (!zoned.ok()) return parse_error(at.str() + ": " + t.error().message);
    t = std::move(zoned);
  }
  return std::optional<Timestamp>{*t};
}

Status read_token_id(JsonReader& r, const At& at, Row& row) {
  std::int64_t n = 0;
  if (r.peek() != Kind::kNumber) return fail(r, at.str() + " is not a number");
  if (!r.read_integer(n) || n < 0)
    return fail(r, at.str() + " is not a non-negative 64-bit integer");
  row.token.id = std::to_string(n);
  row.has_id = true;
  return ok_status();
}

Status read_string_column(JsonReader& r, const At& at, std::string& out, bool nullable) {
  if (nullable && r.peek() == Kind::kNull) {
    if (!r.read_null()) return fail(r, at.str());
    return ok_status();
  }
  if (r.peek() != Kind::kString || !r.read_string(out))
    return fail(r, at.str() + " is not a string");
  return ok_status();
}

Status read_time_column(JsonReader& r, const At& at, const std::string& key, Row& row) {
  auto t = time_of(r, at);
  if (!t.ok()) return t.take_error();
  if (key == "expiry") {
    row.token.expires_at = *t;  // taken as sent: this server has no "unset" placeholder
  } else if (*t && is_placeholder_time(**t)) {
    row.created_placeholder = format_timestamp(**t);
  } else {
    row.token.created_at = *t;
  }
  return ok_status();
}

Status read_column(JsonReader& r, std::size_t index, const std::string& key, Row& row,
                   std::string& description) {
  const At at{index, key};
  if (key == "token_id") return read_token_id(r, at, row);
  if (key == "name") {
    auto st = read_string_column(r, at, row.name, false);
    if (st.ok() && row.name.empty()) return parse_error(at.str() + " is empty");
    return st;
  }
  if (key == "description") return read_string_column(r, at, description, true);
  if (key == "created_at" || key == "expiry") return read_time_column(r, at, key, row);
  if (key == "permissions") {
    std::string text;
    if (auto st = read_string_column(r, at, text, false); !st.ok()) return st;
    auto perms = parse_influxdb3_permissions(text);
    if (!perms.ok()) return parse_error(at.str() + ": " + perms.error().message);
    row.token.permissions = std::move(*perms);
    row.has_permissions = true;
    return ok_status();
  }
  // hash, created_by_token_id, updated_at, updated_by_token_id and columns of later versions.
  if (!r.skip_value()) return fail(r, at.str());
  return ok_status();
}

// One row; the reader is positioned at its value.
Result<Row> row_of(JsonReader& r, std::size_t index) {
  auto at = [index] { return "row #" + std::to_string(index); };  // for errors only
  if (r.peek() != Kind::kObject || !r.enter_object())
    return fail(r, at() + " is not a JSON object");
  Row row;
  std::string description, key;
  while (r.next_member(key)) {
    if (auto st = read_column(r, index, key, row, description); !st.ok()) return st.take_error();
  }
  if (!r.ok()) return fail(r, at());
  if (!row.has_id) return parse_error(at() + " has no \"token_id\"");
  if (row.name.empty()) return parse_error(at() + " has no \"name\"");
  if (!row.has_permissions) return parse_error(at() + " has no \"permissions\"");
  row.token.description = description.empty() ? row.name : row.name + " (" + description + ")";
  return row;
}

Status check_unique(const Influxdb3Rows& rows) {
  std::unordered_set<std::string_view> ids, names;
  ids.reserve(rows.names.size());
  names.reserve(rows.names.size());
  for (std::size_t i = 0; i < rows.names.size(); ++i) {
    if (!ids.insert(rows.list.tokens[i].id).second) {
      return parse_error("token_id " + rows.list.tokens[i].id + " appears twice in the table");
    }
    if (!names.insert(rows.names[i]).second) {
      return parse_error("token name \"" + printable(rows.names[i], 80) +
                         "\" appears twice in the table");
    }
  }
  return ok_status();
}

}  // namespace

Result<std::vector<Permission>> parse_influxdb3_permissions(std::string_view text) {
  std::vector<Permission> out;
  if (trim(text).empty()) return out;
  for (const auto& part : split(text, ';')) {
    std::string_view p = trim(part);
    if (p.empty())
      return parse_error("the permissions \"" + printable(text, 80) + "\" have an empty part");
    if (auto st = parse_part(p, out); !st.ok()) return st.take_error();
  }
  sort_permissions(out);
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Result<Influxdb3Rows> decode_influxdb3_rows(std::string_view body) {
  JsonReader r(body);
  Kind top = r.peek();
  if (top != Kind::kArray || !r.enter_array()) {
    if (top == Kind::kNone) return fail(r, "response is not valid JSON: it is empty or not JSON");
    return fail(r, "response is not a JSON array of token rows");
  }
  Influxdb3Rows out;
  for (std::size_t index = 0; r.next_element(); ++index) {
    auto row = row_of(r, index);
    if (!row.ok()) return row.take_error();
    if (row->created_placeholder) {
      out.list.anomalies.push_back(
          TimeAnomaly{row->token.id, kCreatedAtUnset, *row->created_placeholder});
    }
    out.list.tokens.push_back(std::move(row->token));
    out.names.push_back(std::move(row->name));
  }
  if (!r.ok()) return fail(r, "response is not valid JSON");
  if (!r.at_end()) return parse_error("response has trailing data after the token rows");
  if (auto st = check_unique(out); !st.ok()) return st.take_error();
  out.list.replaced_invalid_utf8 = r.replaced_invalid_utf8();
  return out;
}

}  // namespace tw::influx

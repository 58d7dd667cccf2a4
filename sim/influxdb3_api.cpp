#include "sim/influxdb3_api.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <variant>

#include "core/json_writer.h"
#include "core/sha256.h"
#include "core/strings.h"

namespace tw::sim {
namespace {

using json = nlohmann::json;

constexpr std::string_view kOperatorToken = "_admin";
constexpr std::string_view kQueryPath = "/api/v3/query_sql";
constexpr std::string_view kTokenPath = "/api/v3/configure/token";
constexpr std::string_view kAdminPath = "/api/v3/configure/token/admin";
constexpr std::string_view kNamedAdminPath = "/api/v3/configure/token/named_admin";
constexpr std::string_view kResourceTokenPath = "/api/v3/enterprise/configure/token";

// --- responses -----------------------------------------------------------------------------

SimResponse body_response(int status, std::string body, std::string_view content_type) {
  SimResponse r;
  r.status = status;
  r.body = std::make_shared<const std::string>(std::move(body));
  r.headers.emplace_back("Content-Type", std::string(content_type));
  return r;
}

// {"error": …}: how InfluxDB 3 reports authentication and request errors.
SimResponse json_error(int status, std::string_view message) {
  std::string out;
  JsonWriter(out).begin_object().field("error", message).end_object();
  return body_response(status, std::move(out), "application/json");
}

// Catalog errors (no such token, the operator token) come as plain text.
SimResponse text_error(int status, std::string message) {
  return body_response(status, std::move(message), "text/plain; charset=utf-8");
}

SimResponse method_not_allowed(std::string_view allow) {
  SimResponse r = text_error(405, "method not allowed");
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

// --- request helpers -----------------------------------------------------------------------

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded: %XX and '+' for a space (an invalid escape stays as is).
std::string form_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
               hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The query parameters of a target (the first of a repeated name counts).
std::map<std::string, std::string> query_params(const std::string& target) {
  std::map<std::string, std::string> out;
  auto q = target.find('?');
  if (q == std::string::npos) return out;
  for (const auto& pair : split(std::string_view(target).substr(q + 1), '&')) {
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    std::string key = form_decode(std::string_view(pair).substr(0, eq));
    std::string value =
        eq == std::string::npos ? "" : form_decode(std::string_view(pair).substr(eq + 1));
    out.emplace(std::move(key), std::move(value));
  }
  return out;
}

// The query as the simulator understands it: the whole table, or one token_id. nullopt: any
// other SQL. (Case and runs of spaces do not matter; a trailing ';' is allowed.)
struct TableQuery {
  std::optional<std::string> token_id;
};
std::optional<TableQuery> parse_sql(std::string_view q) {
  std::string norm;
  for (char c : trim(q)) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!norm.empty() && norm.back() != ' ') norm += ' ';
    } else {
      norm += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  while (!norm.empty() && (norm.back() == ';' || norm.back() == ' ')) norm.pop_back();
  constexpr std::string_view kAll = "select * from system.tokens";
  if (norm == kAll) return TableQuery{};
  constexpr std::string_view kWhere = " where token_id = ";
  if (!starts_with(norm, std::string(kAll) + std::string(kWhere))) return std::nullopt;
  std::string id = norm.substr(kAll.size() + kWhere.size());
  if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return TableQuery{id};
}

// --- rows ----------------------------------------------------------------------------------

bool numeric(std::string_view id) {
  return !id.empty() && id.size() <= 19 &&
         id.find_first_not_of("0123456789") == std::string_view::npos;
}

void append_row(JsonWriter& w, const Token& t, bool with_hash) {
  w.begin_object().key("token_id");
  numeric(t.id) ? w.raw(t.id) : w.value(t.id);  // a seeded non-numeric id: as a broken server
  w.field("name", t.description);
  if (with_hash) w.field("hash", sha256_hex(t.id + "\n" + t.description).substr(0, 9));
  if (t.created_at) w.field("created_at", influxdb3_time(*t.created_at));
  if (t.expires_at) w.field("expiry", influxdb3_time(*t.expires_at));
  w.field("permissions", influxdb3_permission_string(t.permissions));
  w.end_object();
}

// "TYPE:NAMES:ACTIONS" parts for one resource type: resources with the same actions grouped,
// "*" in a part of its own (the server refuses "*" mixed with names).
void append_parts(std::vector<std::string>& parts, const std::string& type,
                  const std::map<std::string, std::set<std::string>>& actions_by_name) {
  std::map<std::pair<bool, std::set<std::string>>, std::vector<std::string>> names_by_actions;
  for (const auto& [name, actions] : actions_by_name) {
    names_by_actions[{name != "*", actions}].push_back(name);
  }
  for (const auto& [key, names] : names_by_actions) {
    const auto& actions = key.second;
    parts.push_back(type + ":" + join(names, ",") + ":" +
                    join(std::vector<std::string>(actions.begin(), actions.end()), ","));
  }
}

// --- handlers ------------------------------------------------------------------------------

SimResponse query(const SimRequest& request, TokenStore& store, const SimOptions& options) {
  if (request.method != "GET") return method_not_allowed("GET");
  auto params = query_params(request.target);
  auto db = params.find("db");
  if (db == params.end() || db->second.empty())
    return json_error(400, "missing query parameter db");
  if (db->second != "_internal") return json_error(404, "database not found: " + db->second);
  auto format = params.find("format");
  if (format != params.end() && format->second != "json") {
    return json_error(400, "the simulator serves format=json only");
  }
  auto q = params.find("q");
  auto sql = q == params.end() ? std::nullopt : parse_sql(q->second);
  if (!sql) {
    return json_error(
        400, "the simulator answers only SELECT * FROM system.tokens [WHERE token_id = N]");
  }
  std::vector<Token> rows;
  for (auto& t : store.list(false)) {
    if (!sql->token_id || t.id == *sql->token_id) rows.push_back(std::move(t));
  }
  return body_response(200, influxdb3_rows_json(rows, !options.without_auth), "application/json");
}

SimResponse delete_token(const SimRequest& request, TokenStore& store) {
  if (request.method != "DELETE") return method_not_allowed("DELETE");
  auto params = query_params(request.target);
  auto name = params.find("token_name");
  if (name == params.end() || name->second.empty()) {
    return json_error(400, "missing query parameter token_name");
  }
  if (name->second == kOperatorToken) return text_error(405, "cannot delete operator token");
  if (!store.remove_named(name->second)) {
    return text_error(404, "the requested resource was not found: " + name->second);
  }
  SimResponse r;  // 200, empty body
  return r;
}

// The 201 answer to a token creation (Core's CreateTokenWithPermissionsResponse).
SimResponse created(const CreatedToken& c, bool with_hash) {
  std::string out;
  JsonWriter w(out);
  w.begin_object().key("id").raw(c.token.id).field("name", c.token.description);
  w.field("token", c.access_token);
  if (with_hash) w.field("hash", sha256_hex(c.token.id + "\n" + c.token.description).substr(0, 9));
  w.field("created_at", c.token.created_at).field("expiry", c.token.expires_at).end_object();
  return body_response(201, std::move(out), "application/json");
}

// {"token_name": s, "expiry_secs": n|null, …}: the name and the expiry.
struct CreateRequest {
  std::string name;
  std::optional<Timestamp> expires_at;
  json body;
};
std::variant<CreateRequest, SimResponse> create_request(const SimRequest& request,
                                                        const TokenStore& store) {
  json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded() || !body.is_object())
    return json_error(400, "request body must be a JSON object");
  auto name = body.find("token_name");
  if (name == body.end() || !name->is_string() || name->get_ref<const std::string&>().empty()) {
    return json_error(400, "token_name must be a non-empty string");
  }
  CreateRequest out{name->get<std::string>(), std::nullopt, body};
  if (auto e = body.find("expiry_secs"); e != body.end() && !e->is_null()) {
    if (!e->is_number_unsigned())
      return json_error(400, "expiry_secs must be a non-negative integer");
    out.expires_at = store.now() + std::chrono::seconds(e->get<std::int64_t>());
  }
  return out;
}

// Enterprise permissions [{resource_type, resource_names, actions}] in the store's form.
std::optional<std::vector<Permission>> resource_permissions(const json& list) {
  if (!list.is_array() || list.empty()) return std::nullopt;
  std::vector<Permission> out;
  for (const auto& p : list) {
    if (!p.is_object() || !p.value("resource_type", json()).is_string()) return std::nullopt;
    std::string type = p["resource_type"].get<std::string>();
    const json names = p.value("resource_names", json());
    const json actions = p.value("actions", json());
    if ((type != "db" && type != "system") || !names.is_array() || !actions.is_array() ||
        names.empty() || actions.empty()) {
      return std::nullopt;
    }
    for (const auto& n : names) {
      for (const auto& a : actions) {
        if (!n.is_string() || !a.is_string()) return std::nullopt;
        std::string resource =
            type == "db" ? n.get<std::string>() : type + ":" + n.get<std::string>();
        if (a == "*" && type == "db") {
          out.push_back({"read", resource});
          out.push_back({"write", resource});
        } else {
          out.push_back({a.get<std::string>(), resource});
        }
      }
    }
  }
  return out;
}

const std::vector<Permission>& admin_permissions() {
  static const std::vector<Permission> kAdmin{{"admin", "*"}, {"read", "*"}, {"write", "*"}};
  return kAdmin;
}

SimResponse create_token(const SimRequest& request, const std::string& path, TokenStore& store,
                         const SimOptions& options) {
  if (request.method != "POST") return method_not_allowed("POST");
  CreateRequest req;
  if (path == kAdminPath) {
    req.name = std::string(kOperatorToken);
  } else {
    auto parsed = create_request(request, store);
    if (auto* r = std::get_if<SimResponse>(&parsed)) return *r;
    req = std::move(std::get<CreateRequest>(parsed));
  }
  std::vector<Permission> perms = admin_permissions();
  if (path == kResourceTokenPath) {
    auto p = resource_permissions(req.body.value("permissions", json()));
    if (!p) {
      return json_error(400,
                        "permissions must be a non-empty array of {resource_type: db|system, "
                        "resource_names: [...], actions: [...]}");
    }
    perms = std::move(*p);
  }
  auto made = store.create_named(req.name, std::move(perms), req.expires_at);
  if (!made.ok()) return text_error(made.error().http_status, made.error().message);
  return created(*made, !options.without_auth);
}

}  // namespace

std::string influxdb3_time(Timestamp t) {
  std::string s = format_timestamp(t);  // YYYY-MM-DDTHH:MM:SS.mmmZ
  s.pop_back();
  if (s.ends_with(".000")) s.resize(s.size() - 4);
  return s;
}

std::string influxdb3_permission_string(const std::vector<Permission>& permissions) {
  std::map<std::string, std::map<std::string, std::set<std::string>>>
      by_type;  // type -> name -> actions
  for (const auto& p : permissions) {
    if (p.action == "admin") return "*:*:*";
    auto colon = p.resource.find(':');
    std::string type = colon == std::string::npos ? "db" : p.resource.substr(0, colon);
    std::string name = colon == std::string::npos ? p.resource : p.resource.substr(colon + 1);
    by_type[type][name].insert(p.action);
  }
  std::vector<std::string> parts;
  for (const auto& [type, names] : by_type) append_parts(parts, type, names);
  return join(parts, ";");
}

std::string influxdb3_rows_json(const std::vector<Token>& tokens, bool with_hash) {
  std::string out;
  out.reserve(tokens.size() * 180 + 2);
  JsonWriter w(out);
  w.begin_array();
  for (const auto& t : tokens) append_row(w, t, with_hash);
  w.end_array();
  return out;
}

SimResponse influxdb3_management(const SimRequest& request, const std::string& path,
                                 AuthResult auth, TokenStore& store, const SimOptions& options) {
  if (auth != AuthResult::kOk) return json_error(401, "the request was not authenticated");
  if (path == kQueryPath) return query(request, store, options);
  if (path == kTokenPath) return delete_token(request, store);
  if (path == kAdminPath || path == kNamedAdminPath || path == kResourceTokenPath) {
    return create_token(request, path, store, options);
  }
  return text_error(404, "not found");
}

SimResponse influxdb3_acknowledge_without_effect(const SimRequest& request, const std::string& path,
                                                 AuthResult auth, TokenStore& store,
                                                 const SimOptions& options) {
  std::optional<Token> before;
  if (path == kTokenPath && request.method == "DELETE") {
    auto params = query_params(request.target);
    if (auto name = params.find("token_name"); name != params.end())
      before = store.find_named(name->second);
  }
  SimResponse resp = influxdb3_management(request, path, auth, store, options);
  if (before) store.put(*before);
  return resp;
}

}  // namespace tw::sim

#include "core/token.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/json_writer.h"

namespace tw {

std::string_view to_string(TokenStatus s) {
  switch (s) {
    case TokenStatus::kActive:
      return "active";
    case TokenStatus::kExpired:
      return "expired";
    case TokenStatus::kRevoked:
      return "revoked";
    case TokenStatus::kRemoved:
      return "removed";
  }
  return "unknown";
}

std::optional<TokenStatus> parse_token_status(std::string_view s) {
  if (s == "active") return TokenStatus::kActive;
  if (s == "expired") return TokenStatus::kExpired;
  if (s == "revoked") return TokenStatus::kRevoked;
  if (s == "removed") return TokenStatus::kRemoved;
  return std::nullopt;
}

TokenStatus status_at(const Token& token, Timestamp now) {
  if (token.revoked_at) return TokenStatus::kRevoked;
  if (token.expires_at && *token.expires_at <= now) return TokenStatus::kExpired;
  return TokenStatus::kActive;
}

void sort_permissions(std::vector<Permission>& permissions) {
  std::sort(permissions.begin(), permissions.end());
}

bool same_permissions(std::vector<Permission> a, std::vector<Permission> b) {
  sort_permissions(a);
  sort_permissions(b);
  return a == b;
}

void append_permissions_json(std::string& out, const std::vector<Permission>& permissions) {
  out += '[';
  bool first = true;
  for (const auto& p : permissions) {
    if (!first) out += ',';
    first = false;
    out += "{\"action\":";
    append_json_string(out, p.action);
    out += ",\"resource\":";
    append_json_string(out, p.resource);
    out += '}';
  }
  out += ']';
}

std::string permissions_json(const std::vector<Permission>& permissions) {
  std::string out;
  append_permissions_json(out, permissions);
  return out;
}

Result<std::vector<Permission>> parse_permissions_json(std::string_view json) {
  std::vector<Permission> out;
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_array()) {
    return make_error(ErrorCode::kParse, "permissions are not a JSON array");
  }
  for (const auto& p : j) {
    if (!p.is_object() || !p.contains("action") || !p.contains("resource") ||
        !p["action"].is_string() || !p["resource"].is_string()) {
      return make_error(ErrorCode::kParse,
                        "permissions have an element without action or resource");
    }
    out.push_back({p["action"].get<std::string>(), p["resource"].get<std::string>()});
  }
  return out;
}

void append_token_state_json(std::string& out, const Token& token) {
  JsonWriter w(out);
  w.begin_object();
  w.field("description", token.description);
  w.key("permissions");
  std::string perms;
  append_permissions_json(perms, token.permissions);
  w.raw(perms);
  w.field("created_at", token.created_at);
  w.field("expires_at", token.expires_at);
  w.field("revoked_at", token.revoked_at);
  w.end_object();
}

}  // namespace tw

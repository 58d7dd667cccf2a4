#pragma once
// The database token as tokenwarden sees it, whatever the source (REST or influxctl).
//
// Token holds what the cluster reports; TokenStatus is derived from it and a point in time.
// Permissions are kept sorted (action, resource) so that a source listing them in another
// order does not look like a change.
//
// Thread safety: plain value types.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/time.h"

namespace tw {

inline constexpr std::string_view kAllDatabases = "*";

// Whether a permission's resource is a database (or "*"). InfluxDB 3 Enterprise also grants on
// other resources, which its sources write TYPE:NAME ("system:health", "token:*"); database
// names cannot contain ':', so no database is mistaken for one. Database-grant policies
// (forbidden_grant, all_databases_grant, max_databases) judge database resources only.
inline bool is_database_resource(std::string_view resource) {
  return resource.find(':') == std::string_view::npos;
}

struct Permission {
  std::string action;    // "read" or "write" (the API allows any string)
  std::string resource;  // a database name, or "*" for all databases
  auto operator<=>(const Permission&) const = default;
};

enum class TokenStatus { kActive, kExpired, kRevoked, kRemoved };

std::string_view to_string(TokenStatus s);
std::optional<TokenStatus> parse_token_status(std::string_view s);

struct Token {
  std::string id;
  std::string description;
  std::vector<Permission> permissions;  // sorted; may be empty
  std::optional<Timestamp> created_at;
  std::optional<Timestamp> expires_at;  // nullopt: never expires
  std::optional<Timestamp> revoked_at;  // nullopt: not revoked
  bool operator==(const Token&) const = default;
};

// revoked if revoked_at is set; else expired if expires_at <= now; else active.
TokenStatus status_at(const Token& token, Timestamp now);

void sort_permissions(std::vector<Permission>& permissions);
// The same grants, in any order.
bool same_permissions(std::vector<Permission> a, std::vector<Permission> b);

// Canonical JSON renderings used in the audit log and the inventory (stable key order,
// timestamps as format_timestamp, absent values as null).
void append_permissions_json(std::string& out, const std::vector<Permission>& permissions);
std::string permissions_json(const std::vector<Permission>& permissions);
// Reads what append_permissions_json wrote (kParse on anything else).
Result<std::vector<Permission>> parse_permissions_json(std::string_view json);
// {"description":…,"permissions":[…],"created_at":…,"expires_at":…,"revoked_at":…}
void append_token_state_json(std::string& out, const Token& token);

}  // namespace tw

#pragma once
// JSON renderings of the management API (reference §2.3): DatabaseToken objects and errors.
//
// Token objects: {"accountId","clusterId" (Dedicated only),"id","description","permissions",
// "createdAt","expiresAt","revokedAt","accessToken" (create only)}; timestamps in the
// "2023-12-21T17:32:28.000Z" form; unset timestamps omitted. Errors: {"code":N,"message":"…"}.
//
// Thread safety: pure functions.

#include <string>
#include <string_view>

#include "core/token.h"

namespace tw::sim {

void append_api_token(std::string& out, const Token& token, std::string_view account_id,
                      std::string_view cluster_id, const std::string* access_token = nullptr);

// The spec's example message for a status: "bad request", "unauthorized", "forbidden",
// "not found", "conflict", "internal server error", else the lower-case reason phrase.
std::string default_error_message(int status);
std::string error_body(int status, std::string_view message);
std::string error_body(int status);

}  // namespace tw::sim

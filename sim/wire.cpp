#include "sim/wire.h"

#include <boost/beast/http/status.hpp>

#include "core/json_writer.h"
#include "core/strings.h"

namespace tw::sim {
namespace {

void append_timestamp_field(std::string& out, std::string_view key, Timestamp t) {
  out += ",\"";
  out += key;
  out += "\":\"";
  append_timestamp(out, t);
  out += '"';
}

}  // namespace

// Written by hand (not through JsonWriter's generic bookkeeping) because list bodies of 100k
// tokens are built from these; keys are constants that need no escaping.
void append_api_token(std::string& out, const Token& token, std::string_view account_id,
                      std::string_view cluster_id, const std::string* access_token) {
  out += '{';
  if (!account_id.empty()) {
    out += "\"accountId\":";
    append_json_string(out, account_id);
    out += ",\"clusterId\":";
    append_json_string(out, cluster_id);
    out += ',';
  }
  out += "\"id\":";
  append_json_string(out, token.id);
  out += ",\"description\":";
  append_json_string(out, token.description);
  out += ",\"permissions\":";
  append_permissions_json(out, token.permissions);
  if (token.created_at) append_timestamp_field(out, "createdAt", *token.created_at);
  if (token.expires_at) append_timestamp_field(out, "expiresAt", *token.expires_at);
  if (token.revoked_at) append_timestamp_field(out, "revokedAt", *token.revoked_at);
  if (access_token != nullptr) {
    out += ",\"accessToken\":";
    append_json_string(out, *access_token);
  }
  out += '}';
}

std::string default_error_message(int status) {
  switch (status) {
    case 400:
      return "bad request";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not found";
    case 405:
      return "method not allowed";
    case 409:
      return "conflict";
    case 413:
      return "request body too large";
    case 500:
      return "internal server error";
    default:
      break;
  }
  auto reason =
      boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status));
  if (reason.empty() || reason == "<unknown-status>") return "error " + std::to_string(status);
  return to_lower(std::string_view(reason.data(), reason.size()));
}

std::string error_body(int status, std::string_view message) {
  std::string out;
  JsonWriter w(out);
  w.begin_object().field("code", status).field("message", message).end_object();
  return out;
}

std::string error_body(int status) { return error_body(status, default_error_message(status)); }

}  // namespace tw::sim

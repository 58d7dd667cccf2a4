// REST Management API client for Clustered (`{url}/tokens`) and Dedicated
// (`{url}/accounts/{account}/clusters/{cluster}/tokens`).
#include "influx/rest_source.h"

#include "core/strings.h"
#include "influx/bearer_call.h"
#include "influx/codec.h"
#include "influx/redaction.h"

namespace tw::influx {
namespace {

bool safe_path_segment(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return id != "." && id != "..";
}

}  // namespace

Result<std::string> RestClusterClient::token_path(const char* verb,
                                                  const std::string& token_id) const {
  if (!safe_path_segment(token_id)) {
    return make_error(ErrorCode::kInvalidArgument,
                      std::string("refusing to ") + verb + " token \"" + printable(token_id, 80) +
                          "\": the id contains characters that cannot appear in a URL path");
  }
  return collection_ + "/" + token_id;
}

RestClusterClient::RestClusterClient(SourceConfig config, Url url,
                                     std::string credentials_directory)
    : config_(std::move(config)),
      url_(std::move(url)),
      credentials_directory_(std::move(credentials_directory)) {
  collection_ =
      config_.type == SourceType::kDedicated
          ? "/accounts/" + config_.account_id + "/clusters/" + config_.cluster_id + "/tokens"
          : "/tokens";
}

std::string RestClusterClient::describe() const { return url_.to_string() + collection_; }

Result<HttpResponse> RestClusterClient::call(const std::string& method, const std::string& target,
                                             std::string body, const CallContext& ctx,
                                             std::string& secret) {
  HttpRequest req;
  req.method = method;
  req.target = target;
  req.body = std::move(body);
  return bearer_call(config_, url_, credentials_directory_, std::move(req), ctx, secret);
}

Error RestClusterClient::status_error(const std::string& method, const std::string& target,
                                      const HttpResponse& resp, const std::string& secret) const {
  // Redacted before it is cut, so no part of a token survives at the cut.
  Error e =
      http_status_error(method + " " + url_.to_string() + target, resp,
                        redact(decode_error_message(resp.body), std::vector<std::string>{secret}));
  if (resp.status == 401)
    e.message += "; check the management token in \"" + config_.token_file + "\"";
  if (resp.status == 403) e.message += "; the management token lacks permission for tokens";
  return e;
}

Error RestClusterClient::collection_not_found(Error e) const {
  if (config_.type == SourceType::kDedicated) {
    e.message += "; check account_id and cluster_id, and that url ends in /api/v0";
  } else {
    // The REST token API came with Clustered 20250508-1719206 (docs/sources.md).
    e.message += "; the REST token API needs InfluxDB Clustered " +
                 std::string(kMinClusteredRelease) +
                 " or later (and a url ending in /api/v0): on an older cluster use "
                 "type = \"influxctl\"";
  }
  return e;
}

Result<TokenList> RestClusterClient::list_tokens(const CallContext& ctx) {
  std::string secret;
  auto resp = call("GET", collection_, {}, ctx, secret);
  if (!resp.ok()) return resp.take_error();
  if (resp->status == 404)
    return collection_not_found(status_error("GET", collection_, *resp, secret));
  if (resp->status != 200) return status_error("GET", collection_, *resp, secret);
  if (resp->next_page) {
    // No paging is documented for this API; a server that pages would make this list partial.
    return make_error(
        ErrorCode::kParse,
        "GET " + describe() +
            " answered one page of a paged token list (a Link header names a "
            "\"next\" page), which is not followed; a partial list is never recorded");
  }
  TokenList list;
  list.digest = list_digest(resp->body);
  if (!ctx.known_digest.empty() && ctx.known_digest == list.digest) {
    list.unchanged = true;
    return list;
  }
  // Whatever the server said reaches an error message or a token field only with the management
  // token (any letter case) removed.
  auto decoded = decode_token_list_redacted(resp->body, {secret});
  if (!decoded.ok()) {
    return make_error(
        ErrorCode::kParse,
        "GET " + describe() + " returned an unreadable token list: " + decoded.error().message);
  }
  list.tokens = std::move(decoded->tokens);
  list.replaced_invalid_utf8 = decoded->replaced_invalid_utf8;
  list.anomalies = std::move(decoded->anomalies);
  return list;
}

Result<std::optional<Token>> RestClusterClient::get_token(const std::string& token_id,
                                                          const CallContext& ctx) {
  auto path = token_path("read", token_id);
  if (!path.ok()) return path.take_error();
  const std::string& target = *path;
  std::string secret;
  auto resp = call("GET", target, {}, ctx, secret);
  if (!resp.ok()) return resp.take_error();
  if (resp->status == 404) return std::optional<Token>();
  if (resp->status != 200) return status_error("GET", target, *resp, secret);
  auto token = decode_token_redacted(std::move(resp->body), {secret});
  if (!token.ok()) {
    return make_error(ErrorCode::kParse,
                      "GET " + url_.to_string() + target +
                          " returned an unreadable token: " + token.error().message);
  }
  if (token->id != token_id) {
    return make_error(ErrorCode::kParse, "GET " + url_.to_string() + target + " returned token \"" +
                                             printable(token->id, 80) +
                                             "\" instead of the one asked for");
  }
  return std::optional<Token>(std::move(*token));
}

Result<RevokeOutcome> RestClusterClient::revoke(const std::string& token_id,
                                                const CallContext& ctx) {
  auto path = token_path("revoke", token_id);
  if (!path.ok()) return path.take_error();
  const std::string& target = *path;
  std::string secret;
  auto resp = call("DELETE", target, {}, ctx, secret);
  if (!resp.ok()) return resp.take_error();
  if (resp->status == 204 || resp->status == 200) return RevokeOutcome::kRevoked;
  if (resp->status == 404) return RevokeOutcome::kAlreadyGone;
  return status_error("DELETE", target, *resp, secret);
}

Status RestClusterClient::restrict(const std::string& token_id,
                                   const std::vector<Permission>& permissions,
                                   const CallContext& ctx) {
  auto path = token_path("restrict", token_id);
  if (!path.ok()) return path.take_error();
  const std::string& target = *path;
  std::string secret;
  auto resp = call("PATCH", target, encode_permissions_update(permissions), ctx, secret);
  if (!resp.ok()) return resp.take_error();
  if (resp->status != 200) return status_error("PATCH", target, *resp, secret);
  auto token = decode_token_redacted(std::move(resp->body), {secret});
  if (!token.ok()) {
    return make_error(ErrorCode::kParse,
                      "PATCH " + url_.to_string() + target +
                          " returned an unreadable token: " + token.error().message);
  }
  auto wanted = permissions;
  sort_permissions(wanted);
  if (token->permissions != wanted) {
    const std::vector<std::string> secrets{secret};
    return make_error(
        ErrorCode::kHttpStatus,
        "PATCH " + url_.to_string() + target + " answered 200 but the token now has " +
            printable(redact(permissions_json(token->permissions), secrets), 300) + " instead of " +
            printable(redact(permissions_json(wanted), secrets), 300));
  }
  return ok_status();
}

}  // namespace tw::influx

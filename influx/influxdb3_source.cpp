// InfluxDB 3 Core/Enterprise: tokens listed from `_internal`'s system.tokens, deleted by name.
#include "influx/influxdb3_source.h"

#include "core/strings.h"
#include "influx/bearer_call.h"
#include "influx/codec.h"
#include "influx/influxdb3_codec.h"
#include "influx/json_reader.h"
#include "influx/redaction.h"

namespace tw::influx {
namespace {

constexpr std::string_view kListQuery = "SELECT * FROM system.tokens";

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

// A token id as the table gives it: a decimal number without sign or leading zeros. Anything
// else could not have come from the table, and never reaches a query.
bool canonical_id(std::string_view id) {
  if (id.empty() || id.size() > 20 || (id.size() > 1 && id[0] == '0')) return false;
  return id.find_first_not_of("0123456789") == std::string_view::npos;
}

// What an error body says: InfluxDB 3 answers {"error": …} or plain text.
std::string error_detail(std::string_view body) {
  if (!is_valid_utf8(body)) return {};
  JsonReader r(body);
  if (r.peek() == JsonReader::Kind::kObject && r.enter_object()) {
    std::string key, text;
    while (r.next_member(key)) {
      if ((key == "error" || key == "message") && r.peek() == JsonReader::Kind::kString) {
        if (r.read_string(text)) return text;
        return {};
      }
      if (!r.skip_value()) return {};
    }
    return {};
  }
  return std::string(trim(body));
}

}  // namespace

std::string influxdb3_query_target(std::string_view sql) {
  return "/api/v3/query_sql?db=_internal&q=" + percent_encode(sql) + "&format=json";
}

std::string influxdb3_delete_target(std::string_view name) {
  return "/api/v3/configure/token?token_name=" + percent_encode(name);
}

Influxdb3ClusterClient::Influxdb3ClusterClient(SourceConfig config, Url url,
                                               std::string credentials_directory)
    : config_(std::move(config)),
      url_(std::move(url)),
      credentials_directory_(std::move(credentials_directory)) {}

std::string Influxdb3ClusterClient::describe() const {
  return url_.to_string() + "/api/v3/query_sql (" + std::string(kListQuery) + ")";
}

Result<HttpResponse> Influxdb3ClusterClient::call(const std::string& method,
                                                  const std::string& target, const CallContext& ctx,
                                                  std::string& secret) {
  HttpRequest req;
  req.method = method;
  req.target = target;
  return bearer_call(config_, url_, credentials_directory_, std::move(req), ctx, secret);
}

Error Influxdb3ClusterClient::status_error(const std::string& what, const HttpResponse& resp,
                                           const std::string& secret) const {
  const std::vector<std::string> secrets{secret};
  Error e = http_status_error(what, resp, redact(error_detail(resp.body), secrets));
  if (resp.status == 401) e.message += "; check the admin token in \"" + config_.token_file + "\"";
  if (resp.status == 403)
    e.message += "; the token cannot read _internal (an admin token is needed)";
  if (resp.status == 405 && what.starts_with("DELETE")) {
    e.message += "; the operator token (_admin) cannot be deleted: exempt it (docs/sources.md)";
  }
  // The name of a token (in `what`) is the server's text too.
  e.message = redact(e.message, secrets);
  return e;
}

Result<TokenList> Influxdb3ClusterClient::list_tokens(const CallContext& ctx) {
  std::string secret;
  auto resp = call("GET", influxdb3_query_target(kListQuery), ctx, secret);
  if (!resp.ok()) return resp.take_error();
  if (resp->status != 200) return status_error("GET " + describe(), *resp, secret);
  TokenList list;
  list.digest = list_digest(resp->body);
  if (!ctx.known_digest.empty() && ctx.known_digest == list.digest) {
    list.unchanged = true;
    return list;
  }
  auto rows = decode_influxdb3_rows_redacted(resp->body, {secret});
  if (!rows.ok()) {
    return make_error(
        ErrorCode::kParse,
        "GET " + describe() + " returned an unreadable token table: " + rows.error().message);
  }
  list.tokens = std::move(rows->list.tokens);
  list.replaced_invalid_utf8 = rows->list.replaced_invalid_utf8;
  list.anomalies = std::move(rows->list.anomalies);
  return list;
}

Result<std::optional<Influxdb3ClusterClient::Row>> Influxdb3ClusterClient::find(
    const std::string& token_id, const char* verb, const CallContext& ctx) {
  if (!canonical_id(token_id)) {
    return make_error(ErrorCode::kInvalidArgument,
                      std::string("refusing to ") + verb + " token \"" + printable(token_id, 80) +
                          "\": an influxdb3 token id is a decimal number");
  }
  const std::string sql = std::string(kListQuery) + " WHERE token_id = " + token_id;
  const std::string what = "GET " + url_.to_string() + "/api/v3/query_sql (" + sql + ")";
  std::string secret;
  auto resp = call("GET", influxdb3_query_target(sql), ctx, secret);
  if (!resp.ok()) return resp.take_error();
  if (resp->status != 200) return status_error(what, *resp, secret);
  auto rows = decode_influxdb3_rows_redacted(resp->body, {secret});
  if (!rows.ok()) {
    return make_error(ErrorCode::kParse,
                      what + " returned an unreadable token table: " + rows.error().message);
  }
  auto& tokens = rows->list.tokens;
  if (tokens.empty()) return std::optional<Row>();
  if (tokens.size() > 1 || tokens[0].id != token_id) {
    return make_error(ErrorCode::kParse, what + " returned " + std::to_string(tokens.size()) +
                                             " rows, not the one token asked for");
  }
  return std::optional<Row>(Row{std::move(tokens[0]), std::move(rows->names[0])});
}

Result<std::optional<Token>> Influxdb3ClusterClient::get_token(const std::string& token_id,
                                                               const CallContext& ctx) {
  auto row = find(token_id, "read", ctx);
  if (!row.ok()) return row.take_error();
  if (!row->has_value()) return std::optional<Token>();
  return std::optional<Token>(std::move((*row)->token));
}

Result<RevokeOutcome> Influxdb3ClusterClient::revoke(const std::string& token_id,
                                                     const CallContext& ctx) {
  auto row = find(token_id, "delete", ctx);
  if (!row.ok()) return row.take_error();
  if (!row->has_value()) return RevokeOutcome::kAlreadyGone;  // nothing to delete: no request
  const std::string target = influxdb3_delete_target((*row)->name);
  std::string secret;
  auto resp = call("DELETE", target, ctx, secret);
  if (!resp.ok()) return resp.take_error();
  if (resp->status == 200 || resp->status == 204) return RevokeOutcome::kRevoked;
  if (resp->status == 404) return RevokeOutcome::kAlreadyGone;
  return status_error("DELETE " + url_.to_string() + target, *resp, secret);
}

Status Influxdb3ClusterClient::restrict(const std::string& token_id, const std::vector<Permission>&,
                                        const CallContext&) {
  return make_error(ErrorCode::kUnsupported,
                    "cannot restrict token \"" + printable(token_id, 80) + "\" of cluster \"" +
                        config_.cluster +
                        "\": InfluxDB 3 Core/Enterprise cannot change a token's permissions, only "
                        "delete the token");
}

}  // namespace tw::influx

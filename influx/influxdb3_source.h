#pragma once
// The InfluxDB 3 Core/Enterprise source (type `influxdb3`, docs/sources.md).
//
// These servers have no token-list endpoint and no revoked state. The list is the SQL system
// table: `GET {url}/api/v3/query_sql?db=_internal&q=SELECT * FROM system.tokens&format=json`
// (influx/influxdb3_codec.h); one token is the same query `WHERE token_id = N`. Revoking deletes:
// the token's name is read first (tokens are deleted by name), then
// `DELETE {url}/api/v3/configure/token?token_name=NAME` (200, or 404 when no such name). There is
// no update, so restrict() always fails (kUnsupported); check-config refuses a `restrict` policy
// in scope of such a cluster. Every call re-reads the admin token from `token_file`, sends
// `Authorization: Bearer …` and `Accept: application/json`, and has the cluster's timeout as its
// deadline. Token ids that are not decimal numbers are refused before any request.
//
// Thread safety: one call at a time. Errors: see token_source.h; the admin token never appears.

#include <optional>
#include <string>

#include "influx/http_client.h"
#include "influx/source_config.h"

namespace tw::influx {

class Influxdb3ClusterClient final : public ClusterClient {
 public:
  Influxdb3ClusterClient(SourceConfig config, Url url, std::string credentials_directory);

  Result<TokenList> list_tokens(const CallContext& ctx) override;
  Result<std::optional<Token>> get_token(const std::string& token_id,
                                         const CallContext& ctx) override;
  Result<RevokeOutcome> revoke(const std::string& token_id, const CallContext& ctx) override;
  Status restrict(const std::string& token_id, const std::vector<Permission>& permissions,
                  const CallContext& ctx) override;
  std::string describe() const override;
  bool revoke_deletes() const override { return true; }

 private:
  struct Row {
    Token token;
    std::string name;
  };
  // The row of one token (nullopt: the table has none with that id).
  Result<std::optional<Row>> find(const std::string& token_id, const char* verb,
                                  const CallContext& ctx);
  Result<HttpResponse> call(const std::string& method, const std::string& target,
                            const CallContext& ctx, std::string& secret);
  Error status_error(const std::string& what, const HttpResponse& resp,
                     const std::string& secret) const;

  SourceConfig config_;
  Url url_;
  std::string credentials_directory_;
};

// The request target of a query on `_internal` (query string percent-encoded).
std::string influxdb3_query_target(std::string_view sql);
// The request target that deletes the token named `name`.
std::string influxdb3_delete_target(std::string_view name);

}  // namespace tw::influx

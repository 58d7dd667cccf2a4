#pragma once
// The REST Management API source (types `clustered` and `dedicated`), SPEC §1.
//
// Every call re-reads the management token file, sends `Authorization: Bearer …` and
// `Accept: application/json`, and has the cluster's timeout as its deadline. DELETE answering
// 404 counts as already revoked. A PATCH is checked: the returned permissions must be the ones
// sent. Token ids that could not be a URL path segment are refused before any request.
//
// Thread safety: one call at a time. Errors: see token_source.h.

#include <string>

#include "influx/http_client.h"
#include "influx/source_config.h"

namespace tw::influx {

// The first Clustered release with the REST Management API for tokens ("Expose the v0 REST API
// for the management and authorization service", release notes 2025-05-08).
inline constexpr const char* kMinClusteredRelease = "20250508-1719206";

class RestClusterClient final : public ClusterClient {
 public:
  RestClusterClient(SourceConfig config, Url url, std::string credentials_directory);

  Result<TokenList> list_tokens(const CallContext& ctx) override;
  Result<std::optional<Token>> get_token(const std::string& token_id,
                                         const CallContext& ctx) override;
  Result<RevokeOutcome> revoke(const std::string& token_id, const CallContext& ctx) override;
  Status restrict(const std::string& token_id, const std::vector<Permission>& permissions,
                  const CallContext& ctx) override;
  std::string describe() const override;

 private:
  // collection_/ID, or an error naming `verb` if the id cannot be a URL path segment.
  Result<std::string> token_path(const char* verb, const std::string& token_id) const;
  Result<HttpResponse> call(const std::string& method, const std::string& target, std::string body,
                            const CallContext& ctx, std::string& secret);
  // A 404 on the token collection, explained (too old a cluster, wrong url or ids).
  Error collection_not_found(Error e) const;
  Error status_error(const std::string& method, const std::string& target, const HttpResponse& resp,
                     const std::string& secret) const;

  SourceConfig config_;
  Url url_;
  std::string credentials_directory_;
  std::string collection_;
};

}  // namespace tw::influx

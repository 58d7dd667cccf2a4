#pragma once
// The `influxctl` source (SPEC §1): runs `influxctl --config F [--profile P] token …`.
//
// list: `token list --format json --include-revoked`; get: `token get --include-revoked --format
// json ID` (a failure whose stderr says "not found" means the token does not exist); revoke: `token
// revoke --force ID` (if it fails, the token list decides: a token already revoked or gone counts
// as done); restrict: `token update --read-database … --write-database … ID`, which can express
// only read and write grants on at least one database — anything else fails clearly instead of
// doing something else. influxctl reads its credentials from its own config file; stderr
// (truncated) goes into errors.
//
// Thread safety: one call at a time. Errors: see token_source.h.

#include "influx/source_config.h"

namespace tw::influx {

// influxctl's `--timeout` value for a run with this deadline, e.g. "54s" for 60 s.
std::string influxctl_timeout_flag(Duration deadline);

class InfluxctlClusterClient final : public ClusterClient {
 public:
  explicit InfluxctlClusterClient(SourceConfig config);

  Result<TokenList> list_tokens(const CallContext& ctx) override;
  Result<std::optional<Token>> get_token(const std::string& token_id,
                                         const CallContext& ctx) override;
  Result<RevokeOutcome> revoke(const std::string& token_id, const CallContext& ctx) override;
  Status restrict(const std::string& token_id, const std::vector<Permission>& permissions,
                  const CallContext& ctx) override;
  std::string describe() const override;
  // `management list --format json`, matched to the profile's mgmt_token by its token_prefix.
  Result<std::optional<OwnCredential>> own_credential(const CallContext& ctx) override;

 private:
  std::vector<std::string> command(std::initializer_list<std::string> args) const;
  // The process's stdout; on a non-zero exit an error, and its whole stderr (redacted) in
  // *failure_stderr if given.
  Result<std::string> run(std::vector<std::string> argv, const CallContext& ctx,
                          std::string* failure_stderr = nullptr) const;

  SourceConfig config_;
};

}  // namespace tw::influx

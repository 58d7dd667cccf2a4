#include "influx/influxctl_source.h"

#include <algorithm>

#include "core/strings.h"
#include "influx/codec.h"
#include "influx/redaction.h"
#include "influx/subprocess.h"

namespace tw::influx {
namespace {

// An id influxctl would not take for a flag.
Status check_token_id(const char* verb, const std::string& token_id) {
  if (token_id.empty() || token_id.front() == '-') {
    return make_error(ErrorCode::kInvalidArgument, std::string("refusing to ") + verb +
                                                       " token \"" + printable(token_id, 80) +
                                                       "\": not a token id");
  }
  return ok_status();
}

}  // namespace

std::string influxctl_timeout_flag(Duration deadline) {
  // A tenth of the deadline (at least 1 s, at most half of it) is left for influxctl to report
  // its own timeout and exit before tokenwarden kills it.
  const std::int64_t ms = deadline.count();
  const std::int64_t margin = std::max(ms / 10, std::min<std::int64_t>(1000, ms / 2));
  const std::int64_t flag = std::max<std::int64_t>(ms - margin, 1);
  // Go's time.ParseDuration (urfave/cli DurationFlag) reads both forms.
  return flag % 1000 == 0 ? std::to_string(flag / 1000) + "s" : std::to_string(flag) + "ms";
}

InfluxctlClusterClient::InfluxctlClusterClient(SourceConfig config) : config_(std::move(config)) {}

std::string InfluxctlClusterClient::describe() const {
  std::string s = config_.influxctl_path + " --config " + config_.influxctl_config;
  if (!config_.profile.empty()) s += " --profile " + config_.profile;
  return s;
}

std::vector<std::string> InfluxctlClusterClient::command(
    std::initializer_list<std::string> args) const {
  std::vector<std::string> argv{config_.influxctl_path, "--config", config_.influxctl_config};
  if (!config_.profile.empty()) {
    argv.emplace_back("--profile");
    argv.push_back(config_.profile);
  }
  argv.emplace_back("--timeout");
  argv.push_back(influxctl_timeout_flag(config_.timeout));
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

Result<std::string> InfluxctlClusterClient::run(std::vector<std::string> argv,
                                                const CallContext& ctx,
                                                std::string* failure_stderr) const {
  ProcessOptions opts;
  opts.timeout = config_.timeout;
  opts.max_stdout_bytes = config_.max_response_bytes;
  opts.cancel = ctx.cancel;
  auto res = run_process(argv, opts);
  if (!res.ok()) return res.take_error();
  if (res->signal != 0) {
    return make_error(ErrorCode::kIo,
                      describe() + " was killed by signal " + std::to_string(res->signal));
  }
  if (res->exit_code != 0) {
    // Redacted whole, before summarize_stderr cuts it: no part of a secret survives at the cut.
    std::string redacted_err = redact(res->err, influxctl_config_secrets(config_.influxctl_config));
    std::string why = summarize_stderr(redacted_err);
    if (failure_stderr != nullptr) *failure_stderr = std::move(redacted_err);
    return make_error(ErrorCode::kIo, describe() + " exited with status " +
                                          std::to_string(res->exit_code) +
                                          (why.empty() ? std::string() : ": " + why));
  }
  return std::move(res->out);
}

Result<TokenList> InfluxctlClusterClient::list_tokens(const CallContext& ctx) {
  auto out = run(command({"token", "list", "--format", "json", "--include-revoked"}), ctx);
  if (!out.ok()) return out.take_error();
  TokenList list;
  list.digest = list_digest(*out);
  if (!ctx.known_digest.empty() && ctx.known_digest == list.digest) {
    list.unchanged = true;
    return list;
  }
  // A Go CLI prints an empty (nil) slice as `null`.
  auto decoded = decode_token_list_redacted(
      *out, influxctl_config_secrets(config_.influxctl_config), EmptyList::kNullOrArray);
  if (!decoded.ok()) {
    return make_error(ErrorCode::kParse, describe() + " token list printed an unreadable list: " +
                                             decoded.error().message);
  }
  list.tokens = std::move(decoded->tokens);
  list.replaced_invalid_utf8 = decoded->replaced_invalid_utf8;
  list.anomalies = std::move(decoded->anomalies);
  return list;
}

Result<std::optional<Token>> InfluxctlClusterClient::get_token(const std::string& token_id,
                                                               const CallContext& ctx) {
  TW_RETURN_IF_ERROR(check_token_id("read", token_id));
  std::string err;
  auto out =
      run(command({"token", "get", "--include-revoked", "--format", "json", token_id}), ctx, &err);
  if (!out.ok()) {
    // influxctl documents no exit codes: only its own words tell a missing token from a failure,
    // and only words about this token ("token <id> not found"), not about a profile or a URL.
    const std::string said = to_lower(err);
    if (said.find("not found") != std::string::npos &&
        said.find(to_lower(token_id)) != std::string::npos &&
        said.find("profile") == std::string::npos) {
      return std::optional<Token>();
    }
    return out.take_error();
  }
  auto token =
      decode_token_redacted(std::move(*out), influxctl_config_secrets(config_.influxctl_config));
  if (!token.ok()) {
    return make_error(ErrorCode::kParse, describe() + " token get printed an unreadable token: " +
                                             token.error().message);
  }
  if (token->id != token_id) {
    return make_error(ErrorCode::kParse, describe() + " token get printed token \"" +
                                             printable(token->id, 80) +
                                             "\" instead of the one asked for");
  }
  return std::optional<Token>(std::move(*token));
}

Result<RevokeOutcome> InfluxctlClusterClient::revoke(const std::string& token_id,
                                                     const CallContext& ctx) {
  TW_RETURN_IF_ERROR(check_token_id("revoke", token_id));
  auto out = run(command({"token", "revoke", "--force", token_id}), ctx);
  if (out.ok()) return RevokeOutcome::kRevoked;
  // influxctl's exit codes do not say why it failed; the cluster's list does.
  CallContext fresh{ctx.cancel, {}};
  auto list = list_tokens(fresh);
  if (!list.ok()) return out.take_error();
  for (const auto& t : list->tokens) {
    if (t.id == token_id) {
      if (t.revoked_at) return RevokeOutcome::kAlreadyGone;
      return out.take_error();
    }
  }
  return RevokeOutcome::kAlreadyGone;
}

Status InfluxctlClusterClient::restrict(const std::string& token_id,
                                        const std::vector<Permission>& permissions,
                                        const CallContext& ctx) {
  TW_RETURN_IF_ERROR(check_token_id("restrict", token_id));
  if (permissions.empty()) {
    return make_error(ErrorCode::kUnsupported,
                      "influxctl token update cannot remove every permission of token " + token_id +
                          "; revoke it instead or restrict it through the REST API");
  }
  std::vector<std::string> argv = command({"token", "update"});
  for (const auto& p : permissions) {
    if (p.action != "read" && p.action != "write") {
      return make_error(ErrorCode::kUnsupported, "influxctl token update cannot grant action \"" +
                                                     printable(p.action, 40) + "\"");
    }
    if (!p.resource.empty() && p.resource.front() == '-') {
      return make_error(ErrorCode::kUnsupported, "influxctl token update cannot name database \"" +
                                                     printable(p.resource, 80) + "\"");
    }
    argv.push_back(p.action == "read" ? "--read-database" : "--write-database");
    argv.push_back(p.resource);
  }
  argv.push_back(token_id);
  auto out = run(std::move(argv), ctx);
  if (!out.ok()) return out.take_error();
  return ok_status();
}

}  // namespace tw::influx

namespace tw::influx {

Result<std::optional<OwnCredential>> InfluxctlClusterClient::own_credential(
    const CallContext& ctx) {
  const std::string secret =
      influxctl_profile_mgmt_token(config_.influxctl_config, config_.profile);
  if (secret.empty()) return std::optional<OwnCredential>();  // OAuth or a token file: no telling
  auto out = run(command({"management", "list", "--format", "json"}), ctx);
  if (!out.ok()) return out.take_error();
  auto tokens = decode_management_tokens(redact(*out, {secret}));
  if (!tokens.ok()) {
    return make_error(
        ErrorCode::kParse,
        describe() + " management list printed an unreadable list: " + tokens.error().message);
  }
  // The secret begins with the listed prefix. Of several matches (a prefix is short), a live one
  // wins over a revoked one, and among live ones the earliest expiry: the cautious answer.
  std::optional<OwnCredential> best;
  for (const auto& m : *tokens) {
    if (m.token_prefix.size() < 5 || !secret.starts_with(m.token_prefix)) continue;
    OwnCredential c{m.id, m.description, m.expires_at, m.revoked_at};
    auto rank = [](const OwnCredential& x) {
      return std::pair{x.revoked_at.has_value(), x.expires_at.value_or(Timestamp::max())};
    };
    if (!best || rank(c) < rank(*best)) best = std::move(c);
  }
  if (best) best->description = redact(best->description, {secret});
  return best;
}

}  // namespace tw::influx

#include "influx/bearer_call.h"

#include "core/strings.h"
#include "influx/management_token.h"
#include "influx/redaction.h"

namespace tw::influx {

Result<HttpResponse> bearer_call(const SourceConfig& config, const Url& url,
                                 const std::string& credentials_directory, HttpRequest request,
                                 const CallContext& ctx, std::string& secret) {
  auto token = read_management_token(config.token_file, credentials_directory);
  if (!token.ok()) return token.take_error();
  secret = std::move(*token);
  request.headers.emplace_back("Authorization", "Bearer " + secret);
  request.headers.emplace_back("Accept", "application/json");
  HttpOptions opts;
  opts.ca_file = config.ca_file;
  opts.timeout = config.timeout;
  opts.max_body_bytes = config.max_response_bytes;
  opts.cancel = ctx.cancel;
  auto resp = http_request(url, request, opts);
  if (!resp.ok()) return redacted(resp.take_error(), {secret});
  return resp;
}

Error http_status_error(const std::string& what, const HttpResponse& resp,
                        const std::string& detail) {
  std::string msg = what;
  if (!resp.redirected_to.empty())
    msg += " (redirected to " + printable(resp.redirected_to, 200) + ")";
  msg += " answered " + std::to_string(resp.status);
  auto reason = http_reason(resp.status);
  if (!reason.empty() && reason != "<unknown-status>") msg += " " + std::string(reason);
  if (!detail.empty()) msg += " (" + printable(detail, 200) + ")";
  Error e = make_error(ErrorCode::kHttpStatus, std::move(msg), resp.status);
  // RFC 6585 / RFC 9110: how long to wait before asking again. Honoured for these two only.
  if ((resp.status == 429 || resp.status == 503) && resp.retry_after) {
    const auto secs = std::chrono::ceil<std::chrono::seconds>(*resp.retry_after);
    e.message += "; the server asks to retry after " + std::to_string(secs.count()) + "s";
    e.retry_after = secs;
  }
  return e;
}

}  // namespace tw::influx

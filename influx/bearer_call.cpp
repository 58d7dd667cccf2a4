#include "influx/bearer_call.h"

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

}  // namespace tw::influx

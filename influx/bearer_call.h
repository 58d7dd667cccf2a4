#pragma once
// One authenticated request of an HTTP token source (REST Management API, influxdb3): reads the
// token file afresh (so an agent can rotate it), sends `Authorization: Bearer …` and
// `Accept: application/json` with the source's CA, deadline and size limit, and removes the
// token from any error.
//
// Thread safety: reentrant. Errors: those of read_management_token and http_request, redacted.

#include <string>

#include "influx/http_client.h"
#include "influx/source_config.h"

namespace tw::influx {

// `secret` receives the token read (for redacting what the server answered).
Result<HttpResponse> bearer_call(const SourceConfig& config, const Url& url,
                                 const std::string& credentials_directory, HttpRequest request,
                                 const CallContext& ctx, std::string& secret);

// "WHAT (redirected to URL) answered N Reason (detail)" as a kHttpStatus error; a 429 or 503 with
// Retry-After also says how long to wait and carries it in Error::retry_after. `detail` (the
// server's own message) must already be redacted; callers append their hints.
Error http_status_error(const std::string& what, const HttpResponse& resp,
                        const std::string& detail);

}  // namespace tw::influx

#pragma once
// Keeps secrets out of what a cluster says (SPEC §1: the management token never appears in logs,
// the database, metrics or error messages). Everything a server or influxctl says passes
// through here — core's redact() — inside the sources, before it becomes an error message or a
// stored token field, so nothing downstream (log, /readyz, poll summary, audit log, which
// cannot be edited) ever sees a secret.
//
// Secrets are matched in any ASCII letter case, and the credential after "Bearer" is removed
// from messages even when unknown. Redaction happens before any text is cut, so no part of a
// secret survives at a cut.
//
// Thread safety: pure functions. Errors: the Result/Error passed in, with its message redacted.

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "influx/codec.h"
#include "influx/influxdb3_codec.h"

namespace tw::influx {

// The error with every secret (and any Bearer credential) removed from its message.
Error redacted(Error e, const std::vector<std::string>& secrets);

// decode_token_list / decode_token with secrets removed: from descriptions and permission
// resources of the tokens read
// (data: only the known secrets, not Bearer words), and from the error of a body that does not
// decode — which is then described from the body with the secrets removed, so a value quoted
// and cut in the message cannot carry part of one.
Result<DecodedList> decode_token_list_redacted(std::string_view body,
                                               const std::vector<std::string>& secrets,
                                               EmptyList empty = EmptyList::kArrayOnly);
Result<Token> decode_token_redacted(std::string body, const std::vector<std::string>& secrets);
// decode_influxdb3_rows likewise (names, used to address a token, are kept as sent).
Result<Influxdb3Rows> decode_influxdb3_rows_redacted(std::string_view body,
                                                     const std::vector<std::string>& secrets);

// The credentials in an influxctl config file: `mgmt_token` and `token` of
// every [[profile]] (INFLUXCTL_PROFILE may pick another than the configured one). A file that
// cannot be read or parsed yields none.
std::vector<std::string> influxctl_config_secrets(const std::string& config_path);

// The `mgmt_token` of the profile influxctl will use: `profile`, else $INFLUXCTL_PROFILE, else
// "default". Empty if there is none (OAuth, an admin token file) or the file does not parse.
std::string influxctl_profile_mgmt_token(const std::string& config_path,
                                         const std::string& profile);

}  // namespace tw::influx

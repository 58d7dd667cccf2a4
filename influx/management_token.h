#pragma once
// Reads the management token from its file before each poll (so an agent can rotate it).
//
// A relative `token_file` is looked up in `credentials_directory` ($CREDENTIALS_DIRECTORY, set
// by systemd's LoadCredential=) when that is set, else used as given. Surrounding whitespace
// and a trailing newline are removed.
//
// Thread safety: reentrant. Errors: kIo naming the file (never its content).

#include <string>

#include "core/result.h"

namespace tw::influx {

std::string resolve_token_path(const std::string& token_file, const std::string& credentials_directory);
Result<std::string> read_management_token(const std::string& token_file,
                                          const std::string& credentials_directory);

}  // namespace tw::influx

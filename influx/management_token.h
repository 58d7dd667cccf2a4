#pragma once
// Reads the management token from its file before each poll (so an agent can rotate it), and
// checks a token file once, for check-config and the daemon's start.
//
// A relative `token_file` is looked up in `credentials_directory` ($CREDENTIALS_DIRECTORY, set
// by systemd's LoadCredential=) when that is set, else used as given. Surrounding whitespace
// and a trailing newline are removed. The file must be a regular file holding one token of
// printable ASCII: a directory, a UTF-8 byte order mark, inner spaces or control characters are
// errors, each with its own message.
//
// Thread safety: reentrant. Errors: kIo naming the file (never its content).

#include <sys/stat.h>

#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace tw::influx {

std::string resolve_token_path(const std::string& token_file,
                               const std::string& credentials_directory);
Result<std::string> read_management_token(const std::string& token_file,
                                          const std::string& credentials_directory);

// What check-config and the daemon's start say about a token file; the token is read and
// dropped. `error`: the file cannot work (not a regular file, a byte order mark, empty, more
// than one word). `warnings`: it cannot be read by this user (it may be by the service's), or
// group or others may read it. Each message names the resolved path, without a key path.
struct TokenFileCheck {
  std::optional<std::string> error;
  std::vector<std::string> warnings;
};
TokenFileCheck check_token_file(const std::string& token_file,
                                const std::string& credentials_directory);

// The warnings every secret file (a token file, the checkpoint signing key) gets once it exists
// and is a regular file (`st` from stat): readable by group or others (with a POSIX ACL, by
// others), or not readable by this user. Returns false when this user cannot read it.
bool check_secret_file_access(const std::string& path, const struct stat& st,
                              std::vector<std::string>& warnings);

}  // namespace tw::influx

#pragma once
// What `run` reads besides the configuration file, checked the same way by check-config, at the
// daemon's start and on every reload, so that a configuration check-config accepts also starts:
// - [http] web_config: the TLS certificate, its key (which must match it) and the client CA load
//   (only when the endpoint is enabled);
// - each cluster's token_file is a regular file holding one token (read, then dropped);
// - each influxctl cluster's influxctl_path is influxctl 2.10.0 or later (`influxctl version`,
//   influx/influxctl_version.h); one that cannot be run at all is a warning (like an unreadable
//   token file: it may not be installed yet where check-config runs), and its polls fail.
// - [[audit.export]]: a syslog sink's ca_file, cert_file and key_file exist (with tls), and a
//   file sink's directory exists (the file itself is created by the export).
// A token file this user cannot read is a warning (check-config may run as another user, or
// before systemd provides the credential); so is one that group or others may read.
//
// Thread safety: reentrant. Errors: one sentence each, prefixed with the key path; never a
// token.

#include <string>
#include <vector>

#include "daemon/config.h"

namespace tw::daemon {

struct RuntimeFileCheck {
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
};

// `credentials_directory`: $CREDENTIALS_DIRECTORY, for relative token_file names.
RuntimeFileCheck check_runtime_files(const Config& config,
                                     const std::string& credentials_directory);

// Only the influxctl version floor, for the clusters named `only` (all if empty): the one-shot
// `poll` checks this much before it runs influxctl.
RuntimeFileCheck check_influxctl_versions(const Config& config, const std::string& only = "");

}  // namespace tw::daemon

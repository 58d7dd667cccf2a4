#pragma once
// The influxctl version floor (docs/sources.md): tokenwarden needs `token list --include-revoked`,
// `token get --include-revoked` and `token revoke`, all new in influxctl 2.10.0.
//
// `influxctl version` prints "the current version and architecture"; the exact wording is not
// documented, so the first "MAJOR.MINOR.PATCH" (optionally after a "v") in its output is the
// version. A pre-release suffix ("2.10.0-rc1") is ignored: it counts as the release.
//
// Thread safety: reentrant. Errors: one sentence naming the version found (or the output that
// held none) and the version needed.

#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "core/time.h"

namespace tw::influx {

struct InfluxctlVersion {
  int major = 0;
  int minor = 0;
  int patch = 0;
  std::string to_string() const;
  auto operator<=>(const InfluxctlVersion&) const = default;
};

inline constexpr InfluxctlVersion kMinInfluxctlVersion{2, 10, 0};

// The version in `influxctl version` output, or nullopt.
std::optional<InfluxctlVersion> parse_influxctl_version(std::string_view output);

// Runs `path version` (no network: it only prints) and checks it against the floor. Errors:
// kIo if it cannot be run at all, kInvalidArgument for a version too old or not found.
Result<InfluxctlVersion> check_influxctl_version(const std::string& path,
                                                 Duration timeout = std::chrono::seconds(10));

}  // namespace tw::influx

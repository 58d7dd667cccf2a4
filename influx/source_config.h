#pragma once
// What a token source needs to reach one cluster (a slice of the [[clusters]] config).
//
// Thread safety: plain value type.

#include <memory>
#include <string>

#include "core/time.h"
#include "influx/token_source.h"

namespace tw::influx {

enum class SourceType { kClustered, kDedicated, kInfluxctl, kInfluxdb3 };

struct SourceConfig {
  std::string cluster;  // the cluster's name in tokenwarden, for messages
  SourceType type = SourceType::kClustered;
  std::string url;
  std::string token_file;
  std::string ca_file;
  Duration timeout = std::chrono::seconds(10);
  // The largest token list accepted: a REST response body or influxctl's stdout. Reading stops
  // (and the call fails) as soon as more arrives; nothing past it is buffered.
  std::size_t max_response_bytes = std::size_t{512} << 20;
  std::string account_id;  // dedicated
  std::string cluster_id;  // dedicated
  std::string influxctl_path = "influxctl";
  std::string influxctl_config;
  std::string profile;
};

// Builds the client for a source. `credentials_directory` is $CREDENTIALS_DIRECTORY (may be
// empty). Fails with kInvalidArgument if the configuration cannot describe a client (bad URL).
Result<std::unique_ptr<ClusterClient>> make_cluster_client(
    const SourceConfig& config, const std::string& credentials_directory);

}  // namespace tw::influx

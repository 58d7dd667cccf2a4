#include "influx/influxctl_source.h"
#include "influx/influxdb3_source.h"
#include "influx/rest_source.h"

namespace tw::influx {

Result<std::unique_ptr<ClusterClient>> make_cluster_client(
    const SourceConfig& config, const std::string& credentials_directory) {
  if (config.type == SourceType::kInfluxctl) {
    return std::unique_ptr<ClusterClient>(std::make_unique<InfluxctlClusterClient>(config));
  }
  auto url = parse_url(config.url);
  if (!url.ok()) return url.take_error();
  if (config.type == SourceType::kInfluxdb3) {
    return std::unique_ptr<ClusterClient>(
        std::make_unique<Influxdb3ClusterClient>(config, std::move(*url), credentials_directory));
  }
  return std::unique_ptr<ClusterClient>(
      std::make_unique<RestClusterClient>(config, std::move(*url), credentials_directory));
}

}  // namespace tw::influx

#include "daemon/preflight.h"

#include <map>

#include "daemon/checkpointer.h"
#include "influx/influxctl_version.h"
#include "influx/management_token.h"
#include "metrics/http_endpoint.h"

namespace tw::daemon {

RuntimeFileCheck check_influxctl_versions(const Config& config, const std::string& only) {
  RuntimeFileCheck out;
  std::map<std::string, Result<influx::InfluxctlVersion>> checked;  // run each path once
  for (std::size_t i = 0; i < config.clusters.size(); ++i) {
    const auto& cluster = config.clusters[i];
    if (cluster.source.type != influx::SourceType::kInfluxctl) continue;
    if (!only.empty() && cluster.name != only) continue;
    const std::string& path = cluster.source.influxctl_path;
    auto it = checked.find(path);
    if (it == checked.end())
      it = checked.emplace(path, influx::check_influxctl_version(path)).first;
    if (it->second.ok()) continue;
    const std::string key = "clusters[" + std::to_string(i) + "].influxctl_path: ";
    const Error& e = it->second.error();
    if (e.code == ErrorCode::kIo) {
      out.warnings.push_back(key + e.message + "; its polls fail until it can be run");
    } else {
      out.errors.push_back(key + e.message);
    }
  }
  return out;
}

RuntimeFileCheck check_runtime_files(const Config& config,
                                     const std::string& credentials_directory) {
  RuntimeFileCheck out;
  if (!config.http.listen.empty() && config.http.web.tls()) {
    if (auto st = metrics::check_tls_files(config.http.web); !st.ok()) {
      out.errors.push_back("http.web_config: " + st.error().message);
    }
  }
  for (std::size_t i = 0; i < config.clusters.size(); ++i) {
    const auto& source = config.clusters[i].source;
    if (source.token_file.empty()) continue;  // influxctl: its own config holds the credentials
    const std::string key = "clusters[" + std::to_string(i) + "].token_file: ";
    auto check = influx::check_token_file(source.token_file, credentials_directory);
    if (check.error) out.errors.push_back(key + *check.error);
    for (const auto& w : check.warnings) out.warnings.push_back(key + w);
  }
  if (!config.audit.signing_key_file.empty()) {
    auto check = check_signing_key_file(config.audit.signing_key_file, credentials_directory);
    if (check.error) out.errors.push_back("audit.signing_key_file: " + *check.error);
    for (const auto& w : check.warnings) out.warnings.push_back("audit.signing_key_file: " + w);
  }
  auto versions = check_influxctl_versions(config);
  out.errors.insert(out.errors.end(), versions.errors.begin(), versions.errors.end());
  out.warnings.insert(out.warnings.end(), versions.warnings.begin(), versions.warnings.end());
  return out;
}

}  // namespace tw::daemon

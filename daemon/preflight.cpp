#include "daemon/preflight.h"

#include "influx/management_token.h"
#include "metrics/http_endpoint.h"

namespace tw::daemon {

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
  return out;
}

}  // namespace tw::daemon

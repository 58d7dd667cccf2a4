#include "daemon/preflight.h"

#include <unistd.h>

#include <filesystem>
#include <map>

#include "daemon/checkpointer.h"
#include "influx/influxctl_version.h"
#include "influx/management_token.h"
#include "metrics/http_endpoint.h"

namespace tw::daemon {

namespace {

// TLS files given (ca_file, cert_file, key_file under `key`) exist; one this user cannot read is
// a warning ending with `consequence`. Nothing is read: a key never reaches a message.
void check_tls_files(const std::string& key, const std::string& ca_file,
                     const std::string& cert_file, const std::string& key_file,
                     const char* consequence, RuntimeFileCheck& out) {
  for (auto [name, path] : {std::pair<const char*, const std::string*>{"ca_file", &ca_file},
                            {"cert_file", &cert_file},
                            {"key_file", &key_file}}) {
    if (path->empty()) continue;
    if (::access(path->c_str(), F_OK) != 0) {
      out.errors.push_back(key + name + ": " + *path + " does not exist");
    } else if (::access(path->c_str(), R_OK) != 0) {
      out.warnings.push_back(key + name + ": " + *path + " is not readable by this user; " +
                             consequence);
    }
  }
}

// [[audit.export]]: the TLS files of syslog sinks exist (unreadable: a warning, as for token
// files), and a file sink's directory exists. Nothing is read: a key never reaches a message.
void check_export_files(const Config& config, RuntimeFileCheck& out) {
  for (std::size_t i = 0; i < config.audit.exports.size(); ++i) {
    const auto& e = config.audit.exports[i];
    const std::string key = "audit.export[" + std::to_string(i) + "].";
    if (e.tls) {
      check_tls_files(key, e.ca_file, e.cert_file, e.key_file, "the export fails until it is", out);
    }
    if (e.type == ExportType::kFile) {
      const auto dir = std::filesystem::path(e.path).parent_path();
      std::error_code ec;
      if (!dir.empty() && !std::filesystem::is_directory(dir, ec)) {
        out.errors.push_back(key + "path: the directory " + dir.string() + " does not exist");
      }
    }
  }
}

// [ha]: the password file (checked like a token file) and the TLS files for etcd.
void check_ha_files(const Config& config, const std::string& credentials_directory,
                    RuntimeFileCheck& out) {
  if (!config.ha.enabled) return;
  if (!config.ha.password_file.empty()) {
    auto check = influx::check_token_file(config.ha.password_file, credentials_directory);
    if (check.error) out.errors.push_back("ha.password_file: " + *check.error);
    for (const auto& w : check.warnings) out.warnings.push_back("ha.password_file: " + w);
  }
  check_tls_files("ha.", config.ha.ca_file, config.ha.cert_file, config.ha.key_file,
                  "etcd cannot be reached until it is", out);
}

}  // namespace

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
  check_ha_files(config, credentials_directory, out);
  if (!config.audit.signing_key_file.empty()) {
    auto check = check_signing_key_file(config.audit.signing_key_file, credentials_directory);
    if (check.error) out.errors.push_back("audit.signing_key_file: " + *check.error);
    for (const auto& w : check.warnings) out.warnings.push_back("audit.signing_key_file: " + w);
  }
  check_export_files(config, out);
  auto versions = check_influxctl_versions(config);
  out.errors.insert(out.errors.end(), versions.errors.begin(), versions.errors.end());
  out.warnings.insert(out.warnings.end(), versions.warnings.begin(), versions.warnings.end());
  return out;
}

}  // namespace tw::daemon

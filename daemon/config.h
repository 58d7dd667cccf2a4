#pragma once
// The configuration file (SPEC §2): typed, validated as a whole, every problem reported with its
// key path ("clusters[1].url: …", indexes from 0). Unknown keys are errors. Loadable from a
// string for tests. A configuration needs at least one [[clusters]]: an empty or truncated file,
// or a directory, is an error, never "monitor nothing". Secrets never live in the file itself:
// management tokens come from token_file, and --print redacts URL credentials and webhook paths.
//
// Thread safety: value types; the loader is reentrant.
// Errors: ConfigLoad::errors (one sentence each, prefixed by the key path and the line if known).

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/log.h"
#include "core/time.h"
#include "influx/source_config.h"
#include "metrics/http_endpoint.h"
#include "policy/policy_spec.h"

namespace tw::daemon {

inline constexpr const char* kDefaultConfigPath = "/etc/tokenwarden/tokenwarden.toml";
// The default `timeout` of an influxctl cluster (REST clusters: 10 s): influxctl's own default.
inline constexpr Duration kInfluxctlTimeout = std::chrono::seconds(60);

struct DaemonSection {
  std::string database = "/var/lib/tokenwarden/audit.db";
  Duration poll_interval = std::chrono::minutes(1);
  policy::Mode mode = policy::Mode::kEnforce;
  LogLevel log_level = LogLevel::kInfo;
  LogFormat log_format = LogFormat::kText;
  int max_concurrent_polls = 4;                    // clusters polled at the same time
  Duration poll_jitter = std::chrono::seconds(5);  // random delay added to each planned poll
};

struct HttpSection {
  std::string listen = "127.0.0.1:9464";  // "" disables the endpoint
  std::string web_config;                 // as written; relative paths are from the config file
  metrics::WebConfig web;                 // the web config file's contents, loaded and checked
  bool reuse_metrics_text = true;  // false: every scrape serializes every series (benchmarks)
};

struct SafetySection {
  int max_actions_per_cycle = 10;
  int max_actions_percent = 10;
  int max_vanished_percent = 50;
};

struct AlertingSection {
  std::string alertmanager_url;
  std::string webhook_url;
};

struct ClusterConfig {
  std::string name;
  influx::SourceConfig source;  // source.cluster == name
  Duration poll_interval;       // effective (override or daemon default)
  bool poll_interval_overridden = false;
  std::map<std::string, std::string> labels;
};

struct Config {
  DaemonSection daemon;
  HttpSection http;
  SafetySection safety;
  AlertingSection alerting;
  std::vector<ClusterConfig> clusters;
  std::vector<policy::PolicySpec> policies;
  std::vector<policy::ExemptionSpec> exemptions;
  std::string path;  // where it was loaded from ("<string>" for tests)
  std::string hash;  // sha256 of the file's bytes

  const ClusterConfig* find_cluster(std::string_view name) const;
};

struct ConfigLoad {
  std::optional<Config> config;  // set only when errors is empty
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
  std::string
      hash;  // sha256 of the bytes read, even when rejected; "" if the file could not be read
};

// `now` bounds exemption expiry (at most one year ahead). Relative paths in the file are kept
// as written (token_file may be a systemd credential name).
ConfigLoad load_config_file(const std::string& path, Timestamp now);
ConfigLoad load_config_string(std::string_view text, const std::string& origin, Timestamp now);

// The [http] web_config file (docs/operations.md): `[tls]` cert_file, key_file, client_ca_file and
// `[basic_auth.users]` name = "bcrypt hash". Relative file names are resolved against the web
// config's directory. Problems are appended to `errors`, prefixed with `key_prefix`.
std::optional<metrics::WebConfig> load_web_config_file(const std::string& path,
                                                       const std::string& key_prefix,
                                                       std::vector<std::string>& errors);

// A candidate policy file for `simulate`: only [[policies]] and [[exemptions]], validated
// exactly like the configuration's (exemptions may name the base's clusters). The result is
// `base` with its policies and exemptions replaced.
ConfigLoad load_policy_file(const std::string& path, const Config& base, Timestamp now);

// The effective configuration as TOML, defaults filled in, secrets redacted.
std::string render_config(const Config& config);

// scheme://host/… with credentials and any path/query removed (for webhook URLs that embed
// secrets) — used in --print output and logs.
std::string redact_url(std::string_view url, bool keep_path);

}  // namespace tw::daemon

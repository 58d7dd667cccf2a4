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
#include "policy/owners.h"
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

// One [[audit.export]] sink (docs/audit-export.md).
enum class ExportType { kSyslog, kJournald, kFile };
std::string_view to_string(ExportType type);

struct ExportSinkConfig {
  std::string name;  // unique; names the sink's cursor in the database and its metrics
  ExportType type = ExportType::kFile;
  // syslog: "host:port" over TCP (RFC 5424 records, RFC 6587 octet counting), TLS (RFC 5425)
  // when `tls`; ca_file verifies the collector (system store when empty), cert_file/key_file
  // authenticate us. Relative paths are from the configuration file's directory.
  std::string address;
  bool tls = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // file: JSON lines appended to `path` (relative: from the configuration file's directory).
  std::string path;
  // journald: the journal's native socket (the default is systemd-journald's).
  std::string socket = "/run/systemd/journal/socket";

  // Where it delivers, for logs, metrics help and the cursor's `target` (no secrets).
  std::string target() const;
};

struct AuditSection {
  // Ed25519 private key (PEM) for signed checkpoints; "" disables them. Relative: looked up in
  // $CREDENTIALS_DIRECTORY first (systemd LoadCredential=), like a cluster's token_file.
  std::string signing_key_file;
  // The matching public key, for `report` and `verify` when --public-key is not given.
  std::string public_key_file;
  Duration checkpoint_interval = std::chrono::hours(1);
  std::int64_t checkpoint_events = 10000;
  // Fail closed: no enforcement action while a sink lags more than export_max_lag.
  bool require_export = false;
  Duration export_max_lag = std::chrono::minutes(5);
  std::vector<ExportSinkConfig> exports;
};

// [ha] (docs/high-availability.md): active/standby daemons coordinated by etcd.
struct HaSection {
  bool enabled = false;  // the section is present
  std::string backend = "etcd";
  std::vector<std::string> endpoints;  // http(s)://host:port of etcd members
  // TLS to etcd: ca_file verifies the members (system store when empty), cert_file/key_file
  // authenticate us. Relative paths are from the configuration file's directory.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // etcd RBAC: the user tokenwarden logs in as, and the file holding its password (one word of
  // printable ASCII; relative: looked up in $CREDENTIALS_DIRECTORY first, like a token_file).
  std::string username;
  std::string password_file;
  Duration lease_ttl = std::chrono::seconds(15);
  std::string instance;  // default: the host name
  std::string key_prefix = "/tokenwarden/";

  bool operator==(const HaSection&) const = default;
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
  AuditSection audit;
  HaSection ha;
  std::vector<ClusterConfig> clusters;
  std::vector<policy::PolicySpec> policies;
  std::vector<policy::ExemptionSpec> exemptions;
  std::vector<policy::OwnerRuleSpec> owners;  // [[owners]], in order: the first match wins
  std::string path;                           // where it was loaded from ("<string>" for tests)
  std::string hash;                           // sha256 of the file's bytes

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

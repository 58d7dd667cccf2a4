// Tests for daemon/config.h: a complete configuration, defaults, every error with its key path
// (all reported at once), secret redaction in render_config and the render/load round trip, and
// the [http] web_config file (TLS files, bcrypt users, hashes never echoed in errors).

#include "daemon/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "core/sha256.h"
#include "tests/unit/core/test_support.h"

namespace tw::daemon {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using tw::testing::PrintTo;
using tw::testing::ts;

const Timestamp kNow = ts("2026-06-01T00:00:00Z");

const char* kComplete = R"toml(
[daemon]
database = "/var/lib/tokenwarden/test.db"
poll_interval = "2m"
mode = "monitor"
log_level = "debug"
log_format = "json"
max_concurrent_polls = 8
poll_jitter = "0s"

[http]
listen = "127.0.0.1:9999"
web_config = "/dev/null"

[safety]
max_actions_per_cycle = 5
max_actions_percent = 20
max_vanished_percent = 30

[alerting]
alertmanager_url = "http://127.0.0.1:9093"
webhook_url = "https://hooks.example.com/services/T000/B000/XXXXSECRETXXXX"

[[clusters]]
name = "prod-eu"
type = "clustered"
url = "https://influxdb.prod.example.com/api/v0"
token_file = "/etc/tokenwarden/prod-eu.token"
ca_file = "/etc/ssl/internal-ca.pem"
timeout = "15s"
poll_interval = "30s"
labels = { env = "prod", region = "eu" }

[[clusters]]
name = "dedicated-1"
type = "dedicated"
url = "https://console.influxdata.com/api/v0"
token_file = "dedicated.token"
account_id = "11111111-1111-4111-8111-111111111111"
cluster_id = "33333333-3333-4333-8333-333333333333"

[[clusters]]
name = "ctl_cluster"
type = "influxctl"
influxctl_path = "/usr/local/bin/influxctl"
influxctl_config = "/etc/tokenwarden/influxctl.toml"
profile = "default"

[[policies]]
name = "max-lifetime-90d"
kind = "max_lifetime"
max_lifetime = "90d"
require_expiry = false
severity = "critical"
action = "revoke"
mode = "enforce"
grace_period = "72h"
min_token_age = "1h"
require_approval = true
scope = { clusters = ["prod-*"], description = "^svc-", labels = { env = "prod" } }

[[policies]]
name = "Rotate.180d"
kind = "max_age"
max_age = "180d"

[[policies]]
name = "no-write-prod"
kind = "forbidden_grant"
actions = ["write"]
databases = ["prod_*", "billing"]
action = "restrict"

[[policies]]
name = "no-star"
kind = "all_databases_grant"
action = "restrict"
severity = "info"

[[policies]]
name = "few-dbs"
kind = "max_databases"
max = 3

[[policies]]
name = "naming"
kind = "description_pattern"
pattern = '^(svc|user)-[a-z0-9-]+$'

[[policies]]
name = "expiring"
kind = "expires_soon"
within = "7d"
action = "alert"

[[exemptions]]
policy = "max-lifetime-90d"
token_id = "55555555-5555-4555-8555-555555555555"
cluster = "prod-eu"
reason = "vendor integration, ticket OPS-123"
expires = 2027-03-01T00:00:00Z

[[exemptions]]
policy = "*"
description = "^legacy-"
reason = "legacy tokens, OPS-9"
expires = "2026-12-01T12:00:00+02:00"

[[exemptions]]
policy = "naming"
token_id = "tok-x"
reason = "r"
expires = 2026-09-01
)toml";

// A cluster to add where a test is about something else: a configuration needs one.
const char* kGoodCluster = R"toml(
[[clusters]]
name = "c0"
type = "clustered"
url = "https://h0.example.com/api/v0"
token_file = "/etc/t0"
)toml";

ConfigLoad load(std::string_view text) { return load_config_string(text, "<string>", kNow); }

std::string all(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += "\n  " + s;
  return out;
}

const policy::PolicySpec& policy_named(const Config& c, const std::string& name) {
  for (const auto& p : c.policies) {
    if (p.name == name) return p;
  }
  throw std::runtime_error("no policy " + name);
}

TEST(LoadConfig, CompleteConfig) {
  auto r = load(kComplete);
  ASSERT_TRUE(r.config.has_value()) << all(r.errors);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_TRUE(r.warnings.empty()) << all(r.warnings);
  const Config& c = *r.config;
  EXPECT_EQ(c.path, "<string>");
  EXPECT_EQ(c.hash, sha256_hex(kComplete));

  EXPECT_EQ(c.daemon.database, "/var/lib/tokenwarden/test.db");
  EXPECT_EQ(c.daemon.poll_interval, minutes(2));
  EXPECT_EQ(c.daemon.mode, policy::Mode::kMonitor);
  EXPECT_EQ(c.daemon.log_level, LogLevel::kDebug);
  EXPECT_EQ(c.daemon.log_format, LogFormat::kJson);
  EXPECT_EQ(c.daemon.max_concurrent_polls, 8);
  EXPECT_EQ(c.daemon.poll_jitter, Duration(0));
  EXPECT_EQ(c.http.listen, "127.0.0.1:9999");
  // The web config is loaded with the configuration; /dev/null is an empty one (no TLS, no auth)
  // that exists on every host.
  EXPECT_EQ(c.http.web_config, "/dev/null");
  EXPECT_FALSE(c.http.web.tls());
  EXPECT_TRUE(c.http.web.users.empty());
  EXPECT_EQ(c.safety.max_actions_per_cycle, 5);
  EXPECT_EQ(c.safety.max_actions_percent, 20);
  EXPECT_EQ(c.safety.max_vanished_percent, 30);
  EXPECT_EQ(c.alerting.alertmanager_url, "http://127.0.0.1:9093");
  EXPECT_EQ(c.alerting.webhook_url, "https://hooks.example.com/services/T000/B000/XXXXSECRETXXXX");

  ASSERT_EQ(c.clusters.size(), 3u);
  const auto& eu = c.clusters[0];
  EXPECT_EQ(eu.name, "prod-eu");
  EXPECT_EQ(eu.source.cluster, "prod-eu");
  EXPECT_EQ(eu.source.type, influx::SourceType::kClustered);
  EXPECT_EQ(eu.source.url, "https://influxdb.prod.example.com/api/v0");
  EXPECT_EQ(eu.source.token_file, "/etc/tokenwarden/prod-eu.token");
  EXPECT_EQ(eu.source.ca_file, "/etc/ssl/internal-ca.pem");
  EXPECT_EQ(eu.source.timeout, seconds(15));
  EXPECT_EQ(eu.poll_interval, seconds(30));
  EXPECT_TRUE(eu.poll_interval_overridden);
  EXPECT_EQ(eu.labels, (std::map<std::string, std::string>{{"env", "prod"}, {"region", "eu"}}));

  const auto& ded = c.clusters[1];
  EXPECT_EQ(ded.source.type, influx::SourceType::kDedicated);
  EXPECT_EQ(ded.source.token_file, "dedicated.token") << "relative paths are kept as written";
  EXPECT_EQ(ded.source.account_id, "11111111-1111-4111-8111-111111111111");
  EXPECT_EQ(ded.source.cluster_id, "33333333-3333-4333-8333-333333333333");
  EXPECT_EQ(ded.source.timeout, seconds(10)) << "default timeout";
  EXPECT_EQ(ded.poll_interval, minutes(2)) << "inherits daemon.poll_interval";
  EXPECT_FALSE(ded.poll_interval_overridden);
  EXPECT_TRUE(ded.labels.empty());

  const auto& ctl = c.clusters[2];
  EXPECT_EQ(ctl.source.type, influx::SourceType::kInfluxctl);
  EXPECT_EQ(ctl.source.influxctl_path, "/usr/local/bin/influxctl");
  EXPECT_EQ(ctl.source.influxctl_config, "/etc/tokenwarden/influxctl.toml");
  EXPECT_EQ(ctl.source.profile, "default");
  EXPECT_EQ(ctl.source.timeout, minutes(1)) << "influxctl's default timeout is 60 s, not 10 s";
  EXPECT_EQ(c.find_cluster("ctl_cluster"), &ctl);
  EXPECT_EQ(c.find_cluster("nope"), nullptr);

  ASSERT_EQ(c.policies.size(), 7u);
  const auto& ml = policy_named(c, "max-lifetime-90d");
  EXPECT_EQ(ml.kind, policy::Kind::kMaxLifetime);
  EXPECT_EQ(ml.max_lifetime, hours(24 * 90));
  EXPECT_FALSE(ml.require_expiry);
  EXPECT_EQ(ml.severity, policy::Severity::kCritical);
  EXPECT_EQ(ml.action, policy::Action::kRevoke);
  EXPECT_EQ(ml.mode, policy::Mode::kEnforce);
  EXPECT_EQ(ml.grace_period, hours(72));
  EXPECT_EQ(ml.min_token_age, hours(1));
  EXPECT_TRUE(ml.require_approval);
  EXPECT_EQ(ml.scope.clusters, (std::vector<std::string>{"prod-*"}));
  EXPECT_EQ(ml.scope.description, "^svc-");
  EXPECT_EQ(ml.scope.labels, (std::map<std::string, std::string>{{"env", "prod"}}));

  const auto& age = policy_named(c, "Rotate.180d");
  EXPECT_EQ(age.kind, policy::Kind::kMaxAge);
  EXPECT_EQ(age.max_age, hours(24 * 180));
  // Defaults of the handling fields.
  EXPECT_EQ(age.severity, policy::Severity::kWarning);
  EXPECT_EQ(age.action, policy::Action::kAlert);
  EXPECT_FALSE(age.mode.has_value());
  EXPECT_EQ(age.grace_period, hours(72));
  EXPECT_EQ(age.min_token_age, Duration(0));
  EXPECT_FALSE(age.require_approval);
  EXPECT_TRUE(age.scope.clusters.empty());
  EXPECT_TRUE(age.scope.description.empty());

  const auto& fg = policy_named(c, "no-write-prod");
  EXPECT_EQ(fg.kind, policy::Kind::kForbiddenGrant);
  EXPECT_EQ(fg.actions, (std::vector<std::string>{"write"}));
  EXPECT_EQ(fg.databases, (std::vector<std::string>{"prod_*", "billing"}));
  EXPECT_EQ(fg.action, policy::Action::kRestrict);

  const auto& star = policy_named(c, "no-star");
  EXPECT_EQ(star.kind, policy::Kind::kAllDatabasesGrant);
  EXPECT_EQ(star.actions, (std::vector<std::string>{"read", "write"})) << "default: both actions";
  EXPECT_EQ(star.severity, policy::Severity::kInfo);

  EXPECT_EQ(policy_named(c, "few-dbs").max, 3);
  EXPECT_EQ(policy_named(c, "naming").pattern, "^(svc|user)-[a-z0-9-]+$");
  EXPECT_EQ(policy_named(c, "expiring").within, hours(24 * 7));
  EXPECT_EQ(policy_named(c, "expiring").kind, policy::Kind::kExpiresSoon);

  ASSERT_EQ(c.exemptions.size(), 3u);
  EXPECT_EQ(c.exemptions[0].policy, "max-lifetime-90d");
  EXPECT_EQ(c.exemptions[0].token_id, "55555555-5555-4555-8555-555555555555");
  EXPECT_EQ(c.exemptions[0].cluster, "prod-eu");
  EXPECT_EQ(c.exemptions[0].reason, "vendor integration, ticket OPS-123");
  EXPECT_EQ(c.exemptions[0].expires, ts("2027-03-01T00:00:00Z"));
  EXPECT_EQ(c.exemptions[1].policy, "*");
  EXPECT_EQ(c.exemptions[1].description, "^legacy-");
  EXPECT_TRUE(c.exemptions[1].token_id.empty());
  EXPECT_EQ(c.exemptions[1].expires, ts("2026-12-01T10:00:00Z")) << "RFC 3339 string with offset";
  EXPECT_EQ(c.exemptions[2].expires, ts("2026-09-01T00:00:00Z")) << "a TOML date is midnight UTC";
}

TEST(LoadConfig, OneClusterAndAllDefaults) {
  auto r = load(kGoodCluster);
  ASSERT_TRUE(r.config.has_value()) << all(r.errors);
  const Config& c = *r.config;
  EXPECT_EQ(c.daemon.database, "/var/lib/tokenwarden/audit.db");
  EXPECT_EQ(c.daemon.poll_interval, minutes(1));
  EXPECT_EQ(c.daemon.mode, policy::Mode::kEnforce);
  EXPECT_EQ(c.daemon.log_level, LogLevel::kInfo);
  EXPECT_EQ(c.daemon.log_format, LogFormat::kText);
  EXPECT_EQ(c.http.listen, "127.0.0.1:9464");
  EXPECT_EQ(c.safety.max_actions_per_cycle, 10);
  EXPECT_EQ(c.safety.max_actions_percent, 10);
  EXPECT_EQ(c.safety.max_vanished_percent, 50);
  EXPECT_TRUE(c.alerting.alertmanager_url.empty());
  ASSERT_EQ(c.clusters.size(), 1u);
  EXPECT_EQ(c.clusters[0].poll_interval, minutes(1));
  EXPECT_TRUE(r.warnings.empty()) << all(r.warnings);
}

TEST(LoadConfig, EmptyListenDisablesHttp) {
  auto r = load(std::string("[http]\nlisten = \"\"\n") + kGoodCluster);
  ASSERT_TRUE(r.config.has_value()) << all(r.errors);
  EXPECT_EQ(r.config->http.listen, "");
}

TEST(LoadConfig, ReuseMetricsTextIsAnHttpOption) {
  auto r = load(kGoodCluster);
  ASSERT_TRUE(r.config.has_value()) << all(r.errors);
  EXPECT_TRUE(r.config->http.reuse_metrics_text);
  r = load(std::string("[http]\nreuse_metrics_text = false\n") + kGoodCluster);
  ASSERT_TRUE(r.config.has_value()) << all(r.errors);
  EXPECT_FALSE(r.config->http.reuse_metrics_text);
  r = load(std::string("[http]\nreuse_metrics_text = \"no\"\n") + kGoodCluster);
  EXPECT_FALSE(r.config.has_value());
}

TEST(LoadConfig, Warnings) {
  auto r = load(R"toml(
[[clusters]]
name = "lab"
type = "clustered"
url = "http://influxdb.lab.example.com/api/v0"
token_file = "t"
[[policies]]
name = "p"
kind = "max_age"
max_age = "30d"
scope = { clusters = ["staging-*"] }
[[exemptions]]
policy = "p"
token_id = "x"
reason = "old"
expires = 2026-01-01T00:00:00Z
)toml");
  ASSERT_TRUE(r.config.has_value()) << all(r.errors);
  auto has = [&](const std::string& prefix) {
    for (const auto& w : r.warnings) {
      if (w.rfind(prefix, 0) == 0) return true;
    }
    return false;
  };
  EXPECT_TRUE(has("clusters[0].url: plain http")) << all(r.warnings);
  EXPECT_TRUE(has("policies[0].scope.clusters: \"staging-*\" matches no configured cluster"))
      << all(r.warnings);
  EXPECT_TRUE(has("exemptions[0].expires:")) << all(r.warnings);
}

// Found by fuzz/config_fuzz.cpp: a TOML date-time outside 1678-2262 overflowed (undefined
// behaviour) in toml11's conversion to std::chrono::system_clock. Read from its fields instead.
TEST(LoadConfig, OrphanedPolicyAndNoticeLadder) {
  const std::string policies = std::string(kGoodCluster) + R"toml(
[[policies]]
name = "orphans"
kind = "orphaned"
known_owners = ["alice", "bob"]
[[policies]]
name = "expiry"
kind = "expires_soon"
notify_before = ["7d", "30d", "1d"]
)toml";
  auto r = load(policies);
  ASSERT_TRUE(r.config.has_value()) << all(r.errors);
  const auto& ps = r.config->policies;
  ASSERT_EQ(ps.size(), 2u);
  EXPECT_EQ(ps[0].kind, policy::Kind::kOrphaned);
  EXPECT_EQ(ps[0].action, policy::Action::kAlert) << "alert only by default";
  EXPECT_EQ(ps[0].known_owners, (std::vector<std::string>{"alice", "bob"}));
  ASSERT_TRUE(ps[1].within);
  EXPECT_EQ(*ps[1].within, std::chrono::hours(24 * 30)) << "within defaults to the largest";
  EXPECT_EQ(ps[1].notify_before.size(), 3u);
  ASSERT_EQ(r.warnings.size(), 1u) << all(r.warnings);
  EXPECT_NE(r.warnings[0].find("no [[owners]] rules are configured: every token is orphaned"),
            std::string::npos);

  auto owned = load(policies + "[[owners]]\ntoken_id = \"t1\"\nowner = \"alice\"\n");
  ASSERT_TRUE(owned.config.has_value()) << all(owned.errors);
  EXPECT_TRUE(owned.warnings.empty()) << all(owned.warnings);

  const std::string revoking =
      std::string(kGoodCluster) +
      "[[policies]]\nname = \"o\"\nkind = \"orphaned\"\naction = \"revoke\"\n";
  auto unowned = load(revoking);
  EXPECT_FALSE(unowned.config.has_value()) << "no rules: it would revoke every token";
  EXPECT_NE(all(unowned.errors).find("would revoke every token"), std::string::npos)
      << all(unowned.errors);
  auto revoke = load(revoking + "[[owners]]\ntoken_id = \"t1\"\nowner = \"alice\"\n");
  ASSERT_TRUE(revoke.config.has_value()) << all(revoke.errors);
  EXPECT_EQ(revoke.config->policies[0].action, policy::Action::kRevoke);
}

TEST(LoadConfig, TomlDateTimesOfAnyYearAndOffset) {
  struct Case {
    const char* expires;
    Timestamp want;
  };
  for (const Case& c : {Case{"1015-01-01T00:00:00Z", ts("1015-01-01T00:00:00Z")},
                        Case{"0001-01-01T00:00:00Z", ts("0001-01-01T00:00:00Z")},
                        Case{"2026-12-01T12:00:00+09:00", ts("2026-12-01T03:00:00Z")},
                        Case{"2026-12-01T12:00:00.250-05:30", ts("2026-12-01T17:30:00.250Z")}}) {
    auto r = load(std::string(R"toml(
[[clusters]]
name = "lab"
type = "clustered"
url = "https://influxdb.lab.example.com/api/v0"
token_file = "t"
[[policies]]
name = "p"
kind = "max_age"
max_age = "30d"
[[exemptions]]
policy = "p"
token_id = "x"
reason = "r"
expires = )toml") +
                  c.expires + "\n");
    ASSERT_TRUE(r.config.has_value()) << c.expires << all(r.errors);
    ASSERT_EQ(r.config->exemptions.size(), 1u);
    EXPECT_EQ(r.config->exemptions[0].expires, c.want) << c.expires;
  }
}

TEST(LoadConfig, PlainHttpOnLoopbackIsFine) {
  for (const char* host : {"127.0.0.1:8086", "localhost:8086", "[::1]:8086"}) {
    auto r = load(std::string("[[clusters]]\nname = \"l\"\ntype = \"clustered\"\nurl = \"http://") +
                  host + "/api/v0\"\ntoken_file = \"t\"\n");
    ASSERT_TRUE(r.config.has_value()) << host << all(r.errors);
    EXPECT_TRUE(r.warnings.empty()) << host << all(r.warnings);
  }
}

// --- errors -----------------------------------------------------------------------------------

struct ErrorCase {
  std::string name;
  std::string toml;
  std::vector<std::string> expected;  // each: an error starting with this text ("~" = contains)
};

class ConfigErrors : public ::testing::TestWithParam<ErrorCase> {};

bool has_error(const std::vector<std::string>& errors, const std::string& want) {
  for (const auto& e : errors) {
    if (want.front() == '~' ? e.find(want.substr(1)) != std::string::npos : e.rfind(want, 0) == 0) {
      return true;
    }
  }
  return false;
}

TEST_P(ConfigErrors, ReportedWithKeyPath) {
  const auto& c = GetParam();
  auto r = load(c.toml);
  EXPECT_FALSE(r.config.has_value()) << c.name << ": loaded without errors";
  for (const auto& want : c.expected) {
    EXPECT_TRUE(has_error(r.errors, want))
        << c.name << ": no error \"" << want << "\" in" << all(r.errors);
  }
  for (const auto& e : r.errors) {
    EXPECT_FALSE(e.empty());
    if (c.name != "toml syntax error") {
      EXPECT_EQ(e.find('\n'), std::string::npos) << "one line per problem: " << e;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, ConfigErrors,
    ::testing::Values(
        ErrorCase{"second cluster bad url",
                  std::string(kGoodCluster) + R"toml(
[[clusters]]
name = "c1"
type = "clustered"
url = "ftp://h1.example.com"
token_file = "/etc/t1"
)toml",
                  {"clusters[1].url: invalid URL \"ftp://h1.example.com\""}},
        ErrorCase{"bad max_lifetime",
                  "[[policies]]\nname = \"p\"\nkind = \"max_lifetime\"\nmax_lifetime = \"90x\"\n",
                  {"policies[0].max_lifetime: invalid duration \"90x\""}},
        ErrorCase{"exemption more than a year ahead",
                  "[[policies]]\nname = \"p\"\nkind = \"max_age\"\nmax_age = \"1d\"\n"
                  "[[exemptions]]\npolicy = \"p\"\ntoken_id = \"t\"\nreason = \"r\"\n"
                  "expires = 2027-06-03T00:00:00Z\n",
                  {"exemptions[0].expires: 2027-06-03T00:00:00.000Z is more than one year ahead"}},
        // Found by fuzz/config_fuzz.cpp: toml11 converts through nanosecond system_clock, which
        // overflowed beyond 2262 (and before 1678), so this read as a date in the past.
        ErrorCase{"exemption centuries ahead",
                  "[[policies]]\nname = \"p\"\nkind = \"max_age\"\nmax_age = \"1d\"\n"
                  "[[exemptions]]\npolicy = \"p\"\ntoken_id = \"t\"\nreason = \"r\"\n"
                  "expires = 2300-01-01T00:00:00Z\n",
                  {"exemptions[0].expires: 2300-01-01T00:00:00.000Z is more than one year ahead"}},
        ErrorCase{
            "unknown daemon key", "[daemon]\ncolour = \"red\"\n", {"daemon.colour: unknown key"}},
        ErrorCase{"typo gets a suggestion",
                  "[daemon]\nlog_levl = \"info\"\n",
                  {"daemon.log_levl: unknown key (did you mean \"log_level\"?)"}},
        ErrorCase{"unknown keys everywhere",
                  std::string(kGoodCluster) + R"toml(
nme = "x"
colour = "blue"
[http]
listn = "127.0.0.1:1"
[safety]
max_vanished = 3
[alerting]
slack = "x"
[[policies]]
name = "p"
kind = "max_age"
max_age = "1d"
sevrity = "info"
scope = { clustrs = ["c0"] }
[[exemptions]]
policy = "p"
token_id = "t"
reason = "r"
expires = 2026-07-01T00:00:00Z
ticket = "OPS-1"
[[cluster]]
name = "typo"
)toml",
                  {"clusters[0].nme: unknown key (did you mean \"name\"?)",
                   "clusters[0].colour: unknown key",
                   "http.listn: unknown key (did you mean \"listen\"?)",
                   "safety.max_vanished: unknown key", "alerting.slack: unknown key",
                   "policies[0].sevrity: unknown key (did you mean \"severity\"?)",
                   "policies[0].scope.clustrs: unknown key (did you mean \"clusters\"?)",
                   "exemptions[0].ticket: unknown key",
                   "cluster: unknown key (did you mean \"clusters\"?)"}},
        ErrorCase{"wrong types",
                  R"toml(
[daemon]
poll_interval = true
max_concurrent_polls = "4"
log_level = 3
[safety]
max_actions_per_cycle = "10"
max_vanished_percent = 1.5
[[clusters]]
name = 7
type = "clustered"
url = "https://h.example.com"
token_file = "/t"
labels = "env=prod"
[[policies]]
name = "p"
kind = "forbidden_grant"
databases = "prod"
actions = ["write", 1]
require_approval = "yes"
)toml",
                  {"daemon.poll_interval: expected a string, found a boolean",
                   "daemon.max_concurrent_polls: expected an integer, found a string",
                   "daemon.log_level: expected a string, found an integer",
                   "safety.max_actions_per_cycle: expected an integer, found a string",
                   "safety.max_vanished_percent: expected an integer, found a float",
                   "clusters[0].name: expected a string, found an integer",
                   "clusters[0].labels: expected a table",
                   "policies[0].databases: expected an array of strings, e.g. [\"prod\"]",
                   "policies[0].actions[1]: expected a string, found an integer",
                   "policies[0].require_approval: expected true or false, found a string"}},
        ErrorCase{"duration given as integer",
                  "[daemon]\npoll_interval = 60\n[[policies]]\nname = \"p\"\nkind = \"max_age\"\n"
                  "max_age = 30\ngrace_period = 0\n",
                  {"daemon.poll_interval: expected a string, found an integer",
                   "~durations are strings like \"30s\"", "policies[0].max_age: expected a string",
                   "policies[0].grace_period: expected a string"}},
        ErrorCase{"duration out of range",
                  "[daemon]\npoll_interval = \"0s\"\npoll_jitter = \"2h\"\n",
                  {"daemon.poll_interval: must be between 1s and 7d, not 0s",
                   "daemon.poll_jitter: must be between 0s and 1h, not 2h"}},
        ErrorCase{"dedicated without account_id",
                  "[[clusters]]\nname = \"d\"\ntype = \"dedicated\"\nurl = "
                  "\"https://console.example.com/api/v0\"\n"
                  "token_file = \"/t\"\ncluster_id = \"33333333-3333-4333-8333-333333333333\"\n",
                  {"clusters[0].account_id: is required for type dedicated"}},
        ErrorCase{"dedicated ids not uuids",
                  "[[clusters]]\nname = \"d\"\ntype = \"dedicated\"\nurl = "
                  "\"https://console.example.com/api/v0\"\n"
                  "token_file = \"/t\"\naccount_id = \"acct\"\ncluster_id = \"\"\n",
                  {"clusters[0].account_id: \"acct\" is not a UUID", "clusters[0].cluster_id:"}},
        ErrorCase{
            "influxctl with url and token_file",
            "[[clusters]]\nname = \"x\"\ntype = \"influxctl\"\nurl = \"https://h.example.com\"\n"
            "token_file = \"/t\"\ninfluxctl_config = \"/c\"\n",
            {"clusters[0].url: is not used by type influxctl",
             "clusters[0].token_file: is not used by type influxctl"}},
        ErrorCase{"influxctl without its config",
                  "[[clusters]]\nname = \"x\"\ntype = \"influxctl\"\n",
                  {"clusters[0].influxctl_config: is required for type influxctl"}},
        ErrorCase{"rest options on the wrong type",
                  std::string(kGoodCluster) +
                      "account_id = \"11111111-1111-4111-8111-111111111111\"\n"
                      "influxctl_path = \"/bin/influxctl\"\nprofile = \"p\"\n",
                  {"clusters[0].account_id: is not used by type clustered",
                   "clusters[0].influxctl_path: is not used by type clustered",
                   "clusters[0].profile: is not used by type clustered"}},
        ErrorCase{"cluster required fields",
                  "[[clusters]]\nname = \"Prod EU\"\n[[clusters]]\ntype = \"mystery\"\n",
                  {"clusters[0].name: \"Prod EU\" must be", "clusters[0].type: is required",
                   "clusters[1].name: is required",
                   "clusters[1].type: must be clustered, dedicated, influxctl or influxdb3"}},
        ErrorCase{"clustered requires url and token_file",
                  "[[clusters]]\nname = \"c\"\ntype = \"clustered\"\n",
                  {"clusters[0].url: is required for type clustered",
                   "clusters[0].token_file: is required for type clustered"}},
        ErrorCase{"credentials in a cluster url",
                  "[[clusters]]\nname = \"c\"\ntype = \"clustered\"\nurl = "
                  "\"https://u:p@h.example.com\"\n"
                  "token_file = \"/t\"\n",
                  {"clusters[0].url: invalid URL"}},
        ErrorCase{"bad label name",
                  std::string(kGoodCluster) + "labels = { \"team name\" = \"x\", env = 1 }\n",
                  {"clusters[0].labels.env: expected a string, found an integer"}},
        ErrorCase{"bad label name alone",
                  std::string(kGoodCluster) + "labels = { \"9team\" = \"x\" }\n",
                  {"clusters[0].labels: label name \"9team\""}},
        ErrorCase{"restrict on a non-grant kind",
                  "[[policies]]\nname = \"p\"\nkind = \"max_lifetime\"\nmax_lifetime = \"90d\"\n"
                  "action = \"restrict\"\n",
                  {"policies[0].action: restrict is only possible for forbidden_grant and "
                   "all_databases_grant"}},
        ErrorCase{"expires_soon with revoke",
                  "[[policies]]\nname = \"p\"\nkind = \"expires_soon\"\nwithin = \"7d\"\naction = "
                  "\"revoke\"\n",
                  {"policies[0].action: expires_soon is a notice; its action must be alert"}},
        ErrorCase{"notify_before: bad, repeated, wider than within",
                  "[[policies]]\nname = \"p\"\nkind = \"expires_soon\"\nwithin = \"7d\"\n"
                  "notify_before = [\"30d\", \"7d\", \"7d\", \"soon\", \"10s\"]\n"
                  "[[policies]]\nname = \"q\"\nkind = \"expires_soon\"\nnotify_before = []\n"
                  "[[policies]]\nname = \"r\"\nkind = \"max_age\"\nmax_age = \"9d\"\n"
                  "notify_before = [\"1d\"]\n",
                  {"policies[0].notify_before: \"7d\" is listed twice",
                   "~policies[0].notify_before: invalid duration",
                   "policies[0].notify_before: \"10s\" must be between 1m and",
                   "policies[0].within: 7d is smaller than the largest notify_before threshold 30d",
                   "policies[1].notify_before: must list at least one duration",
                   "policies[2].notify_before: is not a parameter of kind max_age"}},
        ErrorCase{"orphaned: restrict refused, known_owners only for orphaned",
                  "[[policies]]\nname = \"o\"\nkind = \"orphaned\"\naction = \"restrict\"\n"
                  "known_owners = []\n"
                  "[[policies]]\nname = \"p\"\nkind = \"max_age\"\nmax_age = \"9d\"\n"
                  "known_owners = [\"alice\"]\n",
                  {"policies[0].action: restrict is only possible for forbidden_grant",
                   "policies[0].known_owners: must list at least one owner",
                   "policies[1].known_owners: is not a parameter of kind max_age"}},
        ErrorCase{"policy parameter of another kind",
                  "[[policies]]\nname = \"p\"\nkind = \"max_lifetime\"\nmax_lifetime = \"90d\"\n"
                  "max_age = \"30d\"\npattern = \"x\"\n",
                  {"policies[0].max_age: is not a parameter of kind max_lifetime",
                   "policies[0].pattern: is not a parameter of kind max_lifetime"}},
        ErrorCase{"policy required parameters",
                  "[[policies]]\nname = \"a\"\nkind = \"max_lifetime\"\n"
                  "[[policies]]\nname = \"b\"\nkind = \"forbidden_grant\"\n"
                  "[[policies]]\nname = \"c\"\nkind = \"max_databases\"\n"
                  "[[policies]]\nname = \"d\"\nkind = \"description_pattern\"\n"
                  "[[policies]]\nname = \"e\"\nkind = \"expires_soon\"\n"
                  "[[policies]]\nname = \"f\"\nkind = \"max_age\"\n",
                  {"policies[0].max_lifetime: is required for kind max_lifetime",
                   "policies[1].actions: is required for kind forbidden_grant",
                   "policies[1].databases: is required for kind forbidden_grant",
                   "policies[2].max: is required for kind max_databases",
                   "policies[3].pattern: is required for kind description_pattern",
                   "policies[4].within: is required for kind expires_soon",
                   "policies[5].max_age: is required for kind max_age"}},
        ErrorCase{"policy bad values",
                  "[[policies]]\nname = \"p\"\nkind = \"forbidden_grant\"\nactions = [\"delete\"]\n"
                  "databases = []\nseverity = \"high\"\naction = \"nuke\"\nmode = \"dry\"\n"
                  "[[policies]]\nname = \"q\"\nkind = \"max_databases\"\nmax = -1\n"
                  "[[policies]]\nkind = \"unheard_of\"\n",
                  {"policies[0].actions: \"delete\" is not an action",
                   "policies[0].databases: must list at least one",
                   "policies[0].severity: must be info, warning or critical",
                   "policies[0].action: must be alert, restrict or revoke",
                   "policies[0].mode:", "policies[1].max: must be between 0 and 1000000, not -1",
                   "policies[2].name: is required",
                   "policies[2].kind: unknown policy kind \"unheard_of\""}},
        ErrorCase{
            "invalid regexes",
            "[[policies]]\nname = \"p\"\nkind = \"description_pattern\"\npattern = \"(unclosed\"\n"
            "scope = { description = \"[z-a]\" }\n"
            "[[policies]]\nname = \"q\"\nkind = \"description_pattern\"\npattern = '(a)\\1'\n"
            "[[exemptions]]\npolicy = \"p\"\ndescription = \"*bad\"\nreason = \"r\"\n"
            "expires = 2026-07-01T00:00:00Z\n",
            {"policies[0].pattern: invalid regular expression", "policies[0].scope.description:",
             "policies[1].pattern: invalid regular expression", "exemptions[0].description:"}},
        ErrorCase{
            "exemption naming unknown policy and cluster",
            std::string(kGoodCluster) +
                "[[exemptions]]\npolicy = \"ghost\"\ntoken_id = \"t\"\ncluster = \"nowhere\"\n"
                "reason = \"r\"\nexpires = 2026-07-01T00:00:00Z\n",
            {"exemptions[0].policy: no policy is named \"ghost\"",
             "exemptions[0].cluster: no cluster is named \"nowhere\""}},
        ErrorCase{"exemption shape",
                  "[[exemptions]]\npolicy = \"*\"\ntoken_id = \"t\"\ndescription = \"^x\"\nreason "
                  "= \"r\"\n"
                  "expires = 2026-07-01T00:00:00Z\n"
                  "[[exemptions]]\npolicy = \"*\"\nreason = \"  \"\nexpires = 2026-07-01T10:00:00\n"
                  "[[exemptions]]\ntoken_id = \"\"\n",
                  {"exemptions[0].token_id: give either token_id or description, not both",
                   "exemptions[1].token_id: an exemption needs token_id or description",
                   "exemptions[1].reason: must say why",
                   "exemptions[1].expires: a date-time needs a time zone",
                   "exemptions[2].policy: is required", "exemptions[2].token_id: must not be empty",
                   "exemptions[2].reason: is required", "exemptions[2].expires: is required"}},
        ErrorCase{"duplicate names",
                  std::string(kGoodCluster) + kGoodCluster +
                      "[[policies]]\nname = \"p\"\nkind = \"max_age\"\nmax_age = \"1d\"\n"
                      "[[policies]]\nname = \"p\"\nkind = \"max_age\"\nmax_age = \"2d\"\n",
                  {"clusters[1].name: \"c0\" is used by another cluster",
                   "policies[1].name: \"p\" is used by another policy"}},
        ErrorCase{"sections of the wrong shape",
                  "daemon = 5\nhttp = [1]\nclusters = \"c\"\n[[policies]]\nscope = \"prod\"\nname "
                  "= \"p\"\n"
                  "kind = \"max_age\"\nmax_age = \"1d\"\n",
                  {"daemon: expected a table", "http: expected a table",
                   "clusters: expected an array of tables", "policies[0].scope: expected a table"}},
        ErrorCase{"bad listen and urls",
                  "[http]\nlisten = \"localhost\"\n[alerting]\nalertmanager_url = \"am:9093\"\n"
                  "webhook_url = \"https://hooks.example.com/x?y#z\"\n",
                  {"http.listen: expected \"host:port\"", "alerting.alertmanager_url: invalid URL",
                   "alerting.webhook_url: invalid URL"}},
        ErrorCase{"out of range integers",
                  "[daemon]\nmax_concurrent_polls = 0\n[safety]\nmax_actions_percent = 101\n"
                  "max_vanished_percent = -1\n",
                  {"daemon.max_concurrent_polls: must be between 1 and 64, not 0",
                   "safety.max_actions_percent: must be between 0 and 100, not 101",
                   "safety.max_vanished_percent: must be between 0 and 100, not -1"}},
        ErrorCase{"enum values",
                  "[daemon]\nmode = \"yolo\"\nlog_level = \"loud\"\nlog_format = \"xml\"\n",
                  {"daemon.mode: must be \"enforce\" or \"monitor\", not \"yolo\"",
                   "daemon.log_level:", "daemon.log_format: must be \"text\" or \"json\""}},
        ErrorCase{"toml syntax error",
                  "[daemon\npoll_interval = \"1m\"\n",
                  {"<string>: TOML syntax error"}}),
    tw::testing::CaseName());

TEST(LoadConfig, EveryProblemIsReportedAtOnce) {
  auto r = load(std::string(R"toml(
[daemon]
poll_interval = "forever"
colour = "red"
[safety]
max_vanished_percent = 500
)toml") + kGoodCluster +
                R"toml(
[[clusters]]
name = "c1"
type = "dedicated"
url = "https://console.example.com"
token_file = "/t"
cluster_id = "33333333-3333-4333-8333-333333333333"
[[policies]]
name = "p"
kind = "max_lifetime"
max_lifetime = "90x"
action = "restrict"
[[exemptions]]
policy = "missing"
token_id = "t"
reason = "r"
expires = 2030-01-01T00:00:00Z
)toml");
  EXPECT_FALSE(r.config.has_value());
  std::vector<std::string> expected{"daemon.poll_interval:",        "daemon.colour: unknown key",
                                    "safety.max_vanished_percent:", "clusters[1].account_id:",
                                    "policies[0].max_lifetime:",    "policies[0].action:",
                                    "exemptions[0].expires:",       "exemptions[0].policy:"};
  for (const auto& want : expected) EXPECT_TRUE(has_error(r.errors, want)) << want << all(r.errors);
  EXPECT_GE(r.errors.size(), expected.size());
}

TEST(LoadConfig, ErrorsCarryTheLine) {
  auto r = load(std::string("[daemon]\n\npoll_interval = \"1x\"\n") + kGoodCluster);
  ASSERT_EQ(r.errors.size(), 1u) << all(r.errors);
  EXPECT_NE(r.errors[0].find("(line 3)"), std::string::npos) << r.errors[0];
}

// toml11 3.7 reads past its buffer when it reports invalid UTF-8 in a string (the config
// fuzzer found it); the loader refuses such text itself, naming the line and column.
TEST(LoadConfig, InvalidUtf8IsRefusedWithItsPosition) {
  auto r = load(std::string(kGoodCluster) +
                "[[policies]]\nname = \"p\"\nkind = \"description_pattern\"\n"
                "pattern = '^svc-\xac\xac\\d+$'\n");
  ASSERT_FALSE(r.config.has_value());
  ASSERT_EQ(r.errors.size(), 1u) << all(r.errors);
  EXPECT_EQ(r.errors[0],
            "<string>: line 10, column 17: not valid UTF-8 (a TOML file must be UTF-8 text)");
  // Valid multi-byte text is counted in characters.
  auto ok = load(std::string(kGoodCluster) + "labels = { team = \"caf\u00e9\" }\n");
  EXPECT_TRUE(ok.config.has_value()) << all(ok.errors);
}

TEST(LoadConfig, SecretsInUrlsNeverAppearInErrors) {
  auto r = load(
      "[[clusters]]\nname = \"c\"\ntype = \"clustered\"\n"
      "url = \"https://admin:Hunter2Secret@h.example.com/api/v0\"\ntoken_file = \"/t\"\n"
      "[alerting]\nwebhook_url = \"https://user:WebhookSecret@hooks.example.com/x\"\n");
  EXPECT_FALSE(r.config.has_value());
  for (const auto& e : r.errors) {
    EXPECT_EQ(e.find("Hunter2Secret"), std::string::npos) << e;
    EXPECT_EQ(e.find("WebhookSecret"), std::string::npos) << e;
  }
}

// TOML date-times carry their own offset: the host's time zone (and its DST) must not matter.
TEST(LoadConfig, DateTimesDoNotDependOnTheHostTimeZone) {
  const char* saved = std::getenv("TZ");
  std::string restore = saved != nullptr ? saved : "";
  const std::string text =
      "[[exemptions]]\npolicy = \"*\"\ntoken_id = \"a\"\nreason = \"r\"\n"
      "expires = 2026-07-15T12:30:00Z\n"
      "[[exemptions]]\npolicy = \"*\"\ntoken_id = \"b\"\nreason = \"r\"\n"
      "expires = 2026-07-15T12:30:00.250+02:00\n"
      "[[exemptions]]\npolicy = \"*\"\ntoken_id = \"c\"\nreason = \"r\"\n"
      "expires = 2026-12-15T23:30:00-05:00\n"
      "[[exemptions]]\npolicy = \"*\"\ntoken_id = \"d\"\nreason = \"r\"\n"
      "expires = 2026-10-25\n" +
      std::string(kGoodCluster);
  for (const char* tz :
       {"UTC0", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata"}) {
    ::setenv("TZ", tz, 1);
    ::tzset();
    auto r = load(text);
    ASSERT_TRUE(r.config.has_value()) << tz << all(r.errors);
    const auto& e = r.config->exemptions;
    ASSERT_EQ(e.size(), 4u);
    EXPECT_EQ(format_timestamp(e[0].expires), "2026-07-15T12:30:00.000Z") << tz;
    EXPECT_EQ(format_timestamp(e[1].expires), "2026-07-15T10:30:00.250Z") << tz;
    EXPECT_EQ(format_timestamp(e[2].expires), "2026-12-16T04:30:00.000Z") << tz;
    EXPECT_EQ(format_timestamp(e[3].expires), "2026-10-25T00:00:00.000Z") << tz;
  }
  if (saved != nullptr) {
    ::setenv("TZ", restore.c_str(), 1);
  } else {
    ::unsetenv("TZ");
  }
  ::tzset();
}

TEST(LoadConfig, ExemptionExactlyAtTheLimit) {
  std::string base = std::string(kGoodCluster) +
                     "[[exemptions]]\npolicy = \"*\"\ntoken_id = \"t\"\nreason = \"r\"\nexpires = ";
  EXPECT_TRUE(
      load(base + "\"" + format_timestamp(kNow + hours(24 * 365)) + "\"\n").config.has_value());
  EXPECT_FALSE(
      load(base + "\"" + format_timestamp(kNow + hours(24 * 367)) + "\"\n").config.has_value());
}

TEST(LoadConfigFile, ReadsAFileAndNamesItInErrors) {
  tw::testing::TempDir dir;
  std::string path = dir.write("tokenwarden.toml",
                               std::string("[daemon]\npoll_interval = \"5m\"\n") + kGoodCluster);
  auto r = load_config_file(path, kNow);
  ASSERT_TRUE(r.config.has_value()) << all(r.errors);
  EXPECT_EQ(r.config->path, path);
  EXPECT_EQ(r.config->daemon.poll_interval, minutes(5));

  auto missing = load_config_file(dir.file("nope.toml"), kNow);
  ASSERT_EQ(missing.errors.size(), 1u);
  EXPECT_EQ(missing.errors[0].rfind(dir.file("nope.toml"), 0), 0u) << missing.errors[0];
}

// --- render_config / redact_url ---------------------------------------------------------------

struct RedactCase {
  std::string name;
  std::string url;
  bool keep_path;
  std::string out;
};

class RedactUrl : public ::testing::TestWithParam<RedactCase> {};

TEST_P(RedactUrl, Table) {
  EXPECT_EQ(redact_url(GetParam().url, GetParam().keep_path), GetParam().out);
}

INSTANTIATE_TEST_SUITE_P(
    Table, RedactUrl,
    ::testing::Values(
        RedactCase{"empty", "", true, ""},
        RedactCase{"plain kept", "http://127.0.0.1:9093", true, "http://127.0.0.1:9093"},
        RedactCase{"path kept", "https://am.example.com/api/v2", true,
                   "https://am.example.com/api/v2"},
        RedactCase{"credentials", "https://user:secret@host/x", true, "https://[redacted]@host/x"},
        RedactCase{"credentials no path", "https://user:secret@host", false,
                   "https://[redacted]@host"},
        RedactCase{"query", "https://am.example.com/api?token=secret", true,
                   "https://am.example.com/api?[redacted]"},
        RedactCase{"webhook path", "https://hooks.example.com/services/T0/B0/secret", false,
                   "https://hooks.example.com/[redacted]"},
        RedactCase{"webhook root", "https://hooks.example.com/", false,
                   "https://hooks.example.com"},
        RedactCase{"webhook with credentials", "https://u:secret@hooks.example.com/p/secret", false,
                   "https://[redacted]@hooks.example.com/[redacted]"},
        RedactCase{"not a url", "secret-thing", true, "[redacted]"}),
    tw::testing::CaseName());

TEST(RedactUrlSecrets, QueryOrFragmentRightAfterTheHostIsRedacted) {
  for (bool keep_path : {true, false}) {
    for (const char* url : {"https://hooks.example.com?token=secret",
                            "https://h.example.com#secret", "https://u:p@h.example.com?secret"}) {
      std::string out = redact_url(url, keep_path);
      EXPECT_EQ(out.find("secret"), std::string::npos)
          << url << " keep_path=" << keep_path << " -> " << out;
      EXPECT_EQ(out.rfind("https://", 0), 0u) << out;
    }
  }
}

TEST(RenderConfig, RedactsWebhookPathAndUrlCredentials) {
  auto r = load(kComplete);
  ASSERT_TRUE(r.config.has_value()) << all(r.errors);
  Config c = *r.config;
  std::string out = render_config(c);
  EXPECT_EQ(out.find("XXXXSECRETXXXX"), std::string::npos) << out;
  EXPECT_NE(out.find("webhook_url = \"https://hooks.example.com/[redacted]\""), std::string::npos)
      << out;
  EXPECT_NE(out.find("alertmanager_url = \"http://127.0.0.1:9093\""), std::string::npos) << out;

  // Credentials cannot be loaded from a file, but a Config built otherwise is still redacted.
  c.alerting.alertmanager_url = "https://user:Pa55w0rdX@am.example.com/x";
  c.clusters[0].source.url = "https://user:Pa55w0rdX@host/x";
  out = render_config(c);
  EXPECT_EQ(out.find("Pa55w0rdX"), std::string::npos) << out;
  EXPECT_NE(out.find("https://[redacted]@am.example.com/x"), std::string::npos) << out;
  EXPECT_NE(out.find("https://[redacted]@host/x"), std::string::npos) << out;
}

TEST(RenderConfig, WebhookSecretInAQueryWithoutPathIsRedacted) {
  // The loader refuses query strings, without quoting the secret in its error ...
  auto r = load("[alerting]\nwebhook_url = \"https://hooks.example.com?token=S3cr3tHook\"\n");
  ASSERT_FALSE(r.config.has_value());
  EXPECT_EQ(all(r.errors).find("S3cr3tHook"), std::string::npos) << all(r.errors);
  EXPECT_NE(all(r.errors).find("alerting.webhook_url: "), std::string::npos) << all(r.errors);
  // ... and a Config built otherwise is still redacted when printed.
  auto ok = load(kComplete);
  ASSERT_TRUE(ok.config.has_value());
  ok.config->alerting.webhook_url = "https://hooks.example.com?token=S3cr3tHook";
  std::string out = render_config(*ok.config);
  EXPECT_EQ(out.find("S3cr3tHook"), std::string::npos) << out;
  EXPECT_EQ(redact_url("https://hooks.example.com#S3cr3tHook", true).find("S3cr3tHook"),
            std::string::npos);
}

TEST(RenderConfig, ShowsEffectiveValuesAndDefaults) {
  auto r = load(kComplete);
  ASSERT_TRUE(r.config.has_value());
  std::string out = render_config(*r.config);
  EXPECT_EQ(out.rfind("# Effective configuration of <string> (sha256 " + r.config->hash + ")\n", 0),
            0u)
      << out;
  for (const char* line :
       {"poll_interval = \"2m\"", "mode = \"monitor\"", "log_format = \"json\"",
        "max_vanished_percent = 30", "name = \"dedicated-1\"",
        "account_id = \"11111111-1111-4111-8111-111111111111\"", "timeout = \"10s\"",
        "max_lifetime = \"90d\"", "require_expiry = false", "grace_period = \"3d\"",
        "actions = [\"read\", \"write\"]", "expires = 2027-03-01T00:00:00.000Z",
        "token_file = \"dedicated.token\""}) {
    EXPECT_NE(out.find(std::string("\n") + line + "\n"), std::string::npos) << line << "\n" << out;
  }
}

std::string without_header(const std::string& s) {
  auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

TEST(RenderConfig, RoundTripsThroughTheLoader) {
  auto first = load(kComplete);
  ASSERT_TRUE(first.config.has_value()) << all(first.errors);
  std::string rendered = render_config(*first.config);
  auto second = load(rendered);
  ASSERT_TRUE(second.config.has_value()) << all(second.errors) << "\n" << rendered;
  const Config& a = *first.config;
  const Config& b = *second.config;
  EXPECT_EQ(without_header(render_config(b)), without_header(rendered));

  EXPECT_EQ(b.daemon.database, a.daemon.database);
  EXPECT_EQ(b.daemon.poll_interval, a.daemon.poll_interval);
  EXPECT_EQ(b.daemon.mode, a.daemon.mode);
  EXPECT_EQ(b.daemon.log_level, a.daemon.log_level);
  EXPECT_EQ(b.daemon.max_concurrent_polls, a.daemon.max_concurrent_polls);
  EXPECT_EQ(b.daemon.poll_jitter, a.daemon.poll_jitter);
  EXPECT_EQ(b.http.listen, a.http.listen);
  EXPECT_EQ(b.safety.max_vanished_percent, a.safety.max_vanished_percent);
  EXPECT_EQ(b.alerting.alertmanager_url, a.alerting.alertmanager_url);
  EXPECT_EQ(b.alerting.webhook_url, "https://hooks.example.com/[redacted]");
  ASSERT_EQ(b.clusters.size(), a.clusters.size());
  for (std::size_t i = 0; i < a.clusters.size(); ++i) {
    const auto& x = a.clusters[i];
    const auto& y = b.clusters[i];
    EXPECT_EQ(y.name, x.name);
    EXPECT_EQ(y.source.type, x.source.type);
    EXPECT_EQ(y.source.url, x.source.url);
    EXPECT_EQ(y.source.token_file, x.source.token_file);
    EXPECT_EQ(y.source.ca_file, x.source.ca_file);
    EXPECT_EQ(y.source.timeout, x.source.timeout);
    EXPECT_EQ(y.source.account_id, x.source.account_id);
    EXPECT_EQ(y.source.cluster_id, x.source.cluster_id);
    EXPECT_EQ(y.source.influxctl_path, x.source.influxctl_path);
    EXPECT_EQ(y.source.influxctl_config, x.source.influxctl_config);
    EXPECT_EQ(y.source.profile, x.source.profile);
    EXPECT_EQ(y.poll_interval, x.poll_interval);
    EXPECT_EQ(y.labels, x.labels);
  }
  ASSERT_EQ(b.policies.size(), a.policies.size());
  for (std::size_t i = 0; i < a.policies.size(); ++i) {
    const auto& x = a.policies[i];
    const auto& y = b.policies[i];
    EXPECT_EQ(y.name, x.name);
    EXPECT_EQ(y.kind, x.kind);
    EXPECT_EQ(y.max_lifetime, x.max_lifetime);
    EXPECT_EQ(y.require_expiry, x.require_expiry);
    EXPECT_EQ(y.max_age, x.max_age);
    EXPECT_EQ(y.actions, x.actions);
    EXPECT_EQ(y.databases, x.databases);
    EXPECT_EQ(y.max, x.max);
    EXPECT_EQ(y.pattern, x.pattern);
    EXPECT_EQ(y.within, x.within);
    EXPECT_EQ(y.severity, x.severity);
    EXPECT_EQ(y.action, x.action);
    EXPECT_EQ(y.mode.value_or(a.daemon.mode), x.mode.value_or(a.daemon.mode));
    EXPECT_EQ(y.grace_period, x.grace_period);
    EXPECT_EQ(y.min_token_age, x.min_token_age);
    EXPECT_EQ(y.require_approval, x.require_approval);
    EXPECT_EQ(y.scope.clusters, x.scope.clusters);
    EXPECT_EQ(y.scope.description, x.scope.description);
    EXPECT_EQ(y.scope.labels, x.scope.labels);
  }
  ASSERT_EQ(b.exemptions.size(), a.exemptions.size());
  for (std::size_t i = 0; i < a.exemptions.size(); ++i) {
    EXPECT_EQ(b.exemptions[i].policy, a.exemptions[i].policy);
    EXPECT_EQ(b.exemptions[i].token_id, a.exemptions[i].token_id);
    EXPECT_EQ(b.exemptions[i].description, a.exemptions[i].description);
    EXPECT_EQ(b.exemptions[i].cluster, a.exemptions[i].cluster);
    EXPECT_EQ(b.exemptions[i].reason, a.exemptions[i].reason);
    EXPECT_EQ(b.exemptions[i].expires, a.exemptions[i].expires);
  }
}

TEST(RenderConfig, RoundTripsHostileStrings) {
  auto r = load(R"toml(
[daemon]
database = "/var/lib/tw/a \"quoted\" \\ path\u0007.db"
[[clusters]]
name = "c"
type = "clustered"
url = "https://h.example.com/api/v0"
token_file = "t\ttab"
labels = { team = "caf\u00e9 \"ops\"" }
[[policies]]
name = "p"
kind = "description_pattern"
pattern = '^svc-\d+\\x$'
scope = { labels = { team = "x" } }
)toml");
  ASSERT_TRUE(r.config.has_value()) << all(r.errors);
  auto back = load(render_config(*r.config));
  ASSERT_TRUE(back.config.has_value()) << all(back.errors) << "\n" << render_config(*r.config);
  EXPECT_EQ(back.config->daemon.database, r.config->daemon.database);
  EXPECT_EQ(back.config->clusters[0].source.token_file, "t\ttab");
  EXPECT_EQ(back.config->clusters[0].labels, r.config->clusters[0].labels);
  EXPECT_EQ(back.config->policies[0].pattern, "^svc-\\d+\\\\x$");
}

TEST(RenderConfig, ScopeLabelKeysAreCheckedAndRoundTrip) {
  // A label name that cannot be a label is refused with its key path ...
  auto bad = load(R"toml(
[[policies]]
name = "p"
kind = "max_age"
max_age = "30d"
scope = { labels = { "team name" = "ops" } }
)toml");
  ASSERT_FALSE(bad.config.has_value());
  EXPECT_NE(all(bad.errors).find("policies[0].scope.labels: label name \"team name\""),
            std::string::npos)
      << all(bad.errors);
  // ... and what the loader accepts renders to a configuration that loads again.
  auto r = load(std::string(kGoodCluster) + R"toml(
[[policies]]
name = "p"
kind = "max_age"
max_age = "30d"
scope = { labels = { team_name = "ops \"core\"" } }
)toml");
  ASSERT_TRUE(r.config.has_value()) << all(r.errors);
  auto back = load(render_config(*r.config));
  ASSERT_TRUE(back.config.has_value()) << all(back.errors) << "\n" << render_config(*r.config);
  EXPECT_EQ(back.config->policies[0].scope.labels, r.config->policies[0].scope.labels);
}

// --- the web config file ([http] web_config) ----------------------------------------------------

// Well-formed bcrypt hashes ($2<variant>$10$ + 53 characters); only the format is checked here.
std::string bcrypt_like(char variant) {
  return std::string("$2") + variant + "$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy";
}

class WebConfigFile : public ::testing::Test {
 protected:
  void SetUp() override {
    cert_ = dir_.write("cert.pem", "not parsed here\n");
    key_ = dir_.write("key.pem", "not parsed here\n");
    ca_ = dir_.write("ca.pem", "not parsed here\n");
  }
  // Writes the web config and loads it with the "web" prefix.
  std::optional<metrics::WebConfig> load_web(const std::string& text,
                                             const std::string& name = "web.toml") {
    path_ = dir_.write(name, text);
    errors_.clear();
    return load_web_config_file(path_, "web", errors_);
  }
  // Every error carries the prefix and the file; returns them joined for substring checks.
  std::string errors_text() const {
    for (const auto& e : errors_) {
      EXPECT_EQ(e.rfind("web: " + path_ + ": ", 0), 0u) << e;
    }
    return all(errors_);
  }

  tw::testing::TempDir dir_;
  std::string cert_, key_, ca_, path_;
  std::vector<std::string> errors_;
};

TEST_F(WebConfigFile, ValidTlsAndUsers) {
  auto web = load_web("[tls]\ncert_file = \"" + cert_ + "\"\nkey_file = \"" + key_ +
                      "\"\nclient_ca_file = \"" + ca_ + "\"\n\n[basic_auth.users]\nalice = \"" +
                      bcrypt_like('y') + "\"\nbob = \"" + bcrypt_like('b') +
                      "\"\n\"carol.smith\" = \"" + bcrypt_like('a') + "\"\n");
  ASSERT_TRUE(web.has_value()) << all(errors_);
  EXPECT_TRUE(errors_.empty());
  EXPECT_TRUE(web->tls());
  EXPECT_EQ(web->tls_cert_file, cert_);
  EXPECT_EQ(web->tls_key_file, key_);
  EXPECT_EQ(web->tls_client_ca_file, ca_);
  EXPECT_EQ(web->users, (std::map<std::string, std::string>{{"alice", bcrypt_like('y')},
                                                            {"bob", bcrypt_like('b')},
                                                            {"carol.smith", bcrypt_like('a')}}));
  EXPECT_EQ(bcrypt_like('y').size(), 60u);
}

TEST_F(WebConfigFile, EmptyFileMeansNoTlsAndNoAuth) {
  auto web = load_web("# nothing configured\n");
  ASSERT_TRUE(web.has_value()) << all(errors_);
  EXPECT_FALSE(web->tls());
  EXPECT_TRUE(web->tls_key_file.empty());
  EXPECT_TRUE(web->users.empty());
}

TEST_F(WebConfigFile, UsersWithoutTlsAndTlsWithoutUsers) {
  auto users = load_web("[basic_auth.users]\nprometheus = \"" + bcrypt_like('y') + "\"\n");
  ASSERT_TRUE(users.has_value()) << all(errors_);
  EXPECT_FALSE(users->tls());
  EXPECT_EQ(users->users.size(), 1u);

  auto tls = load_web("[tls]\ncert_file = \"" + cert_ + "\"\nkey_file = \"" + key_ + "\"\n");
  ASSERT_TRUE(tls.has_value()) << all(errors_);
  EXPECT_TRUE(tls->tls());
  EXPECT_TRUE(tls->tls_client_ca_file.empty());
  EXPECT_TRUE(tls->users.empty());
}

TEST_F(WebConfigFile, RelativeFilesAreResolvedAgainstTheWebConfigsDirectory) {
  std::filesystem::create_directories(dir_.path() / "etc" / "tls");
  const std::string cert = dir_.write("etc/tls/cert.pem", "x");
  const std::string key = dir_.write("etc/key.pem", "x");
  auto web =
      load_web("[tls]\ncert_file = \"tls/cert.pem\"\nkey_file = \"key.pem\"\nclient_ca_file = \"" +
                   ca_ + "\"\n",
               "etc/web.toml");
  ASSERT_TRUE(web.has_value()) << all(errors_);
  EXPECT_EQ(web->tls_cert_file, cert);
  EXPECT_EQ(web->tls_key_file, key);
  EXPECT_EQ(web->tls_client_ca_file, ca_) << "absolute names are kept";

  // Relative to the web config, not to the working directory or the main config.
  auto wrong =
      load_web("[tls]\ncert_file = \"cert.pem\"\nkey_file = \"key.pem\"\n", "etc/web.toml");
  EXPECT_FALSE(wrong.has_value());
  EXPECT_NE(errors_text().find(dir_.file("etc/cert.pem")), std::string::npos) << all(errors_);
}

TEST_F(WebConfigFile, CertAndKeyGoTogether) {
  EXPECT_FALSE(load_web("[tls]\ncert_file = \"" + cert_ + "\"\n").has_value());
  EXPECT_NE(errors_text().find("tls: cert_file and key_file must be set together"),
            std::string::npos)
      << all(errors_);
  EXPECT_FALSE(load_web("[tls]\nkey_file = \"" + key_ + "\"\n").has_value());
  EXPECT_NE(errors_text().find("tls: cert_file and key_file must be set together"),
            std::string::npos)
      << all(errors_);
}

TEST_F(WebConfigFile, ClientCaNeedsACertificate) {
  EXPECT_FALSE(load_web("[tls]\nclient_ca_file = \"" + ca_ + "\"\n").has_value());
  ASSERT_EQ(errors_.size(), 1u) << all(errors_);
  EXPECT_NE(errors_text().find("tls.client_ca_file: "), std::string::npos) << all(errors_);
}

TEST_F(WebConfigFile, FilesMustBeReadable) {
  const std::string missing = dir_.file("missing-key.pem");
  EXPECT_FALSE(load_web("[tls]\ncert_file = \"" + cert_ + "\"\nkey_file = \"" + missing + "\"\n")
                   .has_value());
  ASSERT_EQ(errors_.size(), 1u) << all(errors_);
  EXPECT_NE(errors_[0].find("\"" + missing + "\" is not readable"), std::string::npos)
      << errors_[0];

  const std::string missing_ca = dir_.file("missing-ca.pem");
  EXPECT_FALSE(load_web("[tls]\ncert_file = \"" + cert_ + "\"\nkey_file = \"" + key_ +
                        "\"\nclient_ca_file = \"" + missing_ca + "\"\n")
                   .has_value());
  EXPECT_NE(errors_text().find(missing_ca), std::string::npos) << all(errors_);
}

TEST_F(WebConfigFile, UnknownKeysAreErrorsAllReportedAtOnce) {
  EXPECT_FALSE(load_web("listen = \"0.0.0.0:9464\"\n\n[tls]\ncert_file = \"" + cert_ +
                        "\"\nkey_file = \"" + key_ +
                        "\"\ncertfile = \"x\"\n\n[basic_auth]\nuser = { alice = \"x\" }\n")
                   .has_value());
  const std::string text = errors_text();
  EXPECT_EQ(errors_.size(), 3u) << text;
  EXPECT_NE(text.find("web: " + path_ + ": listen: unknown key"), std::string::npos) << text;
  EXPECT_NE(text.find("tls.certfile: unknown key (did you mean \"cert_file\"?)"), std::string::npos)
      << text;
  EXPECT_NE(text.find("basic_auth.user: unknown key (did you mean \"users\"?)"), std::string::npos)
      << text;
}

TEST_F(WebConfigFile, WrongTypesAreErrors) {
  EXPECT_FALSE(load_web("tls = \"on\"\n").has_value());
  EXPECT_NE(errors_text().find("tls: expected a table"), std::string::npos) << all(errors_);

  EXPECT_FALSE(load_web("[tls]\ncert_file = 5\nkey_file = \"" + key_ + "\"\n").has_value());
  EXPECT_NE(errors_text().find("tls.cert_file: expected a string, found an integer"),
            std::string::npos)
      << all(errors_);

  EXPECT_FALSE(load_web("[basic_auth]\nusers = \"alice\"\n").has_value());
  EXPECT_NE(errors_text().find("basic_auth.users: expected a table"), std::string::npos)
      << all(errors_);

  EXPECT_FALSE(load_web("[basic_auth.users]\nalice = 12345\n").has_value());
  EXPECT_NE(errors_text().find("basic_auth.users.alice: expected a string, found an integer"),
            std::string::npos)
      << all(errors_);
}

TEST_F(WebConfigFile, BasicAuthThatIsNotATableIsAnErrorNotNoAuth) {
  // Read as "no users", this would turn authentication off without a word.
  auto web = load_web("basic_auth = \"alice:hunter2\"\n");
  EXPECT_FALSE(web.has_value()) << "authentication silently disabled";
  EXPECT_NE(errors_text().find("basic_auth: expected a table"), std::string::npos) << all(errors_);
  EXPECT_EQ(errors_text().find("hunter2"), std::string::npos) << all(errors_);
}

TEST_F(WebConfigFile, InvalidUserNames) {
  EXPECT_FALSE(
      load_web("[basic_auth.users]\n\"al:ice\" = \"" + bcrypt_like('y') + "\"\n").has_value());
  EXPECT_NE(errors_text().find("\"al:ice\" is not a valid user name"), std::string::npos)
      << all(errors_);
  EXPECT_FALSE(load_web("[basic_auth.users]\n\"\" = \"" + bcrypt_like('y') + "\"\n").has_value());
  EXPECT_NE(errors_text().find("\"\" is not a valid user name"), std::string::npos) << all(errors_);
}

struct BadHash {
  std::string name;
  std::string value;
};

class WebConfigBadHash : public WebConfigFile, public ::testing::WithParamInterface<BadHash> {};

TEST_P(WebConfigBadHash, IsRejectedWithoutEchoingTheValue) {
  const std::string& value = GetParam().value;
  auto web = load_web("[basic_auth.users]\nalice = \"" + value + "\"\nbob = \"" + bcrypt_like('y') +
                      "\"\n");
  EXPECT_FALSE(web.has_value());
  ASSERT_EQ(errors_.size(), 1u) << all(errors_);
  EXPECT_NE(errors_text().find("basic_auth.users.alice: expected a bcrypt hash"), std::string::npos)
      << all(errors_);
  // The value may be a password typed where the hash belongs: no part of it may be shown.
  if (!value.empty()) {
    EXPECT_EQ(errors_[0].find(value), std::string::npos) << errors_[0];
  }
  EXPECT_EQ(errors_[0].find("S3cr3t"), std::string::npos) << errors_[0];
}

INSTANTIATE_TEST_SUITE_P(
    Table, WebConfigBadHash,
    ::testing::Values(BadHash{"plain password", "S3cr3t-passw0rd"}, BadHash{"empty", ""},
                      BadHash{"59 characters", bcrypt_like('y').substr(0, 59)},
                      BadHash{"61 characters", bcrypt_like('y') + "S"},
                      BadHash{"unknown variant 2x", bcrypt_like('x')},
                      BadHash{"md5 crypt", "$1$S3cr3t$" + std::string(50, 'a')},
                      BadHash{"cost not digits", "$2y$1a$" + bcrypt_like('y').substr(7)},
                      BadHash{"invalid character", bcrypt_like('y').substr(0, 59) + "!"},
                      BadHash{"password of hash length", "S3cr3t" + std::string(54, 'x')},
                      BadHash{"htpasswd line", "alice:" + bcrypt_like('y').substr(0, 54)}),
    tw::testing::CaseName());

TEST_F(WebConfigFile, SyntaxErrorNamesTheLineButNotItsContent) {
  auto web = load_web("[basic_auth.users]\nalice = hunter2-S3cr3t\n");
  EXPECT_FALSE(web.has_value());
  ASSERT_EQ(errors_.size(), 1u) << all(errors_);
  EXPECT_NE(errors_text().find("TOML syntax error"), std::string::npos) << errors_[0];
  EXPECT_NE(errors_[0].find("line 2"), std::string::npos) << errors_[0];
  EXPECT_EQ(errors_[0].find("hunter2"), std::string::npos) << errors_[0];
  EXPECT_EQ(errors_[0].find('\n'), std::string::npos) << "one line: " << errors_[0];

  EXPECT_FALSE(load_web("[tls]\n[tls]\n").has_value());
  ASSERT_EQ(errors_.size(), 1u);
  EXPECT_NE(errors_text().find("TOML syntax error"), std::string::npos) << errors_[0];
}

TEST_F(WebConfigFile, MissingFileIsReportedWithThePrefixAndAppended) {
  std::vector<std::string> errors = {"earlier problem"};
  const std::string missing = dir_.file("no-such-web.toml");
  EXPECT_FALSE(load_web_config_file(missing, "http.web_config", errors).has_value());
  ASSERT_EQ(errors.size(), 2u) << all(errors);
  EXPECT_EQ(errors[0], "earlier problem") << "errors are appended";
  EXPECT_EQ(errors[1].rfind("http.web_config: ", 0), 0u) << errors[1];
  EXPECT_NE(errors[1].find(missing), std::string::npos) << errors[1];
}

TEST_F(WebConfigFile, EveryProblemIsReportedAtOnce) {
  const std::string missing = dir_.file("missing.pem");
  EXPECT_FALSE(load_web("[tls]\ncert_file = \"" + missing + "\"\nclient_ca_file = \"" + ca_ +
                        "\"\n[basic_auth.users]\nalice = \"nope\"\nbob = \"" + bcrypt_like('y') +
                        "\"\n")
                   .has_value());
  const std::string text = errors_text();
  EXPECT_NE(text.find("cert_file and key_file must be set together"), std::string::npos) << text;
  EXPECT_NE(text.find(missing), std::string::npos) << text;
  EXPECT_NE(text.find("basic_auth.users.alice"), std::string::npos) << text;
  EXPECT_EQ(text.find("basic_auth.users.bob"), std::string::npos) << text;
}

// Through the main configuration: [http] web_config is loaded and checked with it.
TEST_F(WebConfigFile, LoadedWithTheConfiguration) {
  const std::string web_path =
      dir_.write("web.toml", "[basic_auth.users]\nprometheus = \"" + bcrypt_like('y') + "\"\n");
  auto r = load("[http]\nlisten = \"127.0.0.1:9464\"\nweb_config = \"" + web_path + "\"\n" +
                kGoodCluster);
  ASSERT_TRUE(r.config.has_value()) << all(r.errors);
  EXPECT_EQ(r.config->http.web_config, web_path);
  EXPECT_EQ(r.config->http.web.users,
            (std::map<std::string, std::string>{{"prometheus", bcrypt_like('y')}}));

  auto defaults = load(std::string("[http]\nlisten = \"127.0.0.1:9464\"\n") + kGoodCluster);
  ASSERT_TRUE(defaults.config.has_value()) << all(defaults.errors);
  EXPECT_TRUE(defaults.config->http.web.users.empty());
  EXPECT_FALSE(defaults.config->http.web.tls());
}

TEST_F(WebConfigFile, ItsErrorsFailTheConfigurationWithTheKeyPath) {
  const std::string web_path =
      dir_.write("web.toml", "[basic_auth.users]\nalice = \"hunter2\"\n[x]\n");
  auto r = load("[http]\nlisten = \"127.0.0.1:9464\"\nweb_config = \"" + web_path + "\"\n" +
                kGoodCluster);
  EXPECT_FALSE(r.config.has_value());
  ASSERT_EQ(r.errors.size(), 2u) << all(r.errors);
  for (const auto& e : r.errors) {
    EXPECT_EQ(e.rfind("http.web_config: " + web_path + ": ", 0), 0u) << e;
    EXPECT_EQ(e.find("hunter2"), std::string::npos) << e;
  }

  auto missing = load("[http]\nweb_config = \"" + dir_.file("absent.toml") + "\"\n" + kGoodCluster);
  EXPECT_FALSE(missing.config.has_value());
  ASSERT_EQ(missing.errors.size(), 1u) << all(missing.errors);
  EXPECT_EQ(missing.errors[0].rfind("http.web_config: ", 0), 0u) << missing.errors[0];
  EXPECT_NE(missing.errors[0].find(dir_.file("absent.toml")), std::string::npos)
      << missing.errors[0];
}

TEST_F(WebConfigFile, NotReadWhenTheEndpointIsDisabled) {
  auto r = load("[http]\nlisten = \"\"\nweb_config = \"" + dir_.file("absent.toml") + "\"\n" +
                kGoodCluster);
  ASSERT_TRUE(r.config.has_value()) << all(r.errors);
  EXPECT_TRUE(r.config->http.listen.empty());
}

TEST_F(WebConfigFile, RelativeWebConfigIsResolvedAgainstTheConfigFile) {
  std::filesystem::create_directories(dir_.path() / "conf" / "web" / "tls");
  const std::string cert = dir_.write("conf/web/tls/cert.pem", "x");
  const std::string key = dir_.write("conf/web/tls/key.pem", "x");
  dir_.write("conf/web/web.toml",
             "[tls]\ncert_file = \"tls/cert.pem\"\nkey_file = \"tls/key.pem\"\n");
  const std::string config =
      dir_.write("conf/tokenwarden.toml",
                 std::string("[http]\nweb_config = \"web/web.toml\"\n") + kGoodCluster);
  auto r = load_config_file(config, kNow);
  ASSERT_TRUE(r.config.has_value()) << all(r.errors);
  EXPECT_EQ(r.config->http.web_config, "web/web.toml") << "kept as written";
  EXPECT_EQ(r.config->http.web.tls_cert_file, cert);
  EXPECT_EQ(r.config->http.web.tls_key_file, key);
}

}  // namespace
}  // namespace tw::daemon

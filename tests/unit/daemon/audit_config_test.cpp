// Tests for the [audit] section of daemon/config.h as far as the export uses it: the sinks of
// [[audit.export]] with their keys per type, defaults, errors with their key paths, target(),
// require_export and export_max_lag, and the render/load round trip.

#include <gtest/gtest.h>

#include <string>

#include "daemon/config.h"
#include "tests/unit/core/test_support.h"

namespace tw::daemon {
namespace {

const Timestamp kNow = tw::testing::ts("2026-06-01T00:00:00Z");

const char* kCluster = R"toml(
[[clusters]]
name = "c0"
type = "clustered"
url = "https://h0.example.com/api/v0"
token_file = "/etc/t0"
)toml";

ConfigLoad load(const std::string& audit) {
  return load_config_string(std::string(kCluster) + audit, "/etc/tokenwarden/tokenwarden.toml",
                            kNow);
}

std::string all(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += "\n  " + s;
  return out;
}

bool has_error(const ConfigLoad& r, const std::string& text) {
  for (const auto& e : r.errors) {
    if (e.find(text) != std::string::npos) return true;
  }
  return false;
}

TEST(AuditConfig, DefaultsWithoutTheSection) {
  auto r = load("");
  ASSERT_TRUE(r.config) << all(r.errors);
  EXPECT_FALSE(r.config->audit.require_export);
  EXPECT_EQ(r.config->audit.export_max_lag, std::chrono::minutes(5));
  EXPECT_TRUE(r.config->audit.exports.empty());
}

TEST(AuditConfig, ThreeSinkTypesWithTheirKeys) {
  auto r = load(R"toml(
[audit]
require_export = true
export_max_lag = "2m"

[[audit.export]]
name = "siem"
type = "syslog"
address = "logs.example.com:6514"
tls = true
ca_file = "ca.pem"
cert_file = "/etc/tokenwarden/client.pem"
key_file = "/etc/tokenwarden/client.key"

[[audit.export]]
name = "journal"
type = "journald"

[[audit.export]]
name = "local"
type = "file"
path = "export/audit.jsonl"
)toml");
  ASSERT_TRUE(r.config) << all(r.errors);
  const auto& a = r.config->audit;
  EXPECT_TRUE(a.require_export);
  EXPECT_EQ(a.export_max_lag, std::chrono::minutes(2));
  ASSERT_EQ(a.exports.size(), 3u);
  EXPECT_EQ(a.exports[0].type, ExportType::kSyslog);
  EXPECT_TRUE(a.exports[0].tls);
  EXPECT_EQ(a.exports[0].ca_file, "/etc/tokenwarden/ca.pem");  // relative to the config file
  EXPECT_EQ(a.exports[0].target(), "syslog+tls://logs.example.com:6514");
  EXPECT_EQ(a.exports[1].target(), "journald:/run/systemd/journal/socket");
  EXPECT_EQ(a.exports[2].path, "/etc/tokenwarden/export/audit.jsonl");
  EXPECT_EQ(a.exports[2].target(), "file:/etc/tokenwarden/export/audit.jsonl");

  auto back =
      load_config_string(render_config(*r.config), "/etc/tokenwarden/tokenwarden.toml", kNow);
  ASSERT_TRUE(back.config) << all(back.errors) << render_config(*r.config);
  auto body = [](const std::string& rendered) {
    return rendered.substr(rendered.find("[daemon]"));
  };
  EXPECT_EQ(body(render_config(*back.config)), body(render_config(*r.config)));
}

TEST(AuditConfig, ErrorsNameTheSinkAndKey) {
  auto r = load(R"toml(
[audit]
export_max_lag = "1s"

[[audit.export]]
name = "a"
type = "syslog"

[[audit.export]]
name = "a"
type = "file"
address = "h:1"

[[audit.export]]
name = "bad name!"
type = "carrier-pigeon"

[[audit.export]]
name = "c"
type = "syslog"
address = "h:514"
ca_file = "/ca.pem"
)toml");
  EXPECT_FALSE(r.config);
  EXPECT_TRUE(has_error(r, "audit.export_max_lag")) << all(r.errors);
  EXPECT_TRUE(has_error(r, "audit.export[0].address")) << all(r.errors);
  EXPECT_TRUE(has_error(r, "audit.export[1].name")) << all(r.errors);
  EXPECT_TRUE(has_error(r, "audit.export[1].address")) << all(r.errors);
  EXPECT_TRUE(has_error(r, "audit.export[1].path")) << all(r.errors);
  EXPECT_TRUE(has_error(r, "audit.export[2].name")) << all(r.errors);
  EXPECT_TRUE(has_error(r, "audit.export[2].type")) << all(r.errors);
  EXPECT_TRUE(has_error(r, "audit.export[3].ca_file")) << all(r.errors);
}

TEST(AuditConfig, TwoFileSinksCannotShareAPath) {
  auto r = load(R"toml(
[[audit.export]]
name = "a"
type = "file"
path = "export/audit.jsonl"

[[audit.export]]
name = "b"
type = "file"
path = "/etc/tokenwarden/export/audit.jsonl"
)toml");
  EXPECT_FALSE(r.config);
  EXPECT_FALSE(has_error(r, "audit.export[0].path")) << all(r.errors);
  EXPECT_TRUE(has_error(r, "audit.export[1].path")) << all(r.errors);
}

TEST(AuditConfig, RequireExportNeedsASink) {
  auto r = load("[audit]\nrequire_export = true\n");
  EXPECT_FALSE(r.config);
  EXPECT_TRUE(has_error(r, "audit.require_export")) << all(r.errors);
}

}  // namespace
}  // namespace tw::daemon

// Tests for the [ha] section of daemon/config.h (docs/high-availability.md): defaults, every
// error with its key path, the plain-HTTP warning, lease_ttl against the clusters' timeouts, the
// render/load round trip, and that a reload cannot change [ha] (daemon/schedule.h).

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "daemon/config.h"
#include "daemon/schedule.h"
#include "tests/unit/core/test_support.h"

namespace tw::daemon {
namespace {

using std::chrono::seconds;
using tw::testing::ts;

const Timestamp kNow = ts("2026-06-01T00:00:00Z");

// One cluster with the default timeout (10 s).
const char* kCluster = R"toml(
[[clusters]]
name = "c0"
type = "clustered"
url = "https://h0.example.com/api/v0"
token_file = "/etc/t0"
)toml";

const char* kEndpoints = "endpoints = [\"https://etcd1.example.com:2379\"]\n";

ConfigLoad load(const std::string& text) { return load_config_string(text, "<string>", kNow); }
// [ha] with these lines, and the cluster.
ConfigLoad load_ha(const std::string& lines) { return load("[ha]\n" + lines + kCluster); }

std::string all(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += "\n  " + s;
  return out;
}
bool has(const std::vector<std::string>& v, const std::string& prefix,
         const std::string& part = "") {
  for (const auto& s : v) {
    if (s.rfind(prefix, 0) == 0 && s.find(part) != std::string::npos) return true;
  }
  return false;
}

std::string host_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "tokenwarden";
  return host;
}

TEST(HaConfig, AbsentMeansDisabled) {
  auto r = load(kCluster);
  ASSERT_TRUE(r.config.has_value()) << all(r.errors);
  EXPECT_FALSE(r.config->ha.enabled);
}

TEST(HaConfig, Defaults) {
  auto r = load_ha(kEndpoints);
  ASSERT_TRUE(r.config.has_value()) << all(r.errors);
  EXPECT_TRUE(r.warnings.empty()) << all(r.warnings);
  const HaSection& ha = r.config->ha;
  EXPECT_TRUE(ha.enabled);
  EXPECT_EQ(ha.backend, "etcd");
  EXPECT_EQ(ha.endpoints, (std::vector<std::string>{"https://etcd1.example.com:2379"}));
  EXPECT_EQ(ha.lease_ttl, seconds(15));
  EXPECT_EQ(ha.key_prefix, "/tokenwarden/");
  EXPECT_EQ(ha.instance, host_name());
  EXPECT_TRUE(ha.ca_file.empty());
  EXPECT_TRUE(ha.cert_file.empty());
  EXPECT_TRUE(ha.key_file.empty());
}

TEST(HaConfig, EveryKey) {
  auto r = load_ha(R"toml(backend = "etcd"
endpoints = ["https://etcd1.example.com:2379", "https://etcd2.example.com:2379"]
ca_file = "/etc/tokenwarden/etcd-ca.pem"
cert_file = "/etc/tokenwarden/etcd.crt"
key_file = "/etc/tokenwarden/etcd.key"
lease_ttl = "30s"
instance = "tw-eu-1.example_a"
key_prefix = "/prod/tokenwarden/"
)toml");
  ASSERT_TRUE(r.config.has_value()) << all(r.errors);
  EXPECT_TRUE(r.warnings.empty()) << all(r.warnings);
  const HaSection& ha = r.config->ha;
  EXPECT_EQ(ha.endpoints.size(), 2u);
  EXPECT_EQ(ha.ca_file, "/etc/tokenwarden/etcd-ca.pem");
  EXPECT_EQ(ha.cert_file, "/etc/tokenwarden/etcd.crt");
  EXPECT_EQ(ha.key_file, "/etc/tokenwarden/etcd.key");
  EXPECT_EQ(ha.lease_ttl, seconds(30));
  EXPECT_EQ(ha.instance, "tw-eu-1.example_a");
  EXPECT_EQ(ha.key_prefix, "/prod/tokenwarden/");
}

TEST(HaConfig, RelativeFilesAreFromTheConfigurationsDirectory) {
  auto r = load_config_string(std::string("[ha]\n") + kEndpoints +
                                  "ca_file = \"ca.pem\"\ncert_file = \"c.crt\"\nkey_file = "
                                  "\"c.key\"\n" +
                                  kCluster,
                              "/etc/tokenwarden/tokenwarden.toml", kNow);
  ASSERT_TRUE(r.config.has_value()) << all(r.errors);
  EXPECT_EQ(r.config->ha.ca_file, "/etc/tokenwarden/ca.pem");
  EXPECT_EQ(r.config->ha.cert_file, "/etc/tokenwarden/c.crt");
  EXPECT_EQ(r.config->ha.key_file, "/etc/tokenwarden/c.key");
}

struct HaError {
  const char* name;
  std::string lines;  // of [ha]
  std::string want;   // the error's beginning
  std::string part = "";
};

class HaConfigErrors : public ::testing::TestWithParam<HaError> {};

TEST_P(HaConfigErrors, ReportedWithKeyPath) {
  const auto& c = GetParam();
  auto r = load_ha(c.lines);
  EXPECT_FALSE(r.config.has_value()) << c.name;
  EXPECT_TRUE(has(r.errors, c.want, c.part)) << c.name << ": no error \"" << c.want << "\" (with \""
                                             << c.part << "\") in" << all(r.errors);
}

const std::string kE = kEndpoints;

INSTANTIATE_TEST_SUITE_P(
    HaConfig, HaConfigErrors,
    ::testing::Values(
        HaError{"UnknownBackend", kE + "backend = \"consul\"\n", "ha.backend: must be \"etcd\"",
                "consul"},
        HaError{"MissingEndpoints", "lease_ttl = \"15s\"\n", "ha.endpoints: is required"},
        HaError{"EmptyEndpoints", "endpoints = []\n", "ha.endpoints: needs at least one"},
        HaError{"EndpointsNotAList", "endpoints = \"https://etcd1.example.com:2379\"\n",
                "ha.endpoints"},
        HaError{"EndpointWithAPath", "endpoints = [\"https://etcd1.example.com:2379/v3\"]\n",
                "ha.endpoints:", "without a path"},
        HaError{"EndpointNotAUrl", "endpoints = [\"etcd1:2379\"]\n", "ha.endpoints:"},
        HaError{"LeaseTtlTooShort", kE + "lease_ttl = \"1s\"\n", "ha.lease_ttl: must be between"},
        HaError{"LeaseTtlNotWholeSeconds", kE + "lease_ttl = \"2500ms\"\n",
                "ha.lease_ttl: must be whole seconds"},
        HaError{"LeaseTtlTooLong", kE + "lease_ttl = \"11m\"\n", "ha.lease_ttl: must be between"},
        HaError{"KeyPrefixWithoutLeadingSlash", kE + "key_prefix = \"tokenwarden/\"\n",
                "ha.key_prefix: must start and end with '/'"},
        HaError{"KeyPrefixWithoutTrailingSlash", kE + "key_prefix = \"/tokenwarden\"\n",
                "ha.key_prefix: must start and end with '/'"},
        HaError{"KeyPrefixJustASlash", kE + "key_prefix = \"/\"\n", "ha.key_prefix:"},
        HaError{"KeyPrefixWithANewline", kE + "key_prefix = \"/a\\nb/\"\n", "ha.key_prefix:"},
        HaError{"InstanceWithASpace", kE + "instance = \"tw 1\"\n", "ha.instance:"},
        HaError{"InstanceWithASlash", kE + "instance = \"tw/1\"\n", "ha.instance:"},
        HaError{"InstanceEmpty", kE + "instance = \"\"\n", "ha.instance:"},
        HaError{"InstanceTooLong", kE + "instance = \"" + std::string(129, 'a') + "\"\n",
                "ha.instance:"},
        HaError{"CertWithoutKey", kE + "cert_file = \"/etc/tw/etcd.crt\"\n",
                "ha.key_file: cert_file and key_file go together"},
        HaError{"UsernameWithoutPassword", kE + "username = \"tw\"\n",
                "ha.password_file: username and password_file go together"},
        HaError{"PasswordWithoutUsername", kE + "password_file = \"etcd-password\"\n",
                "ha.username: username and password_file go together"},
        HaError{"KeyWithoutCert", kE + "key_file = \"/etc/tw/etcd.key\"\n",
                "ha.cert_file: cert_file and key_file go together"},
        HaError{"UnknownKey", kE + "lease = \"15s\"\n", "ha.lease"},
        HaError{"LeaseNotLongerThanTheClustersTimeout", kE + "lease_ttl = \"10s\"\n",
                "ha.lease_ttl:", "cluster \"c0\""}),
    [](const ::testing::TestParamInfo<HaError>& p) { return std::string(p.param.name); });

TEST(HaConfig, LeaseTtlMustOutlastEveryClustersTimeout) {
  auto with_slow_cluster = [](const char* ttl) {
    return std::string("[ha]\n") + kEndpoints + "lease_ttl = \"" + ttl + "\"\n" + kCluster +
           R"toml(
[[clusters]]
name = "slow"
type = "clustered"
url = "https://h1.example.com/api/v0"
token_file = "/etc/t1"
timeout = "30s"
)toml";
  };
  auto r = load(with_slow_cluster("20s"));
  EXPECT_FALSE(r.config.has_value());
  EXPECT_TRUE(has(r.errors, "ha.lease_ttl:", "cluster \"slow\"")) << all(r.errors);
  EXPECT_FALSE(has(r.errors, "ha.lease_ttl:", "cluster \"c0\"")) << all(r.errors);
  // The longest timeout is the one that counts; just above it is enough.
  r = load(with_slow_cluster("31s"));
  EXPECT_TRUE(r.config.has_value()) << all(r.errors);
}

// An influxdb3 revocation is a lookup and then a DELETE: the lease must outlast both.
TEST(HaConfig, InfluxDb3ClustersNeedTwiceTheirTimeout) {
  auto block = [](const char* ttl) {
    return std::string("[ha]\n") + kEndpoints + "lease_ttl = \"" + ttl + "\"\n" + R"toml(
[[clusters]]
name = "core"
type = "influxdb3"
url = "http://127.0.0.1:8181"
token_file = "/etc/tokenwarden/core.token"
timeout = "5s"
)toml";
  };
  auto r = load(block("10s"));
  EXPECT_FALSE(r.config.has_value());
  EXPECT_TRUE(has(r.errors, "ha.lease_ttl:", "twice the timeout of cluster \"core\""))
      << all(r.errors);
  r = load(block("11s"));
  EXPECT_TRUE(r.config.has_value()) << all(r.errors);
}

TEST(HaConfig, PlainHttpToAnotherHostIsAWarning) {
  auto r = load_ha("endpoints = [\"http://etcd1.example.com:2379\"]\n");
  ASSERT_TRUE(r.config.has_value()) << all(r.errors);
  EXPECT_TRUE(has(r.warnings, "ha.endpoints:", "http://etcd1.example.com:2379")) << all(r.warnings);
  for (const char* local :
       {"http://127.0.0.1:2379", "http://localhost:2379", "http://[::1]:2379"}) {
    auto l = load_ha(std::string("endpoints = [\"") + local + "\"]\n");
    ASSERT_TRUE(l.config.has_value()) << local << all(l.errors);
    EXPECT_FALSE(has(l.warnings, "ha.")) << local << all(l.warnings);
  }
}

TEST(HaConfig, RenderRoundTrips) {
  auto first =
      load_ha(R"toml(endpoints = ["https://etcd1.example.com:2379", "http://127.0.0.1:2379"]
ca_file = "/etc/tokenwarden/etcd-ca.pem"
cert_file = "/etc/tokenwarden/etcd.crt"
key_file = "/etc/tokenwarden/etcd.key"
lease_ttl = "2m"
instance = "tw-1"
key_prefix = "/prod/tw/"
)toml");
  ASSERT_TRUE(first.config.has_value()) << all(first.errors);
  const std::string rendered = render_config(*first.config);
  EXPECT_NE(rendered.find("\n[ha]\n"), std::string::npos) << rendered;
  auto second = load(rendered);
  ASSERT_TRUE(second.config.has_value()) << all(second.errors) << "\n" << rendered;
  EXPECT_TRUE(second.config->ha == first.config->ha);
  EXPECT_EQ(second.config->ha.lease_ttl, std::chrono::minutes(2));
  EXPECT_EQ(second.config->ha.instance, "tw-1");
  EXPECT_EQ(second.config->ha.endpoints, first.config->ha.endpoints);

  // Defaults round-trip too (the host name is written out, so it stays the same).
  auto d = load_ha(kEndpoints);
  ASSERT_TRUE(d.config.has_value());
  auto back = load(render_config(*d.config));
  ASSERT_TRUE(back.config.has_value()) << all(back.errors);
  EXPECT_TRUE(back.config->ha == d.config->ha);

  // Without [ha], no section.
  auto none = load(kCluster);
  ASSERT_TRUE(none.config.has_value());
  EXPECT_EQ(render_config(*none.config).find("[ha]"), std::string::npos);
}

TEST(HaConfig, AReloadCannotChangeHa) {
  auto base = load_ha(kEndpoints + std::string("instance = \"tw-1\"\n"));
  ASSERT_TRUE(base.config.has_value()) << all(base.errors);
  const Config& running = *base.config;
  EXPECT_FALSE(restart_only_change(running, running).has_value());

  auto changed = [&](const std::string& lines) {
    auto r = load_ha(lines);
    EXPECT_TRUE(r.config.has_value()) << all(r.errors);
    return r.config ? restart_only_change(running, *r.config) : std::nullopt;
  };
  for (const std::string& lines :
       {kEndpoints + std::string("instance = \"tw-2\"\n"),
        kEndpoints + std::string("instance = \"tw-1\"\nlease_ttl = \"20s\"\n"),
        kEndpoints + std::string("instance = \"tw-1\"\nkey_prefix = \"/other/\"\n"),
        std::string("endpoints = [\"https://etcd9.example.com:2379\"]\ninstance = \"tw-1\"\n")}) {
    auto why = changed(lines);
    ASSERT_TRUE(why.has_value()) << lines;
    EXPECT_NE(why->find("[ha]"), std::string::npos) << *why;
  }
  // Adding or removing the section.
  auto plain = load(kCluster);
  ASSERT_TRUE(plain.config.has_value());
  EXPECT_TRUE(restart_only_change(*plain.config, running).has_value());
  EXPECT_TRUE(restart_only_change(running, *plain.config).has_value());
  // The same [ha] with another change that a reload may make: accepted.
  auto same = load(std::string("[ha]\n") + kEndpoints + "instance = \"tw-1\"\n" +
                   "[daemon]\npoll_interval = \"5m\"\n" + kCluster);
  ASSERT_TRUE(same.config.has_value()) << all(same.errors);
  EXPECT_FALSE(restart_only_change(running, *same.config).has_value());
}

}  // namespace
}  // namespace tw::daemon

// Tests for the `influxdb3` cluster type in daemon/config.h: its keys, and the check-config error
// for a `restrict` policy in scope of such a cluster (the source cannot change permissions).

#include <gtest/gtest.h>

#include <string>

#include "daemon/config.h"
#include "tests/unit/core/test_support.h"

namespace tw::daemon {
namespace {

using tw::testing::ts;

const Timestamp kNow = ts("2026-06-01T00:00:00Z");

const std::string kClusters = R"toml(
[[clusters]]
name = "prod-eu"
type = "clustered"
url = "https://influxdb.prod.example.com/api/v0"
token_file = "/etc/tokenwarden/prod-eu.token"
labels = { env = "prod" }

[[clusters]]
name = "core-lab"
type = "influxdb3"
url = "http://127.0.0.1:8181"
token_file = "/etc/tokenwarden/core-lab.token"
ca_file = "/etc/ssl/lab-ca.pem"
labels = { env = "lab" }
)toml";

std::string policy(const std::string& action, const std::string& scope = "") {
  return "\n[[policies]]\nname = \"no-global-write\"\nkind = \"all_databases_grant\"\n"
         "actions = [\"write\"]\naction = \"" +
         action + "\"\n" + scope + "\n";
}

ConfigLoad load(const std::string& text) { return load_config_string(text, "<string>", kNow); }

std::string all_errors(const ConfigLoad& l) {
  std::string out;
  for (const auto& e : l.errors) out += e + "\n";
  return out;
}

TEST(Influxdb3Config, TheTypeTakesUrlTokenFileAndCaFile) {
  auto l = load(kClusters);
  ASSERT_TRUE(l.config) << all_errors(l);
  const auto& core = l.config->clusters.at(1);
  EXPECT_EQ(core.source.type, influx::SourceType::kInfluxdb3);
  EXPECT_EQ(core.source.url, "http://127.0.0.1:8181");
  EXPECT_EQ(core.source.token_file, "/etc/tokenwarden/core-lab.token");
  EXPECT_EQ(core.source.ca_file, "/etc/ssl/lab-ca.pem");
  std::string printed = render_config(*l.config);
  EXPECT_NE(printed.find("type = \"influxdb3\""), std::string::npos) << printed;
  auto again = load(printed);
  ASSERT_TRUE(again.config) << all_errors(again);
  EXPECT_EQ(again.config->clusters.at(1).source.type, influx::SourceType::kInfluxdb3);
}

TEST(Influxdb3Config, KeysOfOtherTypesAndMissingKeysAreErrors) {
  auto l = load(R"toml(
[[clusters]]
name = "core"
type = "influxdb3"
account_id = "11111111-1111-4111-8111-111111111111"
influxctl_config = "/etc/influxctl.toml"
)toml");
  EXPECT_FALSE(l.config);
  std::string e = all_errors(l);
  EXPECT_NE(e.find("clusters[0].url: is required for type influxdb3"), std::string::npos) << e;
  EXPECT_NE(e.find("clusters[0].token_file: is required for type influxdb3"), std::string::npos)
      << e;
  EXPECT_NE(e.find("clusters[0].account_id: is not used by type influxdb3"), std::string::npos)
      << e;
  EXPECT_NE(e.find("clusters[0].influxctl_config: is not used by type influxdb3"),
            std::string::npos)
      << e;
  auto typo = load("[[clusters]]\nname = \"x\"\ntype = \"influxdb\"\n");
  EXPECT_NE(all_errors(typo).find("must be clustered, dedicated, influxctl or influxdb3"),
            std::string::npos)
      << all_errors(typo);
}

TEST(Influxdb3Config, RestrictInScopeOfAnInfluxdb3ClusterNamesBoth) {
  for (const std::string& scope :
       {std::string(""), std::string("scope = { clusters = [\"core-*\"] }"),
        std::string("scope = { labels = { env = \"lab\" } }")}) {
    auto l = load(kClusters + policy("restrict", scope));
    EXPECT_FALSE(l.config) << scope;
    ASSERT_EQ(l.errors.size(), 1u) << all_errors(l);
    const std::string& e = l.errors[0];
    EXPECT_EQ(
        e.rfind("policies[0].action: policy \"no-global-write\" restricts tokens, but cluster "
                "\"core-lab\" (clusters[1], type influxdb3) cannot change a token's permissions",
                0),
        0u)
        << e;
  }
}

TEST(Influxdb3Config, RestrictScopedAwayAndRevokeAreFine) {
  for (const std::string& text :
       {kClusters + policy("restrict", "scope = { clusters = [\"prod-*\"] }"),
        kClusters + policy("restrict", "scope = { labels = { env = \"prod\" } }"),
        kClusters + policy("revoke"), kClusters + policy("alert")}) {
    auto l = load(text);
    EXPECT_TRUE(l.config) << text << all_errors(l);
  }
}

TEST(Influxdb3Config, EveryRestrictPolicyAndClusterPairIsReported) {
  std::string text = kClusters + R"toml(
[[clusters]]
name = "core-edge"
type = "influxdb3"
url = "http://127.0.0.1:8182"
token_file = "/etc/tokenwarden/core-edge.token"
)toml" + policy("restrict") +
                     "\n[[policies]]\nname = \"no-db-x\"\nkind = \"forbidden_grant\"\nactions = "
                     "[\"write\"]\ndatabases = [\"x\"]\naction = \"restrict\"\n";
  auto l = load(text);
  EXPECT_FALSE(l.config);
  std::string e = all_errors(l);
  EXPECT_EQ(l.errors.size(), 4u) << e;
  EXPECT_NE(e.find("policies[1].action: policy \"no-db-x\" restricts tokens, but cluster "
                   "\"core-edge\" (clusters[2]"),
            std::string::npos)
      << e;
}

}  // namespace
}  // namespace tw::daemon

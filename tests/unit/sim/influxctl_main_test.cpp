// tokenwarden-influxctl as a subprocess against an in-process simulator.
#include <gtest/gtest.h>

#include "core/strings.h"
#include "influx/codec.h"
#include "sim/server.h"
#include "tests/unit/sim/sim_test_util.h"

namespace tw::sim {
namespace {

using json = nlohmann::json;
using testing::parse_json;

constexpr const char* kAccount = "11111111-1111-4111-8111-111111111111";
constexpr const char* kCluster = "33333333-3333-4333-8333-333333333333";
constexpr const char* kActive = "aaaaaaaa-0000-4000-8000-000000000001";
constexpr const char* kRevoked = "bbbbbbbb-0000-4000-8000-000000000002";
constexpr const char* kStar = "cccccccc-0000-4000-8000-000000000003";
const Timestamp kT0 = make_timestamp(2025, 6, 1, 12, 0, 0);

class InfluxctlTest : public ::testing::Test {
 protected:
  void start(Flavor flavor) {
    SimOptions o;
    o.flavor = flavor;
    o.account_id = kAccount;
    o.cluster_id = kCluster;
    o.clock = &clock_;
    server_ = testing::start_sim(std::move(o));
    ASSERT_TRUE(server_);
    auto& store = server_->store();
    store.put(Token{kActive,
                    "telegraf writer sensors-eu",
                    {{"write", "sensors"}},
                    make_timestamp(2024, 1, 2, 3, 4, 5, 678),
                    make_timestamp(2026, 1, 1),
                    std::nullopt});
    store.put(Token{kRevoked,
                    "jane.doe ad-hoc",
                    {{"read", "metrics"}},
                    make_timestamp(2024, 5, 5),
                    std::nullopt,
                    make_timestamp(2025, 2, 2, 0, 0, 0, 1)});
    store.put(Token{kStar,
                    "admin everything",
                    {{"read", "*"}, {"write", "*"}},
                    make_timestamp(2023, 3, 3),
                    std::nullopt,
                    std::nullopt});
    write_config(flavor == Flavor::kDedicated ? "dedicated" : "clustered", testing::kToken);
  }
  void SetUp() override { start(Flavor::kClustered); }

  void write_config(const std::string& product, const std::string& token) {
    config_ = dir_.write("config.toml",
                         "# written by the test\n"
                         "[[profile]]\n"
                         "  name = \"other\"\n"
                         "  host = \"192.0.2.1\"\n"
                         "  mgmt_token = \"wrong\"\n"
                         "[[profile]]\n"
                         "  name = \"default\"\n"
                         "  product = \"" +
                             product +
                             "\"\n"
                             "  host = \"127.0.0.1\"\n"
                             "  port = \"" +
                             std::to_string(server_->port()) +
                             "\"\n"
                             "  account_id = \"" +
                             kAccount +
                             "\"\n"
                             "  cluster_id = \"" +
                             kCluster +
                             "\"\n"
                             "  mgmt_token = \"" +
                             token +
                             "\"\n"
                             "  database = \"ignored\"\n"
                             "  [profile.tls]\n"
                             "    disable = true\n");
  }
  influx::ProcessResult run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", config_});
    return testing::run_binary("tokenwarden-influxctl", args);
  }

  ManualClock clock_{kT0};
  testing::TempDir dir_;
  std::string config_;
  std::unique_ptr<SimServer> server_;
};

TEST_F(InfluxctlTest, ListJsonHasInfluxctlShape) {
  auto r = run({"token", "list", "--format", "json", "--include-revoked"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json list = parse_json(r.out);
  ASSERT_EQ(list.size(), 3u);
  // Sorted by id; snake_case; nil-UUID permission ids; {seconds, nanos} with zeros omitted.
  EXPECT_EQ(list[0], json::parse(R"({
    "account_id": "00000000-0000-0000-0000-000000000000",
    "cluster_id": "00000000-0000-0000-0000-000000000000",
    "id": "aaaaaaaa-0000-4000-8000-000000000001",
    "description": "telegraf writer sensors-eu",
    "permissions": [{"id": "00000000-0000-0000-0000-000000000000", "action": "write",
                     "resource": "sensors"}],
    "created_at": {"seconds": 1704164645, "nanos": 678000000},
    "expires_at": {"seconds": 1767225600}
  })"));
  EXPECT_EQ(list[1]["revoked_at"], json::parse(R"({"seconds": 1738454400, "nanos": 1000000})"));
  EXPECT_FALSE(list[1].contains("expires_at"));
  EXPECT_FALSE(list[2].contains("revoked_at"));
  EXPECT_EQ(list[2]["permissions"][0]["resource"], "*");
  // Clustered too carries account_id/cluster_id (nil UUIDs), as the Clustered docs show.
  // Key order as influxctl prints it.
  EXPECT_LT(r.out.find("\"id\""), r.out.find("\"description\""));
  EXPECT_LT(r.out.find("\"permissions\""), r.out.find("\"created_at\""));

  // What tokenwarden's influxctl source does with it.
  auto decoded = influx::decode_token_list(r.out);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->tokens[0].created_at, make_timestamp(2024, 1, 2, 3, 4, 5, 678));
  EXPECT_EQ(decoded->tokens[1].revoked_at, make_timestamp(2025, 2, 2, 0, 0, 0, 1));
}

TEST_F(InfluxctlTest, RevokedTokensOnlyWithIncludeRevoked) {
  auto r = run({"token", "list", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json list = parse_json(r.out);
  ASSERT_EQ(list.size(), 2u);
  for (const auto& t : list) EXPECT_NE(t["id"], kRevoked);

  auto get = run({"token", "get", "--format", "json", kRevoked});
  EXPECT_EQ(get.exit_code, 1);
  EXPECT_NE(get.err.find("error\t"), std::string::npos);
  get = run({"token", "get", "--format", "json", "--include-revoked", kRevoked});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_TRUE(parse_json(get.out).contains("revoked_at"));
  get = run({"token", "get", "--format", "json", kActive});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(parse_json(get.out)["id"], kActive);
}

TEST_F(InfluxctlTest, ListSortAndTable) {
  auto r = run({"token", "list", "--format", "json", "--sort", "description"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json list = parse_json(r.out);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0]["description"], "admin everything");
  auto table = run({"token", "list"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("| ID "), std::string::npos);
  EXPECT_NE(table.out.find(kActive), std::string::npos);
  EXPECT_EQ(table.out.find(kRevoked), std::string::npos);
}

TEST_F(InfluxctlTest, CreateUpdateRevokeRoundTrip) {
  auto created = run({"token", "create", "--read-database", "db1", "--write-database", "db2",
                      "--read-database", "*", "--expires-at", "2030-01-01T00:00:00Z", "--format",
                      "json", "new token"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  json t = parse_json(created.out);
  std::string id = t["id"];
  EXPECT_EQ(t["description"], "new token");
  EXPECT_EQ(t["expires_at"], json::parse(R"({"seconds":1893456000})"));
  EXPECT_EQ(t["created_at"], json::parse(R"({"seconds":1748779200})"));
  EXPECT_EQ(t["access_token"].get<std::string>().rfind("apiv1_", 0), 0u);
  auto stored = server_->store().get(id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->permissions,
            (std::vector<Permission>{{"read", "*"}, {"read", "db1"}, {"write", "db2"}}));
  EXPECT_EQ(stored->expires_at, make_timestamp(2030, 1, 1));

  // Table output: details on stdout, then the secret; warnings on stderr.
  auto table = run({"token", "create", "--write-database", "x", "table token"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("apiv1_"), std::string::npos);
  EXPECT_NE(table.err.find("warn\t"), std::string::npos);
  EXPECT_EQ(table.err.find("apiv1_"), std::string::npos);

  auto updated = run({"token", "update", "--write-database", "only", id});
  ASSERT_EQ(updated.exit_code, 0) << updated.err;
  EXPECT_EQ(server_->store().get(id)->permissions, (std::vector<Permission>{{"write", "only"}}));
  EXPECT_EQ(server_->store().get(id)->description, "new token");
  updated = run({"token", "update", "--description", "renamed", "--format", "json", id});
  ASSERT_EQ(updated.exit_code, 0) << updated.err;
  EXPECT_EQ(parse_json(updated.out)["description"], "renamed");
  EXPECT_EQ(server_->store().get(id)->permissions, (std::vector<Permission>{{"write", "only"}}));
  auto nothing = run({"token", "update", id});
  EXPECT_EQ(nothing.exit_code, 1);

  clock_.advance(std::chrono::minutes(1));
  auto revoked = run({"token", "revoke", "--force", id});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  EXPECT_EQ(server_->store().get(id)->revoked_at, kT0 + std::chrono::minutes(1));

  // Revoked: update refused by the server (409), revoke again is "not found".
  auto again = run({"token", "update", "--read-database", "x", id});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("409"), std::string::npos) << again.err;
  again = run({"token", "revoke", "--force", id});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("not found"), std::string::npos) << again.err;
  EXPECT_EQ(again.err.rfind("error\t", 0), 0u);
}

TEST_F(InfluxctlTest, RevokeWithoutForceAbortsWithoutConfirmation) {
  auto r = run({"token", "revoke", kActive});  // stdin is /dev/null
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("are you sure? (y/N)"), std::string::npos);
  EXPECT_NE(r.err.find("error\t"), std::string::npos);
  EXPECT_FALSE(server_->store().get(kActive)->revoked_at);
  EXPECT_TRUE(server_->store().requests().empty());  // nothing was sent
}

TEST_F(InfluxctlTest, RevokeContinuesAfterAFailure) {
  auto r = run({"token", "delete", "--force", "00000000-0000-4000-8000-00000000dead", kActive});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("token 00000000-0000-4000-8000-00000000dead not found"), std::string::npos)
      << r.err;
  EXPECT_TRUE(server_->store().get(kActive)->revoked_at);
  EXPECT_NE(r.out.find(kActive), std::string::npos);
}

TEST_F(InfluxctlTest, DedicatedProfileUsesAccountPathAndPrintsIds) {
  start(Flavor::kDedicated);
  auto r = run({"token", "list", "--format", "json", "--include-revoked"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json list = parse_json(r.out);
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0]["account_id"], kAccount);
  EXPECT_EQ(list[0]["cluster_id"], kCluster);
  EXPECT_LT(r.out.find("\"account_id\""), r.out.find("\"id\""));
  auto revoke = run({"token", "revoke", "--force", kStar});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.err;
  EXPECT_TRUE(server_->store().get(kStar)->revoked_at);
  EXPECT_NE(server_->store().requests().back().path.find(std::string("/accounts/") + kAccount),
            std::string::npos);
}

TEST_F(InfluxctlTest, ErrorsGoToStderrWithExitStatus1) {
  write_config("clustered", "wrong-token");
  auto r = run({"token", "list"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind("error\t", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("401"), std::string::npos);
  EXPECT_EQ(r.err.find("wrong-token"), std::string::npos);  // never the token
  EXPECT_TRUE(r.out.empty());

  auto missing = testing::run_binary(
      "tokenwarden-influxctl", {"--config", (dir_.path() / "nope.toml").string(), "token", "list"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("nope.toml"), std::string::npos);
  auto profile = run({"--profile", "absent", "token", "list"});
  EXPECT_EQ(profile.exit_code, 1);
  EXPECT_NE(profile.err.find("absent"), std::string::npos);
  auto usage = run({"token", "frobnicate"});
  EXPECT_EQ(usage.exit_code, 1);
  EXPECT_EQ(usage.err.rfind("error\t", 0), 0u);
  std::string bad = dir_.write("bad.toml", "[[profile]\nname=");
  auto syntax = testing::run_binary("tokenwarden-influxctl", {"--config", bad, "token", "list"});
  EXPECT_EQ(syntax.exit_code, 1);
  EXPECT_EQ(syntax.err.rfind("error\t", 0), 0u);
}

TEST_F(InfluxctlTest, TimeoutFlagBoundsTheCall) {
  auto f =
      testing::call(*server_, "POST", "/_sim/faults", R"({"kind":"timeout","count":1})", nullptr);
  ASSERT_TRUE(f.ok());
  auto t0 = std::chrono::steady_clock::now();
  auto r = run({"--timeout", "300ms", "token", "list"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_NE(r.err.find("timed out"), std::string::npos) << r.err;
}

TEST_F(InfluxctlTest, ProfileFromEnvironmentIsNotNeededWhenFlagGiven) {
  auto r = run({"--profile", "default", "--debug", "token", "list", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("debug\tGET http://127.0.0.1:"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(testing::kToken), std::string::npos);
}

}  // namespace
}  // namespace tw::sim

// The simulator's influxdb3 flavour (sim/influxdb3_api.h): rows shaped as real-behaviour.md §A6,
// the delete and create endpoints, the common faults and control API, and a round trip through
// tokenwarden's own Influxdb3ClusterClient.
#include "sim/influxdb3_api.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "influx/influxdb3_source.h"
#include "sim/server.h"
#include "tests/unit/sim/sim_test_util.h"

namespace tw::sim {
namespace {

using json = nlohmann::json;
using testing::parse_json;

const Timestamp kT0 = make_timestamp(2025, 6, 1, 12, 0, 0);
const std::vector<Permission> kAdmin{{"admin", "*"}, {"read", "*"}, {"write", "*"}};
const std::string kList =
    "/api/v3/query_sql?db=_internal&q=SELECT%20*%20FROM%20system.tokens&format=json";

class Influxdb3SimTest : public ::testing::Test {
 protected:
  void start(bool without_auth = false) {
    SimOptions o;
    o.flavor = Flavor::kInfluxdb3;
    o.clock = &clock_;
    o.without_auth = without_auth;
    server_ = testing::start_sim(std::move(o));
    ASSERT_TRUE(server_);
    store().freeze_clock(kT0);
  }
  TokenStore& store() { return server_->store(); }
  // A management call with the admin token; status and body.
  std::pair<int, std::string> api(const std::string& method, const std::string& target,
                                  const std::string& body = {},
                                  const char* auth = "Bearer test-management-token-5f2c") {
    auto r = testing::call(*server_, method, target, body, auth);
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (!r.ok()) return {0, ""};
    return {r->status, r->body};
  }
  json rows(const std::string& target = kList) {
    auto [status, body] = api("GET", target);
    EXPECT_EQ(status, 200) << body;
    return parse_json(body);
  }
  std::unique_ptr<influx::Influxdb3ClusterClient> client() {
    influx::SourceConfig cfg;
    cfg.cluster = "core";
    cfg.type = influx::SourceType::kInfluxdb3;
    cfg.url = server_->base_url();
    cfg.token_file = dir_.write("admin.token", std::string(testing::kToken) + "\n");
    auto url = influx::parse_url(cfg.url);
    EXPECT_TRUE(url.ok());
    return std::make_unique<influx::Influxdb3ClusterClient>(cfg, *url, "");
  }

  ManualClock clock_{kT0};
  testing::TempDir dir_;
  std::unique_ptr<SimServer> server_;
};

TEST_F(Influxdb3SimTest, RowsAreShapedAsTheServerSendsThem) {
  start();
  EXPECT_EQ(rows(), json::array()) << "an empty table is []";
  ASSERT_TRUE(store().create_named("_admin", kAdmin, std::nullopt).ok());
  Token g;
  g.description = "grafana";
  g.permissions = {{"read", "metrics"}, {"read", "system:health"}};
  g.created_at = make_timestamp(2025, 4, 18, 14, 2, 45, 331);
  g.expires_at = make_timestamp(2026, 4, 18, 14, 2, 45);
  store().put(g);
  json r = rows();
  ASSERT_EQ(r.size(), 2u) << r.dump();
  EXPECT_EQ(r[0]["token_id"], 0);
  EXPECT_TRUE(r[0]["token_id"].is_number_unsigned());
  EXPECT_EQ(r[0]["name"], "_admin");
  EXPECT_EQ(r[0]["permissions"], "*:*:*");
  EXPECT_FALSE(r[0].contains("expiry")) << "never expires: the column is left out";
  EXPECT_FALSE(r[0].contains("description")) << "null columns are left out";
  EXPECT_EQ(r[0]["created_at"], "2025-06-01T12:00:00") << "zone-less, no .000";
  EXPECT_TRUE(std::regex_match(r[0]["hash"].get<std::string>(), std::regex("[0-9a-f]{9}")));
  EXPECT_EQ(r[1]["token_id"], 1);
  EXPECT_EQ(r[1]["created_at"], "2025-04-18T14:02:45.331");
  EXPECT_EQ(r[1]["expiry"], "2026-04-18T14:02:45");
  EXPECT_EQ(r[1]["permissions"], "db:metrics:read;system:health:read");
}

TEST_F(Influxdb3SimTest, PermissionStrings) {
  EXPECT_EQ(influxdb3_permission_string({}), "");
  EXPECT_EQ(influxdb3_permission_string(kAdmin), "*:*:*");
  EXPECT_EQ(
      influxdb3_permission_string({{"read", "a"}, {"read", "b"}, {"write", "a"}, {"write", "b"}}),
      "db:a,b:read,write");
  EXPECT_EQ(influxdb3_permission_string({{"write", "*"}, {"write", "edge"}, {"read", "x"}}),
            "db:*:write;db:x:read;db:edge:write")
      << "\"*\" never shares a part with names";
  EXPECT_EQ(influxdb3_permission_string({{"read", "system:health"}, {"read", "system:metrics"}}),
            "system:health,metrics:read");
  EXPECT_EQ(influxdb3_time(make_timestamp(2025, 1, 2, 3, 4, 5, 60)), "2025-01-02T03:04:05.060");
}

TEST_F(Influxdb3SimTest, AuthenticationAndTheWithoutAuthMode) {
  start();
  auto [status, body] = api("GET", kList, {}, nullptr);
  EXPECT_EQ(status, 401);
  EXPECT_EQ(parse_json(body)["error"], "the request was not authenticated");
  EXPECT_EQ(api("GET", kList, {}, "Bearer wrong").first, 401);

  start(true);
  ASSERT_TRUE(store().create_named("_admin", kAdmin, std::nullopt).ok());
  auto [open_status, open_body] = api("GET", kList, {}, nullptr);
  EXPECT_EQ(open_status, 200);
  json r = parse_json(open_body);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_FALSE(r[0].contains("hash")) << "a server without auth has no hash column";
}

TEST_F(Influxdb3SimTest, TheQueryIsChecked) {
  start();
  store().generate(5, 3);
  EXPECT_EQ(rows("/api/v3/query_sql?db=_internal&q=select+*+from++system.tokens;").size(), 5u);
  EXPECT_EQ(rows("/api/v3/query_sql?db=_internal&q=SELECT%20*%20FROM%20system.tokens").size(), 5u)
      << "format defaults to json";
  json one = rows(
      "/api/v3/"
      "query_sql?db=_internal&q=SELECT+*+FROM+system.tokens+WHERE+token_id+%3D+3&format=json");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0]["token_id"], 3);
  EXPECT_EQ(
      rows("/api/v3/query_sql?db=_internal&q=SELECT+*+FROM+system.tokens+WHERE+token_id+%3D+99")
          .size(),
      0u);
  struct Case {
    std::string target;
    int status;
  };
  for (const Case& c :
       {Case{"/api/v3/query_sql?q=SELECT+*+FROM+system.tokens", 400},
        Case{"/api/v3/query_sql?db=metrics&q=SELECT+*+FROM+system.tokens", 404},
        Case{"/api/v3/query_sql?db=_internal&q=SELECT+*+FROM+system.tokens&format=csv", 400},
        Case{"/api/v3/query_sql?db=_internal&q=SELECT+name+FROM+system.tokens", 400},
        Case{"/api/v3/query_sql?db=_internal", 400},
        Case{"/api/v3/query_influxql?db=_internal", 404}}) {
    auto [status, body] = api("GET", c.target);
    EXPECT_EQ(status, c.status) << c.target << ": " << body;
  }
  EXPECT_EQ(api("POST", kList).first, 405);
}

TEST_F(Influxdb3SimTest, DeleteRemovesTheTokenByName) {
  start();
  ASSERT_TRUE(store().create_named("_admin", kAdmin, std::nullopt).ok());
  ASSERT_TRUE(store().create_named("grafana read, eu", {{"read", "metrics"}}, std::nullopt).ok());
  EXPECT_EQ(api("DELETE", "/api/v3/configure/token?token_name=grafana%20read%2C%20eu").first, 200);
  EXPECT_EQ(rows().size(), 1u) << "deletion removes the row; nothing is kept as revoked";
  auto [status, body] = api("DELETE", "/api/v3/configure/token?token_name=grafana+read%2C+eu");
  EXPECT_EQ(status, 404);
  EXPECT_EQ(body, "the requested resource was not found: grafana read, eu");
  auto [admin_status, admin_body] = api("DELETE", "/api/v3/configure/token?token_name=_admin");
  EXPECT_EQ(admin_status, 405);
  EXPECT_EQ(admin_body, "cannot delete operator token");
  EXPECT_EQ(api("DELETE", "/api/v3/configure/token").first, 400);
  EXPECT_EQ(api("GET", "/api/v3/configure/token?token_name=_admin").first, 405);
}

TEST_F(Influxdb3SimTest, TokensAreCreatedThroughTheApi) {
  start();
  auto [s1, b1] = api("POST", "/api/v3/configure/token/admin");
  EXPECT_EQ(s1, 201) << b1;
  json admin = parse_json(b1);
  EXPECT_EQ(admin["id"], 0);
  EXPECT_EQ(admin["name"], "_admin");
  EXPECT_TRUE(admin["token"].get<std::string>().starts_with("apiv3_"));
  EXPECT_TRUE(admin["expiry"].is_null());
  EXPECT_EQ(api("POST", "/api/v3/configure/token/admin").first, 409) << "one operator token";

  auto [s2, b2] = api("POST", "/api/v3/configure/token/named_admin",
                      R"({"token_name":"ops","expiry_secs":3600})");
  EXPECT_EQ(s2, 201) << b2;
  EXPECT_EQ(parse_json(b2)["expiry"], "2025-06-01T13:00:00.000Z");
  EXPECT_EQ(api("POST", "/api/v3/configure/token/named_admin", R"({"token_name":"ops"})").first,
            409);

  auto [s3, b3] = api("POST", "/api/v3/enterprise/configure/token", R"({"token_name":"reader",
      "permissions":[{"resource_type":"db","resource_names":["a","b"],"actions":["read"]},
                     {"resource_type":"system","resource_names":["health"],"actions":["read"]}]})");
  EXPECT_EQ(s3, 201) << b3;
  for (
      const char* bad :
      {R"({"permissions":[]})", R"({"token_name":"x","permissions":[]})",
       R"({"token_name":"x","permissions":[{"resource_type":"table","resource_names":["a"],"actions":["read"]}]})",
       R"({"token_name":"x","expiry_secs":-5,"permissions":[{"resource_type":"db","resource_names":["a"],"actions":["read"]}]})",
       "not json"}) {
    EXPECT_EQ(api("POST", "/api/v3/enterprise/configure/token", bad).first, 400) << bad;
  }
  json r = rows();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[1]["permissions"], "*:*:*");
  EXPECT_EQ(r[1]["expiry"], "2025-06-01T13:00:00");
  EXPECT_EQ(r[2]["token_id"], 2);
  EXPECT_EQ(r[2]["permissions"], "db:a,b:read;system:health:read");
}

TEST_F(Influxdb3SimTest, NumericIdsUniqueNamesAndNoRevokedState) {
  start();
  store().generate(300, 9);
  json r = rows();
  ASSERT_EQ(r.size(), 300u) << "generated tokens are never revoked (hidden)";
  std::set<std::string> names;
  for (std::size_t i = 0; i < r.size(); ++i) {
    EXPECT_EQ(r[i]["token_id"], i);
    EXPECT_NE(r[i]["permissions"], "") << "an InfluxDB 3 token always holds a permission";
    names.insert(r[i]["name"].get<std::string>());
  }
  EXPECT_EQ(names.size(), 300u) << "names address tokens: they never repeat";
  auto churn = store().churn(30, 4);
  EXPECT_GT(churn.revoked, 0u);
  EXPECT_EQ(rows().size(), 300u - churn.revoked + churn.created)
      << "churn deletes instead of revoking";
  for (const auto& t : store().list(true)) EXPECT_FALSE(t.revoked_at) << t.id;
}

TEST_F(Influxdb3SimTest, FaultsAndTheRequestLogWorkAsForTheOtherFlavours) {
  start();
  ASSERT_TRUE(store().create_named("victim", {{"write", "*"}}, std::nullopt).ok());
  FaultSpec ignore;
  ignore.kind = FaultKind::kIgnore;
  ignore.method = "DELETE";
  ignore.count = 1;
  store().add_fault(ignore);
  EXPECT_EQ(api("DELETE", "/api/v3/configure/token?token_name=victim").first, 200);
  EXPECT_EQ(rows().size(), 1u) << "acknowledged, not carried out";
  FaultSpec status;
  status.kind = FaultKind::kStatus;
  status.status = 503;
  status.path = "/api/v3/query_sql";
  status.count = 1;
  store().add_fault(status);
  EXPECT_EQ(api("GET", kList).first, 503);
  EXPECT_EQ(rows().size(), 1u);
  auto log = testing::call(*server_, "GET", "/_sim/requests", {}, nullptr);
  ASSERT_TRUE(log.ok());
  json requests = parse_json(log->body);
  ASSERT_GE(requests.size(), 2u);
  EXPECT_EQ(requests[0]["path"], "/api/v3/configure/token");
  EXPECT_EQ(requests[0]["query"], "token_name=victim");
  EXPECT_EQ(requests[0]["fault"], "ignore");
  json info = parse_json(testing::call(*server_, "GET", "/_sim/info", {}, nullptr)->body);
  EXPECT_EQ(info["flavor"], "influxdb3");
  EXPECT_EQ(server_->base_url(), server_->root_url());
}

TEST_F(Influxdb3SimTest, TokenwardensClientRoundTrip) {
  start();
  ASSERT_TRUE(store().create_named("_admin", kAdmin, std::nullopt).ok());
  store().generate(50, 5);
  auto c = client();
  influx::CallContext ctx;
  auto list = c->list_tokens(ctx);
  ASSERT_TRUE(list.ok()) << list.error().message;
  auto stored = store().list(false);
  ASSERT_EQ(list->tokens.size(), stored.size());
  for (std::size_t i = 0; i < stored.size(); ++i) {
    EXPECT_EQ(list->tokens[i], stored[i]) << "token " << stored[i].id << " reads back exactly";
  }
  auto gone = c->revoke("7", ctx);
  ASSERT_TRUE(gone.ok()) << gone.error().message;
  EXPECT_EQ(*gone, influx::RevokeOutcome::kRevoked);
  auto back = c->get_token("7", ctx);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_FALSE(back->has_value()) << "deleted";
  auto admin = c->revoke("0", ctx);
  ASSERT_FALSE(admin.ok());
  EXPECT_EQ(admin.error().http_status, 405);
  // A misbehaving server whose ids are not numbers fails the whole list.
  Token odd;
  odd.id = "abc";
  odd.description = "odd";
  store().put(odd);
  auto bad = c->list_tokens(ctx);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("column \"token_id\" is not a number"), std::string::npos)
      << bad.error().message;
}

}  // namespace
}  // namespace tw::sim

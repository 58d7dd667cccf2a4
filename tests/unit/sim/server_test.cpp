// The management API over real HTTP (SimServer on port 0, tw::influx::http_request).
#include "sim/server.h"

#include <gtest/gtest.h>

#include <regex>

#include "core/strings.h"
#include "influx/codec.h"
#include "sim/service.h"
#include "tests/unit/sim/sim_test_util.h"

namespace tw::sim {
namespace {

using testing::call;
using testing::parse_json;
using testing::start_sim;
using json = nlohmann::json;

constexpr const char* kAccount = "11111111-1111-4111-8111-111111111111";
constexpr const char* kCluster = "33333333-3333-4333-8333-333333333333";
constexpr const char* kUnknownId = "00000000-0000-4000-8000-000000000000";
const Timestamp kT0 = make_timestamp(2025, 6, 1, 12, 0, 0);

void expect_error(const Result<influx::HttpResponse>& r, int status,
                  const std::string& message = {}) {
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, status) << r->body;
  EXPECT_EQ(r->content_type, "application/json");
  json body = parse_json(r->body);
  ASSERT_TRUE(body.is_object());
  EXPECT_EQ(body["code"], status);
  ASSERT_TRUE(body["message"].is_string());
  if (!message.empty()) {
    EXPECT_EQ(body["message"], message);
  }
}

class ClusteredServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SimOptions o;
    o.clock = &clock_;
    server_ = start_sim(std::move(o));
    ASSERT_TRUE(server_);
  }
  Result<influx::HttpResponse> req(const std::string& method, const std::string& target,
                                   const std::string& body = {}) {
    return call(*server_, method, target, body);
  }
  std::string create(const std::string& body) {
    auto r = req("POST", "/api/v0/tokens", body);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200) << r->body;
    return parse_json(r->body).value("id", "");
  }

  ManualClock clock_{kT0};
  std::unique_ptr<SimServer> server_;
};

TEST_F(ClusteredServerTest, BaseUrlAndEmptyList) {
  EXPECT_EQ(server_->base_url(), "http://127.0.0.1:" + std::to_string(server_->port()) + "/api/v0");
  EXPECT_EQ(server_->tokens_url(), server_->base_url() + "/tokens");
  EXPECT_NE(server_->port(), 0);
  auto r = req("GET", "/api/v0/tokens");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->content_type, "application/json");
  EXPECT_EQ(r->body, "[]");
}

TEST_F(ClusteredServerTest, CreateAnswers200WithAccessTokenAndOmitsUnsetTimestamps) {
  auto r = req("POST", "/api/v0/tokens",
               R"({"description":"Read/write token for sensors","permissions":[)"
               R"({"action":"read","resource":"sensors"},{"action":"write","resource":"sensors"}],)"
               R"("someFutureField":{"x":1}})");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  json t = parse_json(r->body);
  EXPECT_TRUE(is_uuid(t["id"].get<std::string>()));
  EXPECT_EQ(t["description"], "Read/write token for sensors");
  EXPECT_EQ(t["permissions"].size(), 2u);
  EXPECT_EQ(t["createdAt"], "2025-06-01T12:00:00.000Z");
  EXPECT_FALSE(t.contains("expiresAt"));
  EXPECT_FALSE(t.contains("revokedAt"));
  EXPECT_FALSE(t.contains("accountId"));
  EXPECT_FALSE(t.contains("clusterId"));
  std::string access = t["accessToken"];
  EXPECT_GE(access.size(), 64u);
  EXPECT_EQ(access.rfind("apiv1_", 0), 0u);

  // GET never returns the secret; the list is the API shape.
  auto list = req("GET", "/api/v0/tokens");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->body.find("accessToken"), std::string::npos);
  EXPECT_EQ(list->body.find(access), std::string::npos);
  auto decoded = influx::decode_token_list(list->body);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  ASSERT_EQ(decoded->tokens.size(), 1u);
  EXPECT_EQ(decoded->tokens[0].id, t["id"]);
}

TEST_F(ClusteredServerTest, CreatedAtHasMillisecondsAndZ) {
  clock_.set(kT0 + std::chrono::milliseconds(1234));
  std::string id = create(R"({"description":"x","expiresAt":"2030-01-02T03:04:05+02:00"})");
  auto r = req("GET", "/api/v0/tokens/" + id);
  ASSERT_TRUE(r.ok());
  json t = parse_json(r->body);
  std::regex rfc3339(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)");
  EXPECT_TRUE(std::regex_match(t["createdAt"].get<std::string>(), rfc3339));
  EXPECT_EQ(t["createdAt"], "2025-06-01T12:00:01.234Z");
  EXPECT_EQ(t["expiresAt"], "2030-01-02T01:04:05.000Z");
}

TEST_F(ClusteredServerTest, CreateValidation) {
  expect_error(req("POST", "/api/v0/tokens", "{not json"), 400, "request body is not valid JSON");
  expect_error(req("POST", "/api/v0/tokens", ""), 400);
  expect_error(req("POST", "/api/v0/tokens", "[]"), 400);
  expect_error(req("POST", "/api/v0/tokens", R"({"permissions":[]})"), 400,
               "description is required");
  expect_error(req("POST", "/api/v0/tokens", R"({"description":5})"), 400);
  expect_error(req("POST", "/api/v0/tokens", R"({"description":"x","permissions":{}})"), 400);
  expect_error(
      req("POST", "/api/v0/tokens", R"({"description":"x","permissions":[{"action":"read"}]})"),
      400);
  expect_error(req("POST", "/api/v0/tokens",
                   R"({"description":"x","permissions":[{"action":"read","resource":""}]})"),
               400);
  std::string long_db(65, 'd');
  expect_error(req("POST", "/api/v0/tokens",
                   R"({"description":"x","permissions":[{"action":"read","resource":")" + long_db +
                       R"("}]})"),
               400);
  expect_error(req("POST", "/api/v0/tokens", R"({"description":"x","expiresAt":"tomorrow"})"), 400);
  expect_error(req("POST", "/api/v0/tokens", R"({"description":"x","expirationType":"datetime"})"),
               400);
  expect_error(
      req("POST", "/api/v0/tokens",
          R"({"description":"x","expirationType":"noExpiration","expiresAt":"2030-01-01T00:00:00Z"})"),
      400);
  expect_error(req("POST", "/api/v0/tokens", R"({"description":"x","expirationType":"weekly"})"),
               400);
  EXPECT_EQ(server_->store().size(), 0u);

  // The accepted forms.
  EXPECT_FALSE(create(R"({"description":"x","expirationType":"noExpiration"})").empty());
  EXPECT_FALSE(create(R"({"description":"x","expirationType":"datetime",)"
                      R"("expiresAt":"2030-01-01T00:00:00+0000"})")
                   .empty());
  std::string db64(64, 'd');
  EXPECT_FALSE(create(R"({"description":"","permissions":[{"action":"write","resource":")" + db64 +
                      R"("},{"action":"read","resource":"*"}]})")
                   .empty());
  EXPECT_EQ(server_->store().size(), 3u);
}

TEST_F(ClusteredServerTest, PatchSemantics) {
  std::string id =
      create(R"({"description":"old","permissions":[{"action":"read","resource":"a"}]})");
  auto r = req("PATCH", "/api/v0/tokens/" + id, R"({"description":"new"})");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  json t = parse_json(r->body);
  EXPECT_EQ(t["description"], "new");
  EXPECT_EQ(t["permissions"], json::parse(R"([{"action":"read","resource":"a"}])"));
  EXPECT_FALSE(t.contains("accessToken"));

  r = req(
      "PATCH", "/api/v0/tokens/" + id,
      R"({"permissions":[{"action":"write","resource":"b"},{"action":"read","resource":"b"}]})");
  ASSERT_TRUE(r.ok());
  t = parse_json(r->body);
  EXPECT_EQ(t["description"], "new");
  EXPECT_EQ(t["permissions"].size(), 2u);

  r = req("PATCH", "/api/v0/tokens/" + id, R"({"permissions":[]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(parse_json(r->body)["permissions"], json::array());

  expect_error(req("PATCH", "/api/v0/tokens/" + id, "{}"), 400);
  expect_error(req("PATCH", "/api/v0/tokens/" + id, R"({"unknown":1})"), 400);
  expect_error(req("PATCH", "/api/v0/tokens/" + id, R"({"expiresAt":"2030-01-01T00:00:00Z"})"),
               400);
  expect_error(req("PATCH", "/api/v0/tokens/" + id, R"({"permissions":null})"), 400);
  expect_error(req("PATCH", "/api/v0/tokens/" + id, "nope"), 400);
  expect_error(req("PATCH", std::string("/api/v0/tokens/") + kUnknownId, R"({"description":"x"})"),
               404);

  r = req("DELETE", "/api/v0/tokens/" + id);
  ASSERT_TRUE(r.ok());
  expect_error(req("PATCH", "/api/v0/tokens/" + id, R"({"description":"x"})"), 409,
               "token is revoked");
}

TEST_F(ClusteredServerTest, DeleteRevokesWith204ThenAnswers404) {
  std::string id = create(R"({"description":"doomed"})");
  clock_.advance(std::chrono::hours(2));
  auto r = req("DELETE", "/api/v0/tokens/" + id);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 204);
  EXPECT_TRUE(r->body.empty());

  // Kept, with revokedAt, in the list and by id.
  auto list = req("GET", "/api/v0/tokens");
  ASSERT_TRUE(list.ok());
  json arr = parse_json(list->body);
  ASSERT_EQ(arr.size(), 1u);
  EXPECT_EQ(arr[0]["revokedAt"], "2025-06-01T14:00:00.000Z");
  auto one = req("GET", "/api/v0/tokens/" + id);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->status, 200);
  EXPECT_EQ(parse_json(one->body)["revokedAt"], "2025-06-01T14:00:00.000Z");

  expect_error(req("DELETE", "/api/v0/tokens/" + id), 404);
  expect_error(req("DELETE", std::string("/api/v0/tokens/") + kUnknownId), 404);
  expect_error(req("GET", std::string("/api/v0/tokens/") + kUnknownId), 404);
}

TEST_F(ClusteredServerTest, RoutingErrors) {
  expect_error(req("GET", "/api/v0/nothing"), 404, "not found");
  expect_error(req("GET", "/"), 404);
  expect_error(req("GET", "/api/v0/tokens/"), 404);
  expect_error(req("GET", "/api/v0/tokens/a/b"), 404);
  expect_error(req("GET", "/api/v0/tokens/not-a-uuid"), 400, "tokenId must be a UUID");
  expect_error(req("DELETE", "/api/v0/tokens/123"), 400);
  auto r = req("PUT", "/api/v0/tokens");
  expect_error(r, 405, "method not allowed");
  ASSERT_TRUE(r.ok());
  expect_error(req("DELETE", "/api/v0/tokens"), 405);
  expect_error(req("POST", std::string("/api/v0/tokens/") + kUnknownId, "{}"), 405);
  expect_error(req("GET", "/api/v0/accounts/x/clusters/y/tokens"), 400);
  // A query string is ignored.
  auto q = req("GET", "/api/v0/tokens?limit=5");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->status, 200);
}

TEST_F(ClusteredServerTest, AuthIsRequiredOnEveryManagementRequest) {
  std::string id = create(R"({"description":"x"})");
  for (const char* auth : {static_cast<const char*>(nullptr), "Bearer wrong",
                           "Token test-management-token-5f2c", "Bearer", "Basic dXNlcjpwYXNz"}) {
    using Call = std::pair<std::string, std::string>;
    for (const auto& [method, target] :
         {Call{"GET", "/api/v0/tokens"}, Call{"GET", "/api/v0/tokens/" + id},
          Call{"DELETE", "/api/v0/tokens/" + id}, Call{"PATCH", "/api/v0/tokens/" + id}}) {
      auto r = call(*server_, method, target, R"({"description":"y"})", auth);
      expect_error(r, 401, "unauthorized");
    }
  }
  EXPECT_FALSE(server_->store().get(id)->revoked_at);
  EXPECT_EQ(server_->store().get(id)->description, "x");
  auto ok = call(*server_, "GET", "/api/v0/tokens", {}, "bearer   test-management-token-5f2c ");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 200);
}

TEST_F(ClusteredServerTest, DedicatedStylePathWorksWithAnyUuids) {
  std::string base =
      std::string("/api/v0/accounts/") + kAccount + "/clusters/" + kCluster + "/tokens";
  auto r = req("POST", base, R"({"description":"via dedicated path"})");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200);
  std::string id = parse_json(r->body)["id"];
  EXPECT_FALSE(parse_json(r->body).contains("accountId"));
  auto other =
      "/api/v0/accounts/aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa/clusters/"
      "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb/tokens";
  auto list = req("GET", other);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(parse_json(list->body).size(), 1u);
  auto del = req("DELETE", base + "/" + id);
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->status, 204);
  EXPECT_TRUE(server_->store().get(id)->revoked_at);
}

TEST_F(ClusteredServerTest, BodiesOverOneMebibyteAre413) {
  std::string big = R"({"description":")" + std::string(kMaxRequestBody, 'x') + R"("})";
  expect_error(req("POST", "/api/v0/tokens", big), 413);
  EXPECT_EQ(server_->store().size(), 0u);
  // The server is still fine afterwards.
  auto r = req("GET", "/api/v0/tokens");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
}

TEST(TokenFileTest, TokenFileIsReReadOnEveryRequest) {
  testing::TempDir dir;
  std::string file = dir.write("token", "first-token\n");
  SimOptions o;
  o.token_file = file;
  auto server = start_sim(std::move(o));
  ASSERT_TRUE(server);
  auto r = call(*server, "GET", "/api/v0/tokens", {}, "Bearer first-token");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  dir.write("token", "  second-token  \n");
  r = call(*server, "GET", "/api/v0/tokens", {}, "Bearer first-token");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
  r = call(*server, "GET", "/api/v0/tokens", {}, "Bearer second-token");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  dir.write("token", "");  // nothing accepted
  r = call(*server, "GET", "/api/v0/tokens", {}, "Bearer ");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
}

TEST(StartTest, RejectsBadOptions) {
  SimOptions none;
  EXPECT_FALSE(SimServer::start(none).ok());
  SimOptions half_tls;
  half_tls.management_token = "t";
  half_tls.tls_cert_file = "/nonexistent/cert.pem";
  EXPECT_FALSE(SimServer::start(half_tls).ok());
  SimOptions bad_ids;
  bad_ids.management_token = "t";
  bad_ids.flavor = Flavor::kDedicated;
  bad_ids.account_id = "not-a-uuid";
  auto r = SimServer::start(bad_ids);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  SimOptions missing_file;
  missing_file.token_file = "/nonexistent/token";
  EXPECT_FALSE(SimServer::start(missing_file).ok());
  // Stop is idempotent; the destructor after stop is fine.
  auto ok = start_sim();
  ASSERT_TRUE(ok);
  ok->stop();
  ok->stop();
}

class DedicatedServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SimOptions o;
    o.flavor = Flavor::kDedicated;
    o.account_id = kAccount;
    o.cluster_id = "33333333-3333-4333-8333-33333333333C";  // normalized to lower case
    o.clock = &clock_;
    server_ = start_sim(std::move(o));
    ASSERT_TRUE(server_);
    base_ = std::string("/api/v0/accounts/") + kAccount + "/clusters/" + kCluster + "/tokens";
  }
  ManualClock clock_{kT0};
  std::unique_ptr<SimServer> server_;
  std::string base_;
};

TEST_F(DedicatedServerTest, OnlyTheConfiguredAccountAndClusterPath) {
  EXPECT_EQ(server_->cluster_id(), "33333333-3333-4333-8333-33333333333c");
  base_ = std::string("/api/v0/accounts/") + kAccount + "/clusters/" + server_->cluster_id() +
          "/tokens";
  EXPECT_EQ(server_->tokens_url(), server_->base_url() + base_.substr(7));
  auto r = call(*server_, "POST", base_, R"({"description":"Limited Access Token"})");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  json t = parse_json(r->body);
  EXPECT_EQ(t["accountId"], kAccount);
  EXPECT_EQ(t["clusterId"], server_->cluster_id());
  // Key order follows the spec example: accountId, clusterId, id, ...
  EXPECT_EQ(r->body.rfind("{\"accountId\":", 0), 0u);

  auto list = call(*server_, "GET", base_);
  ASSERT_TRUE(list.ok());
  json arr = parse_json(list->body);
  ASSERT_EQ(arr.size(), 1u);
  EXPECT_EQ(arr[0]["accountId"], kAccount);

  expect_error(call(*server_, "GET", "/api/v0/tokens"), 404);
  expect_error(call(*server_, "GET",
                    "/api/v0/accounts/aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa/clusters/" +
                        server_->cluster_id() + "/tokens"),
               404);
  expect_error(call(*server_, "GET",
                    std::string("/api/v0/accounts/") + kAccount +
                        "/clusters/bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb/tokens"),
               404);
  auto del = call(*server_, "DELETE", base_ + "/" + t["id"].get<std::string>());
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->status, 204);
}

TEST(DedicatedDefaultsTest, GeneratesIdsWhenNotGiven) {
  SimOptions o;
  o.flavor = Flavor::kDedicated;
  auto server = start_sim(std::move(o));
  ASSERT_TRUE(server);
  EXPECT_TRUE(is_uuid(server->account_id()));
  EXPECT_TRUE(is_uuid(server->cluster_id()));
  EXPECT_NE(server->account_id(), server->cluster_id());
}

TEST(HideRevokedTest, ListLeavesRevokedOutButGetByIdReturnsThem) {
  SimOptions o;
  o.list_includes_revoked = false;
  auto server = start_sim(std::move(o));
  ASSERT_TRUE(server);
  auto a = server->store().create("active", {}, std::nullopt).token.id;
  auto b = server->store().create("revoked", {}, std::nullopt).token.id;
  ASSERT_TRUE(server->store().revoke(b).ok());
  auto list = call(*server, "GET", "/api/v0/tokens");
  ASSERT_TRUE(list.ok());
  json arr = parse_json(list->body);
  ASSERT_EQ(arr.size(), 1u);
  EXPECT_EQ(arr[0]["id"], a);
  auto one = call(*server, "GET", "/api/v0/tokens/" + b);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->status, 200);
  EXPECT_TRUE(parse_json(one->body).contains("revokedAt"));
  auto all = call(*server, "GET", "/_sim/tokens", {}, nullptr);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(parse_json(all->body).size(), 2u);
}

TEST(LargeListTest, Serves100kTokensQuickly) {
  auto server = start_sim();
  ASSERT_TRUE(server);
  server->store().generate(100'000, 1);
  // The first GET serializes (and caches) every token; later ones only copy the buffer out.
  auto t0 = std::chrono::steady_clock::now();
  auto first = call(*server, "GET", "/api/v0/tokens", {}, "Bearer test-management-token-5f2c",
                    std::chrono::seconds(60));
  auto t1 = std::chrono::steady_clock::now();
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_EQ(first->status, 200);
  auto second = call(*server, "GET", "/api/v0/tokens", {}, "Bearer test-management-token-5f2c",
                     std::chrono::seconds(60));
  auto t2 = std::chrono::steady_clock::now();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->body, second->body);
  auto decoded = influx::decode_token_list(second->body);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->tokens.size(), 100'000u);
  auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  std::printf(
      "[ timing ] 100k-token list: %zu bytes; first GET %lld ms, cached GET %lld ms "
      "(client-observed)\n",
      second->body.size(), static_cast<long long>(ms(t1 - t0)),
      static_cast<long long>(ms(t2 - t1)));
  EXPECT_LT(ms(t2 - t1), 5000);  // generous: debug and sanitizer builds
}

}  // namespace
}  // namespace tw::sim

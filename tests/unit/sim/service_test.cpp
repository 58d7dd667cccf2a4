// sim/service.cpp: the /_sim/ control API and the request log.
#include <gtest/gtest.h>

#include "core/strings.h"
#include "sim/server.h"
#include "tests/unit/sim/sim_test_util.h"

namespace tw::sim {
namespace {

using testing::parse_json;
using json = nlohmann::json;

const Timestamp kT0 = make_timestamp(2025, 6, 1, 12, 0, 0);

class ControlApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SimOptions o;
    o.clock = &clock_;
    server_ = testing::start_sim(std::move(o));
    ASSERT_TRUE(server_);
  }
  // A control call (no Authorization header): returns the parsed body, expecting `status`.
  json sim(const std::string& method, const std::string& target, const std::string& body = {},
           int status = 200) {
    auto r = testing::call(*server_, method, target, body, nullptr);
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (!r.ok()) return nullptr;
    EXPECT_EQ(r->status, status) << method << " " << target << ": " << r->body;
    if (r->body.empty()) return nullptr;
    return parse_json(r->body);
  }
  json api(const std::string& method, const std::string& target, const std::string& body = {}) {
    auto r = testing::call(*server_, method, target, body);
    EXPECT_TRUE(r.ok());
    if (!r.ok() || r->body.empty()) return nullptr;
    return parse_json(r->body);
  }

  ManualClock clock_{kT0};
  std::unique_ptr<SimServer> server_;
};

TEST_F(ControlApiTest, HealthInfoAndUnknownEndpoints) {
  EXPECT_EQ(sim("GET", "/_sim/health"), json::parse(R"({"ok":true})"));
  json info = sim("GET", "/_sim/info");
  EXPECT_EQ(info["flavor"], "clustered");
  EXPECT_EQ(info["tokens"], 0);
  json err = sim("GET", "/_sim/nothing", {}, 404);
  EXPECT_EQ(err["code"], 404);
  sim("POST", "/_sim/health", {}, 405);
}

TEST_F(ControlApiTest, SeedTokensFromObjects) {
  json r = sim("POST", "/_sim/tokens", R"([
    {"id":"55555555-5555-4555-8555-555555555555","description":"Limited Access Token",
     "permissions":[{"action":"read","resource":"DatabaseOne"}],"createdAt":"2023-12-21T17:32:28Z",
     "expiresAt":"2024-12-21T17:32:28.5Z"},
    {"description":"no id, no createdAt","revokedAt":"2025-01-01T00:00:00Z"},
    {"id":"weird id kept as is","permissions":null}
  ])");
  EXPECT_EQ(r, json::parse(R"({"count":3})"));
  json all = sim("GET", "/_sim/tokens");
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0]["createdAt"], "2023-12-21T17:32:28.000Z");
  EXPECT_EQ(all[0]["expiresAt"], "2024-12-21T17:32:28.500Z");
  EXPECT_TRUE(is_uuid(all[1]["id"].get<std::string>()));
  EXPECT_EQ(all[1]["createdAt"], "2025-06-01T12:00:00.000Z");
  EXPECT_EQ(all[1]["revokedAt"], "2025-01-01T00:00:00.000Z");
  EXPECT_EQ(all[2]["id"], "weird id kept as is");
  EXPECT_EQ(all[2]["description"], "");

  // An existing id is replaced, not duplicated; a single object is accepted too.
  sim("POST", "/_sim/tokens",
      R"({"id":"55555555-5555-4555-8555-555555555555","description":"v2"})");
  all = sim("GET", "/_sim/tokens");
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0]["description"], "v2");
  EXPECT_FALSE(all[0].contains("expiresAt"));

  // All or nothing on errors.
  json err = sim("POST", "/_sim/tokens", R"([{"id":"x"},{"createdAt":"yesterday"}])", 400);
  EXPECT_NE(err["message"].get<std::string>().find("[1].createdAt"), std::string::npos);
  EXPECT_EQ(sim("GET", "/_sim/tokens").size(), 3u);
  sim("POST", "/_sim/tokens", "not json", 400);
}

TEST_F(ControlApiTest, GenerateIsDeterministicAndDoesNotEchoTokens) {
  sim("POST", "/_sim/clock", R"({"now":"2026-01-01T00:00:00Z"})");
  json r = sim("POST", "/_sim/tokens", R"({"generate":250,"seed":9})");
  EXPECT_EQ(r, json::parse(R"({"count":250})"));
  json first = sim("GET", "/_sim/tokens");
  ASSERT_EQ(first.size(), 250u);
  sim("POST", "/_sim/reset");
  sim("POST", "/_sim/clock", R"({"now":"2026-01-01T00:00:00Z"})");
  sim("POST", "/_sim/tokens", R"({"generate":250,"seed":9})");
  EXPECT_EQ(sim("GET", "/_sim/tokens"), first);
  sim("POST", "/_sim/tokens", R"({"generate":-1})", 400);
}

TEST_F(ControlApiTest, PutReplacesWholeStateAndDeleteRemoves) {
  std::string id = api("POST", "/api/v0/tokens",
                       R"({"description":"d","permissions":[{"action":"read","resource":"a"}],)"
                       R"("expiresAt":"2030-01-01T00:00:00Z"})")["id"];
  json t = sim("PUT", "/_sim/tokens/" + id,
               R"({"description":"replaced","createdAt":"2020-02-02T02:02:02.002Z",)"
               R"("revokedAt":"2021-01-01T00:00:00Z"})");
  EXPECT_EQ(t["id"], id);
  EXPECT_EQ(t["description"], "replaced");
  EXPECT_EQ(t["permissions"], json::array());
  EXPECT_EQ(t["createdAt"], "2020-02-02T02:02:02.002Z");
  EXPECT_FALSE(t.contains("expiresAt"));  // absent = unset
  EXPECT_EQ(t["revokedAt"], "2021-01-01T00:00:00.000Z");
  EXPECT_EQ(sim("GET", "/_sim/tokens/" + id), t);
  sim("PUT", "/_sim/tokens/" + id, R"({"id":"other"})", 400);
  sim("PUT", "/_sim/tokens/00000000-0000-4000-8000-000000000000", R"({"description":"x"})", 404);

  sim("DELETE", "/_sim/tokens/" + id);
  sim("DELETE", "/_sim/tokens/" + id, {}, 404);
  sim("GET", "/_sim/tokens/" + id, {}, 404);
  // Gone from the management API too (as if deleted from the cluster).
  auto r = testing::call(*server_, "GET", "/api/v0/tokens/" + id);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
}

TEST_F(ControlApiTest, Churn) {
  sim("POST", "/_sim/tokens", R"({"generate":600,"seed":1})");
  json r = sim("POST", "/_sim/churn", R"({"percent":1.0,"seed":5})");
  EXPECT_EQ(r, json::parse(R"({"created":2,"updated":2,"revoked":2})"));
  EXPECT_EQ(sim("GET", "/_sim/tokens").size(), 602u);
  r = sim("POST", "/_sim/churn");  // defaults: 1%
  EXPECT_EQ(r["created"].get<int>() + r["updated"].get<int>() + r["revoked"].get<int>(), 6);
  sim("POST", "/_sim/churn", R"({"percent":0})", 400);
  sim("POST", "/_sim/churn", R"({"percent":"lots"})", 400);
}

TEST_F(ControlApiTest, Clock) {
  json c = sim("GET", "/_sim/clock");
  EXPECT_EQ(c["now"], "2025-06-01T12:00:00.000Z");
  EXPECT_EQ(c["mode"], "real");
  c = sim("POST", "/_sim/clock", R"({"advance":"36h"})");
  EXPECT_EQ(c["now"], "2025-06-03T00:00:00.000Z");
  EXPECT_EQ(c["mode"], "offset");
  c = sim("POST", "/_sim/clock", R"({"now":"2030-05-05T05:05:05Z"})");
  EXPECT_EQ(c["mode"], "frozen");
  clock_.advance(std::chrono::hours(1));
  c = sim("POST", "/_sim/clock", R"({"advance":"1d"})");
  EXPECT_EQ(c["now"], "2030-05-06T05:05:05.000Z");
  EXPECT_EQ(c["mode"], "frozen");
  // New tokens and revocations use the simulated time.
  std::string id = api("POST", "/api/v0/tokens", R"({"description":"x"})")["id"];
  EXPECT_EQ(api("GET", "/api/v0/tokens/" + id)["createdAt"], "2030-05-06T05:05:05.000Z");
  c = sim("POST", "/_sim/clock", R"({"real":true})");
  EXPECT_EQ(c["mode"], "real");
  EXPECT_EQ(c["now"], "2025-06-01T13:00:00.000Z");
  sim("POST", "/_sim/clock", R"({})", 400);
  sim("POST", "/_sim/clock", R"({"now":"soon"})", 400);
  sim("POST", "/_sim/clock", R"({"advance":"-1h"})", 400);
  sim("POST", "/_sim/clock", R"({"now":"2030-01-01T00:00:00Z","real":true})", 400);
}

TEST_F(ControlApiTest, FaultsListAndClear) {
  json f = sim(
      "POST", "/_sim/faults",
      R"({"kind":"status","status":503,"delay":"0s","count":2,"method":"GET","path":"/tokens"})");
  EXPECT_EQ(f["id"], 1);
  sim("POST", "/_sim/faults", R"({"kind":"slow","delay":"2s"})");
  json list = sim("GET", "/_sim/faults");
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0]["kind"], "status");
  EXPECT_EQ(list[0]["status"], 503);
  EXPECT_EQ(list[0]["count"], 2);
  EXPECT_EQ(list[0]["method"], "GET");
  EXPECT_EQ(list[1]["delay"], "2s");
  EXPECT_TRUE(list[1]["path"].is_null());
  sim("DELETE", "/_sim/faults/2");
  sim("DELETE", "/_sim/faults/2", {}, 404);
  EXPECT_EQ(sim("GET", "/_sim/faults").size(), 1u);
  sim("DELETE", "/_sim/faults");
  EXPECT_EQ(sim("GET", "/_sim/faults"), json::array());
  json err = sim("POST", "/_sim/faults", R"({"kind":"explode"})", 400);
  EXPECT_NE(err["message"].get<std::string>().find("truncate"), std::string::npos);
  sim("POST", "/_sim/faults", R"({"kind":"status","status":99})", 400);
  sim("POST", "/_sim/faults", R"({"kind":"slow","delay":"soon"})", 400);
  sim("POST", "/_sim/faults", R"({"kind":"slow","count":-1})", 400);
}

TEST_F(ControlApiTest, RequestLogRecordsManagementRequestsWithoutTheToken) {
  api("GET", "/api/v0/tokens");
  std::string id = api("POST", "/api/v0/tokens", R"({"description":"logged body"})")["id"];
  EXPECT_TRUE(testing::call(*server_, "GET", "/api/v0/tokens", {}, nullptr).ok());
  EXPECT_TRUE(
      testing::call(*server_, "DELETE", "/api/v0/tokens/" + id, {}, "Bearer not-the-token").ok());
  EXPECT_TRUE(testing::call(*server_, "PATCH", "/api/v0/tokens/" + id, "{broken", nullptr).ok());
  sim("GET", "/_sim/health");  // control requests are not logged

  auto raw = testing::call(*server_, "GET", "/_sim/requests", {}, nullptr);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->body.find(testing::kToken), std::string::npos);
  EXPECT_EQ(raw->body.find("not-the-token"), std::string::npos);
  EXPECT_EQ(raw->body.find("Bearer"), std::string::npos);
  EXPECT_EQ(raw->body.find("accessToken"), std::string::npos);
  json log = parse_json(raw->body);
  ASSERT_EQ(log.size(), 5u);
  EXPECT_EQ(log[0]["seq"], 1);
  EXPECT_EQ(log[0]["method"], "GET");
  EXPECT_EQ(log[0]["path"], "/api/v0/tokens");
  EXPECT_EQ(log[0]["status"], 200);
  EXPECT_EQ(log[0]["auth"], "ok");
  EXPECT_TRUE(log[0]["fault"].is_null());
  EXPECT_TRUE(log[0]["body"].is_null());
  EXPECT_EQ(log[0]["time"], "2025-06-01T12:00:00.000Z");
  EXPECT_EQ(log[1]["body"], json::parse(R"({"description":"logged body"})"));
  EXPECT_EQ(log[2]["auth"], "missing");
  EXPECT_EQ(log[2]["status"], 401);
  EXPECT_EQ(log[3]["auth"], "invalid");
  EXPECT_EQ(log[4]["body"], "{broken");  // not JSON: kept as a string
  EXPECT_EQ(log[4]["status"], 401);

  sim("DELETE", "/_sim/requests");
  EXPECT_EQ(sim("GET", "/_sim/requests"), json::array());
}

TEST_F(ControlApiTest, ResetClearsTokensFaultsLogAndClock) {
  sim("POST", "/_sim/tokens", R"({"generate":5})");
  sim("POST", "/_sim/faults", R"({"kind":"empty","path":"/nothing"})");
  sim("POST", "/_sim/clock", R"({"now":"2030-01-01T00:00:00Z"})");
  api("GET", "/api/v0/tokens");
  sim("POST", "/_sim/reset");
  EXPECT_EQ(sim("GET", "/_sim/tokens"), json::array());
  EXPECT_EQ(sim("GET", "/_sim/faults"), json::array());
  EXPECT_EQ(sim("GET", "/_sim/requests"), json::array());
  EXPECT_EQ(sim("GET", "/_sim/clock")["mode"], "real");
}

}  // namespace
}  // namespace tw::sim

// Injected faults, as a client sees them on the wire.
#include <gtest/gtest.h>

#include <thread>

#include "influx/codec.h"
#include "sim/server.h"
#include "tests/unit/sim/sim_test_util.h"

namespace tw::sim {
namespace {

using testing::parse_json;
using json = nlohmann::json;
using std::chrono::milliseconds;

constexpr const char* kAuth = "Bearer test-management-token-5f2c";

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::start_sim();
    ASSERT_TRUE(server_);
    server_->store().generate(50, 3);
  }
  void fault(const std::string& spec) {
    auto r = testing::call(*server_, "POST", "/_sim/faults", spec, nullptr);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 200) << r->body;
  }
  Result<influx::HttpResponse> get(Duration timeout = std::chrono::seconds(10)) {
    return testing::call(*server_, "GET", "/api/v0/tokens", {}, kAuth, timeout);
  }
  json last_logged() {
    auto log = server_->store().requests();
    EXPECT_FALSE(log.empty());
    if (log.empty()) return nullptr;
    const auto& r = log.back();
    return json{{"status", r.status}, {"fault", r.fault ? to_string(*r.fault) : "none"}};
  }

  std::unique_ptr<SimServer> server_;
};

TEST_F(FaultTest, StatusAnswersWithTheSpecErrorBodyForCountRequests) {
  fault(R"({"kind":"status","status":500,"count":2})");
  for (int i = 0; i < 2; ++i) {
    auto r = get();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 500);
    EXPECT_EQ(r->content_type, "application/json");
    EXPECT_EQ(parse_json(r->body),
              json::parse(R"({"code":500,"message":"internal server error"})"));
  }
  auto r = get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);

  fault(R"({"kind":"status","status":403,"count":1})");
  r = get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(parse_json(r->body), json::parse(R"({"code":403,"message":"forbidden"})"));
  fault(R"({"kind":"status","status":404,"count":1})");
  EXPECT_EQ(parse_json(get()->body)["message"], "not found");
  fault(R"({"kind":"status","status":401,"count":1})");
  EXPECT_EQ(parse_json(get()->body)["message"], "unauthorized");
  fault(R"({"kind":"status","status":503,"count":1})");
  EXPECT_EQ(parse_json(get()->body)["message"], "service unavailable");
  EXPECT_EQ(last_logged(), json::parse(R"({"status":503,"fault":"status"})"));
}

TEST_F(FaultTest, StatusIsNotCarriedOut) {
  std::string id = server_->store().create("x", {}, std::nullopt).token.id;
  fault(R"({"kind":"status","status":500,"count":1,"method":"DELETE"})");
  auto r = testing::call(*server_, "DELETE", "/api/v0/tokens/" + id, {}, kAuth);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 500);
  EXPECT_FALSE(server_->store().get(id)->revoked_at);
}

TEST_F(FaultTest, StatusWithDelayWaitsFirst) {
  fault(R"({"kind":"status","status":502,"count":1,"delay":"200ms"})");
  auto t0 = std::chrono::steady_clock::now();
  auto r = get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 502);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, milliseconds(190));
}

TEST_F(FaultTest, StatusCanEchoTheAuthorizationHeaderInAGivenCase) {
  fault(R"({"kind":"status","status":400,"count":3,"echo_auth":"upper"})");
  EXPECT_EQ(
      parse_json(get()->body),
      json::parse(
          R"J({"code":400,"message":"bad request (header was BEARER TEST-MANAGEMENT-TOKEN-5F2C)"})J"));
  fault(R"({"kind":"status","status":400,"count":1,"echo_auth":"exact"})");
  auto listed = testing::call(*server_, "GET", "/_sim/faults", {}, nullptr);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(parse_json(listed->body)[0]["echo_auth"], "upper");
  EXPECT_EQ(parse_json(get()->body)["message"],
            "bad request (header was BEARER TEST-MANAGEMENT-TOKEN-5F2C)");
  EXPECT_EQ(parse_json(get()->body)["message"],
            "bad request (header was BEARER TEST-MANAGEMENT-TOKEN-5F2C)");
  EXPECT_EQ(parse_json(get()->body)["message"],
            "bad request (header was " + std::string(kAuth) + ")");
  auto bad = testing::call(*server_, "POST", "/_sim/faults",
                           R"({"kind":"status","echo_auth":"title"})", nullptr);
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 400);
}

TEST_F(FaultTest, TimeoutNeverAnswers) {
  fault(R"({"kind":"timeout","count":1})");
  auto t0 = std::chrono::steady_clock::now();
  auto r = get(milliseconds(300));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout) << r.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  EXPECT_EQ(last_logged(), json::parse(R"({"status":0,"fault":"timeout"})"));
  auto ok = get();  // used up
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 200);
}

TEST_F(FaultTest, TimeoutHoldEndsAfterDelay) {
  fault(R"({"kind":"timeout","count":1,"delay":"200ms"})");
  auto r = get(std::chrono::seconds(5));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNetwork) << r.error().message;  // closed, no answer
}

TEST_F(FaultTest, StopIsPromptWhileAConnectionIsHeld) {
  fault(R"({"kind":"timeout"})");
  std::optional<Result<influx::HttpResponse>> result;
  std::thread client([&] { result.emplace(get(std::chrono::seconds(30))); });
  // Wait until the server holds the request (it is logged when received).
  for (int i = 0; i < 500 && server_->store().requests().empty(); ++i) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_FALSE(server_->store().requests().empty());
  auto t0 = std::chrono::steady_clock::now();
  server_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  client.join();
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok());
}

TEST_F(FaultTest, SlowTricklesTheCorrectBody) {
  auto normal = get();
  ASSERT_TRUE(normal.ok());
  fault(R"({"kind":"slow","delay":"400ms","count":1})");
  auto t0 = std::chrono::steady_clock::now();
  auto r = get();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_GE(std::chrono::steady_clock::now() - t0, milliseconds(380));
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, normal->body);

  fault(R"({"kind":"slow","delay":"2s","count":1})");
  auto timed_out = get(milliseconds(200));
  ASSERT_FALSE(timed_out.ok());
  EXPECT_EQ(timed_out.error().code, ErrorCode::kTimeout);
}

TEST_F(FaultTest, TruncateSendsHalfTheBodyAndCloses) {
  fault(R"({"kind":"truncate","count":1})");
  auto r = get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNetwork);
  EXPECT_NE(r.error().message.find("closed before the response was complete"), std::string::npos)
      << r.error().message;
  // The request itself was carried out (a DELETE revokes even though the answer is cut).
  std::string id = server_->store().create("x", {}, std::nullopt).token.id;
  fault(R"({"kind":"truncate","count":1,"method":"DELETE"})");
  auto del = testing::call(*server_, "DELETE", "/api/v0/tokens/" + id, {}, kAuth);
  EXPECT_FALSE(del.ok());
  EXPECT_TRUE(server_->store().get(id)->revoked_at);
}

TEST_F(FaultTest, MalformedIs200WithoutJson) {
  fault(R"({"kind":"malformed","count":1})");
  auto r = get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(nlohmann::json::parse(r->body, nullptr, false).is_discarded());
  EXPECT_FALSE(influx::decode_token_list(r->body).ok());
}

TEST_F(FaultTest, EmptyIs200WithAnEmptyList) {
  fault(R"({"kind":"empty","count":1})");
  auto r = get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "[]");
}

TEST_F(FaultTest, ResetClosesWithoutAnswer) {
  fault(R"({"kind":"reset","count":1})");
  auto r = get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNetwork);
  EXPECT_EQ(last_logged(), json::parse(R"({"status":0,"fault":"reset"})"));
  auto ok = get();
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 200);
}

TEST_F(FaultTest, MethodAndPathFilters) {
  std::string id = server_->store().list().front().id;
  fault(R"({"kind":"status","status":503,"method":"post"})");
  fault(R"({"kind":"status","status":502,"path":"/tokens/"})");
  auto list = get();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->status, 200);
  auto one = testing::call(*server_, "GET", "/api/v0/tokens/" + id, {}, kAuth);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->status, 502);
  auto create = testing::call(*server_, "POST", "/api/v0/tokens", R"({"description":"x"})", kAuth);
  ASSERT_TRUE(create.ok());
  EXPECT_EQ(create->status, 503);
}

TEST_F(FaultTest, FaultsNeverApplyToTheControlApi) {
  fault(R"({"kind":"reset"})");
  auto r = testing::call(*server_, "GET", "/_sim/health", {}, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  auto faults = testing::call(*server_, "GET", "/_sim/faults", {}, nullptr);
  ASSERT_TRUE(faults.ok());
  EXPECT_EQ(parse_json(faults->body)[0]["hits"], 0);
}

}  // namespace
}  // namespace tw::sim

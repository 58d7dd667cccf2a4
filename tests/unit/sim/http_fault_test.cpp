// The simulator's faults for HTTP as real servers use it (issue 10): `redirect` answers a 3xx
// with a Location, and `status` faults may send Retry-After.
#include <gtest/gtest.h>

#include "sim/server.h"
#include "tests/unit/sim/sim_test_util.h"

namespace tw::sim {
namespace {

using json = nlohmann::json;
using testing::parse_json;

constexpr const char* kAuth = "Bearer test-management-token-5f2c";
constexpr const char* kDedicatedStyle =
    "/api/v0/accounts/11111111-1111-4111-8111-111111111111/clusters/"
    "33333333-3333-4333-8333-333333333333/tokens";

class HttpFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::start_sim();
    ASSERT_TRUE(server_);
    server_->store().generate(5, 3);
  }
  // POST /_sim/faults; the status of the answer.
  int fault(const json& spec) {
    auto r = testing::call(*server_, "POST", "/_sim/faults", spec.dump(), nullptr);
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->status : 0;
  }
  // A management request as it comes off the wire: redirects are not followed.
  Result<influx::HttpResponse> raw(const std::string& method, const std::string& target) {
    std::string root = server_->base_url();
    root.resize(root.size() - std::string("/api/v0").size());
    auto url = influx::parse_url(root);
    EXPECT_TRUE(url.ok());
    influx::HttpRequest req;
    req.method = method;
    req.target = target;
    req.headers.emplace_back("Authorization", kAuth);
    influx::HttpOptions opts;
    opts.max_redirects = 0;
    return influx::http_request(*url, req, opts);
  }

  std::unique_ptr<SimServer> server_;
};

TEST_F(HttpFaultTest, RedirectAnswersItsStatusWithTheLocationAndCarriesNothingOut) {
  ASSERT_EQ(fault({{"kind", "redirect"},
                   {"status", 307},
                   {"location", kDedicatedStyle},
                   {"method", "DELETE"},
                   {"count", 1}}),
            200);
  const std::string id = server_->store().list().front().id;
  auto r = raw("DELETE", "/api/v0/tokens/" + id);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 307);
  EXPECT_EQ(r->location, kDedicatedStyle);
  EXPECT_EQ(parse_json(r->body), json::parse(R"({"code":307,"message":"temporary redirect"})"));
  EXPECT_FALSE(server_->store().get(id)->revoked_at) << "a redirect carries nothing out";
  auto log = server_->store().requests();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].status, 307);
  EXPECT_EQ(log[0].fault, FaultKind::kRedirect);
  EXPECT_EQ(log[0].auth, AuthResult::kOk);
}

TEST_F(HttpFaultTest, ARedirectDefaultsTo302AndTheClientFollowsItWithinTheOrigin) {
  ASSERT_EQ(
      fault({{"kind", "redirect"}, {"location", kDedicatedStyle}, {"path", "/api/v0/tokens$"}}),
      200);
  auto r = raw("GET", "/api/v0/tokens");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 302);
  // The client follows it (same origin) to the Dedicated-style path the Clustered sim serves.
  auto followed = testing::call(*server_, "GET", "/api/v0/tokens");
  ASSERT_TRUE(followed.ok()) << followed.error().message;
  EXPECT_EQ(followed->status, 200);
  EXPECT_EQ(parse_json(followed->body).size(), 5u);
  auto log = server_->store().requests();
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(log[2].path, kDedicatedStyle);
  EXPECT_EQ(log[2].auth, AuthResult::kOk);

  auto listed = testing::call(*server_, "GET", "/_sim/faults", {}, nullptr);
  ASSERT_TRUE(listed.ok());
  json f = parse_json(listed->body).at(0);
  EXPECT_EQ(f["kind"], "redirect");
  EXPECT_EQ(f["status"], 302);
  EXPECT_EQ(f["location"], kDedicatedStyle);
}

TEST_F(HttpFaultTest, StatusFaultsSendRetryAfterAsGiven) {
  ASSERT_EQ(fault({{"kind", "status"}, {"status", 429}, {"retry_after", 30}, {"count", 1}}), 200);
  ASSERT_EQ(fault({{"kind", "status"},
                   {"status", 503},
                   {"retry_after", "Wed, 21 Oct 2015 07:28:00 GMT"},
                   {"count", 1}}),
            200);
  auto r = raw("GET", "/api/v0/tokens");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 429);
  EXPECT_EQ(r->retry_after, std::optional<Duration>(std::chrono::seconds(30)));
  r = raw("GET", "/api/v0/tokens");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->retry_after, std::optional<Duration>(Duration(0))) << "a date in the past";
  r = raw("GET", "/api/v0/tokens");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->retry_after, std::nullopt);
}

TEST_F(HttpFaultTest, BadSpecsAreRefused) {
  const std::vector<json> bad = {
      {{"kind", "redirect"}},                                       // no location
      {{"kind", "redirect"}, {"location", "/x"}, {"status", 200}},  // not a redirect status
      {{"kind", "redirect"}, {"location", "/x"}, {"status", 304}},
      {{"kind", "redirect"}, {"location", "/x\r\nSet-Cookie: a=b"}},
      {{"kind", "status"}, {"location", "/x"}},
      {{"kind", "status"}, {"retry_after", -1}},
      {{"kind", "status"}, {"retry_after", 1.5}},
      {{"kind", "status"}, {"retry_after", "1\n"}},
      {{"kind", "empty"}, {"retry_after", 5}},
  };
  for (const auto& spec : bad) EXPECT_EQ(fault(spec), 400) << spec.dump();
  auto listed = testing::call(*server_, "GET", "/_sim/faults", {}, nullptr);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(parse_json(listed->body), json::array());
}

}  // namespace
}  // namespace tw::sim

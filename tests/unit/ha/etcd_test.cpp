// The etcd gateway's request bodies (the rest runs against a real etcd in
// tests/integration/test_ha.py) and the client's behaviour with no reachable endpoint.
#include "ha/etcd.h"

#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>

#include "core/base64.h"
#include "tests/unit/influx/test_http_server.h"

namespace tw::ha {
namespace {

using json = nlohmann::json;

TEST(EtcdBodies, CampaignCreatesTheKeyOnlyIfAbsentAndReadsItOtherwise) {
  auto j = json::parse(EtcdCoordination::campaign_body("/tw/leader", "host-a", 7587));
  ASSERT_EQ(j["compare"].size(), 1u);
  EXPECT_EQ(j["compare"][0]["key"], base64_encode("/tw/leader"));
  EXPECT_EQ(j["compare"][0]["target"], "CREATE");
  EXPECT_EQ(j["compare"][0]["result"], "EQUAL");
  EXPECT_EQ(j["compare"][0]["create_revision"], "0");
  const auto& put = j["success"][0]["request_put"];
  EXPECT_EQ(put["key"], base64_encode("/tw/leader"));
  EXPECT_EQ(put["value"], base64_encode("host-a"));
  EXPECT_EQ(put["lease"], "7587");  // int64 as a string, as the gateway wants
  EXPECT_EQ(j["failure"][0]["request_range"]["key"], base64_encode("/tw/leader"));
}

TEST(EtcdBodies, FencedPutComparesTheLeaderKeysCreateRevision) {
  auto j = json::parse(
      EtcdCoordination::fenced_put_body("/tw/actions/c/t/p", "{\"state\":1}", "/tw/leader", 42));
  EXPECT_EQ(j["compare"][0]["key"], base64_encode("/tw/leader"));
  EXPECT_EQ(j["compare"][0]["target"], "CREATE");
  EXPECT_EQ(j["compare"][0]["create_revision"], "42");
  const auto& put = j["success"][0]["request_put"];
  EXPECT_EQ(put["key"], base64_encode("/tw/actions/c/t/p"));
  EXPECT_EQ(put["value"], base64_encode("{\"state\":1}"));
  EXPECT_FALSE(put.contains("lease"));  // intents outlive the leader's lease
  EXPECT_TRUE(j["failure"].empty());
}

TEST(EtcdBodies, PrefixEndIsThePrefixWithItsLastByteIncremented) {
  EXPECT_EQ(EtcdCoordination::prefix_end("/tw/actions/"), "/tw/actions0");
  EXPECT_EQ(EtcdCoordination::prefix_end("a\xff"), "b");
  EXPECT_EQ(EtcdCoordination::prefix_end(""), std::string(1, '\0'));
}

TEST(EtcdClient, NoEndpointAnsweringIsOneSentenceWithinTheDeadline) {
  EtcdOptions o;
  // Nothing listens on port 1 of loopback: refused at once, on every endpoint.
  o.endpoints = {*influx::parse_url("http://127.0.0.1:1"),
                 *influx::parse_url("http://127.0.0.1:2")};
  o.timeout = std::chrono::seconds(2);
  struct Counter : CallObserver {
    int failed = 0;
    void etcd_call(const char*, bool ok) override { failed += ok ? 0 : 1; }
  } counter;
  EtcdCoordination etcd(o, &counter);
  const auto start = std::chrono::steady_clock::now();
  auto r = etcd.keep_alive(1);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNetwork);
  EXPECT_NE(r.error().message.find("no etcd endpoint answered keepalive"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
  EXPECT_EQ(counter.failed, 1);
}

}  // namespace
}  // namespace tw::ha

// ---- answers from a server (tests/unit/influx/test_http_server.h) -------------------------------

namespace tw::ha {
namespace {

using tw::testing::CannedResponse;
using tw::testing::RecordedRequest;
using tw::testing::TestHttpServer;

EtcdOptions options_for(std::initializer_list<const TestHttpServer*> servers) {
  EtcdOptions o;
  for (const auto* s : servers) o.endpoints.push_back(*influx::parse_url(s->base_url("")));
  o.timeout = std::chrono::seconds(2);
  return o;
}

TEST(EtcdAnswers, AnExpiredLeaseRenewsToZeroAndAStreamErrorIsRefused) {
  TestHttpServer gone([](const RecordedRequest&) {
    return CannedResponse{200, R"({"result":{"header":{"revision":"9"},"ID":"5"}})"};
  });
  EtcdCoordination a(options_for({&gone}));
  auto r = a.keep_alive(5);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->ttl, Duration(0));
  EXPECT_EQ(r->revision, 9);

  TestHttpServer error([](const RecordedRequest&) {
    return CannedResponse{200, R"({"error":{"grpc_code":14,"message":"etcdserver: no leader"}})"};
  });
  EtcdCoordination b(options_for({&error}));
  auto e = b.keep_alive(5);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, ErrorCode::kHttpStatus);
  EXPECT_NE(e.error().message.find("etcdserver: no leader"), std::string::npos)
      << e.error().message;
}

TEST(EtcdAnswers, SomethingUnreadableIsAParseErrorNamingTheCall) {
  for (const char* body : {"not json", "[]", R"({"kvs":"nope"})",
                           R"({"kvs":[{"key":"!!not base64!!","create_revision":"1"}]})",
                           R"({"kvs":[{"key":"a2V5","create_revision":"one"}]})"}) {
    TestHttpServer server([&](const RecordedRequest&) { return CannedResponse{200, body}; });
    EtcdCoordination etcd(options_for({&server}));
    auto r = etcd.range_prefix("/tw/actions/", 0);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.error().code, ErrorCode::kParse) << body;
    EXPECT_NE(r.error().message.find("etcd answered range"), std::string::npos)
        << r.error().message;
  }
}

TEST(EtcdAnswers, AMemberThatFailsHandsTheCallToTheNextWithinTheDeadline) {
  TestHttpServer sick([](const RecordedRequest&) {
    return CannedResponse{503, R"({"error":"etcdserver: leader changed","code":14})"};
  });
  TestHttpServer hanging([](const RecordedRequest&) {
    CannedResponse c;
    c.hang = true;
    return c;
  });
  TestHttpServer healthy([](const RecordedRequest&) {
    return CannedResponse{200, R"({"header":{"revision":"3"},"ID":"77","TTL":"15"})"};
  });
  EtcdCoordination etcd(options_for({&sick, &hanging, &healthy}));
  const auto start = std::chrono::steady_clock::now();
  auto l = etcd.grant(std::chrono::seconds(15));
  ASSERT_TRUE(l.ok()) << l.error().message;
  EXPECT_EQ(l->id, 77);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  // The next call starts at the member that answered.
  ASSERT_TRUE(etcd.grant(std::chrono::seconds(15)).ok());
  EXPECT_EQ(sick.request_count(), 1u);
  EXPECT_EQ(healthy.request_count(), 2u);
}

TEST(EtcdAnswers, ARefusalBelow500IsFinalAndOneSentence) {
  TestHttpServer denied([](const RecordedRequest&) {
    return CannedResponse{403, R"({"error":"etcdserver: permission denied","code":7})"};
  });
  TestHttpServer other([](const RecordedRequest&) { return CannedResponse{200, "{}"}; });
  EtcdCoordination etcd(options_for({&denied, &other}));
  auto s = etcd.put("/elsewhere", "x", 0);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().http_status, 403);
  EXPECT_NE(s.error().message.find("refused put: etcdserver: permission denied"), std::string::npos)
      << s.error().message;
  EXPECT_EQ(other.request_count(), 0u) << "another member would say the same";
}

TEST(EtcdAnswers, LogsInSendsTheTokenAndLogsInAgainWhenItExpired) {
  std::atomic<int> logins{0};
  std::atomic<int> tok1_uses{0};
  TestHttpServer server([&](const RecordedRequest& r) {
    if (r.target == "/v3/auth/authenticate") {
      ++logins;
      return CannedResponse{200, "{\"token\":\"tok-" + std::to_string(logins.load()) + "\"}"};
    }
    auto it = r.headers.find("authorization");
    // The first token expires after one use, as etcd's simple tokens do after a while.
    if (it == r.headers.end() || (it->second == "tok-1" && ++tok1_uses > 1)) {
      return CannedResponse{401, R"({"error":"etcdserver: invalid auth token","code":16})"};
    }
    return CannedResponse{200, R"({"header":{"revision":"4"}})"};
  });
  auto o = options_for({&server});
  o.username = "tw";
  o.password = "s3cret-pw";
  EtcdCoordination etcd(o);
  ASSERT_TRUE(etcd.put("/tw/x", "1", 0).ok());
  EXPECT_EQ(logins.load(), 1);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].headers["authorization"], "tok-1");
  EXPECT_NE(reqs[0].body.find("s3cret-pw"), std::string::npos);  // only in the login itself
  EXPECT_EQ(reqs[1].body.find("s3cret-pw"), std::string::npos);
  // tok-1 expired: refused once, a new login, the call again with tok-2.
  ASSERT_TRUE(etcd.put("/tw/x", "2", 0).ok());
  EXPECT_EQ(logins.load(), 2);
  reqs = server.requests();
  ASSERT_EQ(reqs.size(), 5u);
  EXPECT_EQ(reqs[4].headers["authorization"], "tok-2");
}

TEST(EtcdAnswers, AFailedLoginNamesTheUserNeverThePassword) {
  TestHttpServer server([](const RecordedRequest&) {
    return CannedResponse{
        400, R"({"error":"etcdserver: authentication failed, invalid user ID or password"})"};
  });
  auto o = options_for({&server});
  o.username = "tw";
  o.password = "s3cret-pw";
  EtcdCoordination etcd(o);
  auto s = etcd.put("/tw/x", "1", 0);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("cannot log in to etcd as \"tw\""), std::string::npos)
      << s.error().message;
  EXPECT_EQ(s.error().message.find("s3cret-pw"), std::string::npos);
}

}  // namespace
}  // namespace tw::ha

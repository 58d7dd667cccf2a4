// The etcd gateway's request bodies (the rest runs against a real etcd in
// tests/integration/test_ha.py) and the client's behaviour with no reachable endpoint.
#include "ha/etcd.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/base64.h"

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

// Tests for influx/influxdb3_source.h: Influxdb3ClusterClient against an in-test HTTP server —
// the exact requests it sends, how it reads answers, and that the admin token never leaks.

#include "influx/influxdb3_source.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/core/test_support.h"
#include "tests/unit/influx/test_http_server.h"

namespace tw::influx {
namespace {

using tw::testing::CannedResponse;
using tw::testing::RecordedRequest;
using tw::testing::TempDir;
using tw::testing::TestHttpServer;
using tw::testing::ts;

const std::string kSecret = "apiv3_AdminTokenNeverToBeShown_0123456789";
const std::string kListTarget =
    "/api/v3/query_sql?db=_internal&q=SELECT%20%2A%20FROM%20system.tokens&format=json";
const std::string kRow7Target =
    "/api/v3/query_sql?db=_internal&q=SELECT%20%2A%20FROM%20system.tokens%20WHERE%20token_id%20%3D%"
    "207&format=json";

const char* kTable = R"([
  {"token_id":0,"name":"_admin","hash":"5c3b2e7f1","created_at":"2025-04-18T14:02:45.331","permissions":"*:*:*"},
  {"token_id":7,"name":"grafana read, eu","hash":"9f8e7d6c5","created_at":"2025-06-01T00:00:00","expiry":"2026-06-01T00:00:00","permissions":"db:metrics:read"}
])";
const char* kRow7 =
    R"([{"token_id":7,"name":"grafana read, eu","created_at":"2025-06-01T00:00:00","permissions":"db:metrics:read"}])";

class Influxdb3ClientTest : public ::testing::Test {
 protected:
  std::unique_ptr<Influxdb3ClusterClient> client(const TestHttpServer& server) {
    SourceConfig cfg;
    cfg.cluster = "core";
    cfg.type = SourceType::kInfluxdb3;
    cfg.url = server.base_url("");
    cfg.token_file = token_file_;
    cfg.timeout = std::chrono::seconds(10);
    auto url = parse_url(cfg.url);
    EXPECT_TRUE(url.ok());
    return std::make_unique<Influxdb3ClusterClient>(cfg, *url, "");
  }

  static void expect_clean(const Error& e, const std::vector<std::string>& has) {
    EXPECT_EQ(e.message.find("AdminTokenNeverToBeShown"), std::string::npos)
        << "leaked: " << e.message;
    EXPECT_EQ(e.message.find('\n'), std::string::npos) << e.message;
    for (const auto& s : has)
      EXPECT_NE(e.message.find(s), std::string::npos) << e.message << " lacks " << s;
  }

  TempDir dir_;
  std::string token_file_ = dir_.write("admin.token", kSecret + "\n");
  CallContext ctx_;
};

TEST_F(Influxdb3ClientTest, ListsTheTokenTableWithAnAdminBearerToken) {
  TestHttpServer server([](const RecordedRequest&) { return CannedResponse{200, kTable}; });
  auto c = client(server);
  auto list = c->list_tokens(ctx_);
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_EQ(list->tokens.size(), 2u);
  EXPECT_EQ(list->tokens[1].id, "7");
  EXPECT_EQ(list->tokens[1].description, "grafana read, eu");
  EXPECT_EQ(list->tokens[1].expires_at, ts("2026-06-01T00:00:00Z"));
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].target, kListTarget);
  EXPECT_EQ(reqs[0].headers["authorization"], "Bearer " + kSecret);
  EXPECT_EQ(reqs[0].headers["accept"], "application/json");
  EXPECT_TRUE(c->revoke_deletes());
}

TEST_F(Influxdb3ClientTest, AnUnchangedTableIsNotDecodedAgain) {
  TestHttpServer server([](const RecordedRequest&) { return CannedResponse{200, kTable}; });
  auto c = client(server);
  auto first = c->list_tokens(ctx_);
  ASSERT_TRUE(first.ok());
  CallContext again;
  again.known_digest = first->digest;
  auto second = c->list_tokens(again);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->unchanged);
}

TEST_F(Influxdb3ClientTest, AnUnreadableTableFailsTheListNamingTheRow) {
  TestHttpServer server([](const RecordedRequest&) {
    return CannedResponse{
        200, R"([{"token_id":0,"name":"_admin","permissions":"*:*:*"},{"token_id":"x"}])"};
  });
  auto list = client(server)->list_tokens(ctx_);
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().code, ErrorCode::kParse);
  expect_clean(list.error(), {"returned an unreadable token table", "row #1 column \"token_id\""});
}

TEST_F(Influxdb3ClientTest, StatusErrorsAreOneSentenceWithoutTheToken) {
  TestHttpServer server([](const RecordedRequest& r) {
    // A proxy that echoes the Authorization header, as careless ones do.
    return CannedResponse{401, R"({"error":"the request was not authenticated: )" +
                                   r.headers.at("authorization") + "\"}"};
  });
  auto list = client(server)->list_tokens(ctx_);
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().http_status, 401);
  expect_clean(list.error(), {"answered 401 Unauthorized", "not authenticated", "admin.token"});
}

TEST_F(Influxdb3ClientTest, A429WithRetryAfterCarriesTheWaitLikeTheRestSource) {
  TestHttpServer server([](const RecordedRequest&) {
    CannedResponse r;
    r.raw =
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Type: application/json\r\n"
        "Content-Length: 2\r\nConnection: close\r\n\r\n{}";
    return r;
  });
  auto list = client(server)->list_tokens(ctx_);
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().http_status, 429);
  EXPECT_EQ(list.error().retry_after, std::optional<Duration>(std::chrono::seconds(7)));
  expect_clean(list.error(), {"answered 429 Too Many Requests", "retry after 7s"});
}

TEST_F(Influxdb3ClientTest, GetTokenReadsOneRowWithAWhereClause) {
  TestHttpServer server([](const RecordedRequest& r) {
    if (r.target == kRow7Target) return CannedResponse{200, kRow7};
    return CannedResponse{200, "[]"};
  });
  auto c = client(server);
  auto got = c->get_token("7", ctx_);
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->description, "grafana read, eu");
  auto missing = c->get_token("8", ctx_);
  ASSERT_TRUE(missing.ok()) << missing.error().message;
  EXPECT_FALSE(missing->has_value()) << "no row: confirmed missing";
  EXPECT_EQ(server.requests().at(0).target, kRow7Target);
}

TEST_F(Influxdb3ClientTest, GetTokenRefusesAnswersAboutAnotherToken) {
  TestHttpServer server([](const RecordedRequest&) { return CannedResponse{200, kTable}; });
  auto got = client(server)->get_token("7", ctx_);
  ASSERT_FALSE(got.ok());
  expect_clean(got.error(), {"returned 2 rows, not the one token asked for"});
}

TEST_F(Influxdb3ClientTest, IdsThatAreNotDecimalNumbersNeverReachAQuery) {
  TestHttpServer server([](const RecordedRequest&) { return CannedResponse{200, "[]"}; });
  auto c = client(server);
  for (const char* bad : {"", "07", "7 OR 1=1", "-1", "abc", "123456789012345678901"}) {
    auto got = c->get_token(bad, ctx_);
    ASSERT_FALSE(got.ok()) << bad;
    EXPECT_EQ(got.error().code, ErrorCode::kInvalidArgument);
    auto del = c->revoke(bad, ctx_);
    ASSERT_FALSE(del.ok()) << bad;
    EXPECT_NE(del.error().message.find("refusing to delete"), std::string::npos)
        << del.error().message;
  }
  EXPECT_EQ(server.request_count(), 0u);
}

TEST_F(Influxdb3ClientTest, RevokeDeletesByTheNameReadFromTheTable) {
  TestHttpServer server([](const RecordedRequest& r) {
    if (r.method == "DELETE") return CannedResponse{200, ""};
    return CannedResponse{200, kRow7};
  });
  auto r = client(server)->revoke("7", ctx_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, RevokeOutcome::kRevoked);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].target, kRow7Target);
  EXPECT_EQ(reqs[1].method, "DELETE");
  EXPECT_EQ(reqs[1].target, "/api/v3/configure/token?token_name=grafana%20read%2C%20eu");
  EXPECT_EQ(reqs[1].headers["authorization"], "Bearer " + kSecret);
}

TEST_F(Influxdb3ClientTest, RevokeOfAMissingTokenSendsNoDelete) {
  TestHttpServer server([](const RecordedRequest&) { return CannedResponse{200, "[]"}; });
  auto r = client(server)->revoke("7", ctx_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, RevokeOutcome::kAlreadyGone);
  EXPECT_EQ(server.request_count(), 1u);
}

TEST_F(Influxdb3ClientTest, RevokeAnswers) {
  struct Case {
    int status;
    std::string body;
    bool ok;
    RevokeOutcome outcome;
    std::vector<std::string> says;
  };
  for (const Case& c : {
           Case{204, "", true, RevokeOutcome::kRevoked, {}},
           Case{404,
                "the requested resource was not found: grafana read, eu",
                true,
                RevokeOutcome::kAlreadyGone,
                {}},
           Case{405,
                "cannot delete operator token",
                false,
                {},
                {"answered 405", "cannot delete operator token", "exempt it"}},
           Case{500, "boom " + kSecret, false, {}, {"answered 500", "boom [redacted]"}},
       }) {
    TestHttpServer server([&](const RecordedRequest& r) {
      if (r.method == "DELETE") return CannedResponse{c.status, c.body, "text/plain"};
      return CannedResponse{200, kRow7};
    });
    auto r = client(server)->revoke("7", ctx_);
    ASSERT_EQ(r.ok(), c.ok) << c.status;
    if (c.ok) {
      EXPECT_EQ(*r, c.outcome) << c.status;
    } else {
      EXPECT_EQ(r.error().http_status, c.status);
      expect_clean(r.error(), c.says);
    }
  }
}

TEST_F(Influxdb3ClientTest, RestrictIsUnsupportedAndSendsNothing) {
  TestHttpServer server([](const RecordedRequest&) { return CannedResponse{200, "[]"}; });
  auto st = client(server)->restrict("7", {{"read", "metrics"}}, ctx_);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kUnsupported);
  expect_clean(st.error(), {"cannot restrict token \"7\" of cluster \"core\"", "only delete"});
  EXPECT_EQ(server.request_count(), 0u);
}

TEST(Influxdb3Targets, QueryAndDeleteTargetsArePercentEncoded) {
  EXPECT_EQ(influxdb3_query_target("SELECT * FROM system.tokens"), kListTarget);
  EXPECT_EQ(influxdb3_delete_target("a b&c=d/é"),
            "/api/v3/configure/token?token_name=a%20b%26c%3Dd%2F%C3%A9");
}

}  // namespace
}  // namespace tw::influx

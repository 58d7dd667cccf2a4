// Tests for influx/rest_source.h: RestClusterClient against an in-test HTTP server.

#include "influx/rest_source.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "influx/codec.h"
#include "tests/unit/core/test_support.h"
#include "tests/unit/influx/test_http_server.h"

namespace tw::influx {
namespace {

using tw::testing::PrintTo;

using tw::testing::CannedResponse;
using tw::testing::RecordedRequest;
using tw::testing::TempDir;
using tw::testing::TestHttpServer;

const std::string kSecret = "apiv1_MgmtTokenNeverToBeShown_0123456789";

const char* kList = R"([
  {"id":"55555555-5555-4555-8555-555555555555","description":"Limited Access Token",
   "permissions":[{"action":"read","resource":"DatabaseOne"},
                  {"action":"write","resource":"DatabaseTwo"}],
   "createdAt":"2023-12-21T17:32:28.000Z"},
  {"id":"66666666-6666-4666-8666-666666666666","description":"Full Access Token",
   "permissions":[{"action":"write","resource":"*"}],"createdAt":"2024-03-02T04:20:19.000Z",
   "revokedAt":"2024-04-01T00:00:00.000Z"}
])";

class RestClientTest : public ::testing::Test {
 protected:
  // A client of the given type against `server`, reading kSecret from a token file.
  std::unique_ptr<RestClusterClient> client(const TestHttpServer& server,
                                            SourceType type = SourceType::kClustered,
                                            Duration timeout = std::chrono::seconds(10)) {
    SourceConfig cfg;
    cfg.cluster = "test";
    cfg.type = type;
    cfg.url = server.base_url("/api/v0/");
    cfg.token_file = token_file_;
    cfg.timeout = timeout;
    cfg.account_id = "11111111-1111-4111-8111-111111111111";
    cfg.cluster_id = "33333333-3333-4333-8333-333333333333";
    auto url = parse_url(cfg.url);
    EXPECT_TRUE(url.ok());
    return std::make_unique<RestClusterClient>(cfg, *url, "");
  }

  void expect_clean_error(const Error& e, const std::vector<std::string>& has) {
    EXPECT_EQ(e.message.find(kSecret), std::string::npos)
        << "management token leaked: " << e.message;
    EXPECT_EQ(e.message.find('\n'), std::string::npos) << "not one line: " << e.message;
    for (const auto& s : has) {
      EXPECT_NE(e.message.find(s), std::string::npos)
          << "\"" << e.message << "\" lacks \"" << s << "\"";
    }
  }

  TempDir dir_;
  std::string token_file_ = dir_.write("mgmt.token", kSecret + "\n");
  CallContext ctx_;
};

TEST_F(RestClientTest, ListsTokensWithBearerAndAccept) {
  TestHttpServer server([](const RecordedRequest&) { return CannedResponse{200, kList}; });
  auto c = client(server);
  auto list = c->list_tokens(ctx_);
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_EQ(list->tokens.size(), 2u);
  EXPECT_EQ(list->tokens[0].id, "55555555-5555-4555-8555-555555555555");
  EXPECT_EQ(list->tokens[1].revoked_at, tw::testing::ts("2024-04-01T00:00:00Z"));
  EXPECT_FALSE(list->replaced_invalid_utf8);

  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].target, "/api/v0/tokens");
  EXPECT_EQ(reqs[0].headers["authorization"], "Bearer " + kSecret);
  EXPECT_EQ(reqs[0].headers["accept"], "application/json");
  EXPECT_EQ(reqs[0].headers["host"], "127.0.0.1:" + std::to_string(server.port()));
}

TEST_F(RestClientTest, Ipv6LiteralHostSendsABracketedHostHeader) {
  std::unique_ptr<TestHttpServer> server;
  try {
    server = std::make_unique<TestHttpServer>(
        [](const RecordedRequest&) {
          return CannedResponse{200, "[]"};
        },
        true);
  } catch (const std::exception& e) {
    GTEST_SKIP() << "no IPv6 loopback: " << e.what();
  }
  auto c = client(*server);
  auto list = c->list_tokens(ctx_);
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_EQ(server->request_count(), 1u);
  // RFC 7230 §5.4 / RFC 3986 §3.2.2: an IPv6 literal in Host is enclosed in brackets.
  EXPECT_EQ(server->requests()[0].headers["host"], "[::1]:" + std::to_string(server->port()));
  EXPECT_EQ(c->describe(), "http://[::1]:" + std::to_string(server->port()) + "/api/v0/tokens");
}

TEST_F(RestClientTest, DedicatedPath) {
  TestHttpServer server([](const RecordedRequest&) { return CannedResponse{200, "[]"}; });
  auto c = client(server, SourceType::kDedicated);
  auto list = c->list_tokens(ctx_);
  ASSERT_TRUE(list.ok()) << list.error().message;
  EXPECT_TRUE(list->tokens.empty());
  ASSERT_EQ(server.request_count(), 1u);
  EXPECT_EQ(server.requests()[0].target,
            "/api/v0/accounts/11111111-1111-4111-8111-111111111111/clusters/"
            "33333333-3333-4333-8333-333333333333/tokens");
  EXPECT_NE(c->describe().find("/accounts/11111111-1111-4111-8111-111111111111/clusters/"),
            std::string::npos);
}

TEST_F(RestClientTest, RereadsTheTokenFileBeforeEachCall) {
  TestHttpServer server([](const RecordedRequest&) { return CannedResponse{200, "[]"}; });
  auto c = client(server);
  ASSERT_TRUE(c->list_tokens(ctx_).ok());
  dir_.write("mgmt.token", "rotated-token\n");
  ASSERT_TRUE(c->list_tokens(ctx_).ok());
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].headers["authorization"], "Bearer " + kSecret);
  EXPECT_EQ(reqs[1].headers["authorization"], "Bearer rotated-token");
}

TEST_F(RestClientTest, MissingTokenFileFailsWithoutARequest) {
  TestHttpServer server([](const RecordedRequest&) { return CannedResponse{200, "[]"}; });
  auto c = client(server);
  std::filesystem::remove(token_file_);
  auto list = c->list_tokens(ctx_);
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().code, ErrorCode::kIo);
  EXPECT_NE(list.error().message.find(token_file_), std::string::npos);
  EXPECT_EQ(server.request_count(), 0u);
}

struct StatusCase {
  std::string name;
  int status;
  std::string body;
  std::vector<std::string> message_has;
};

class RestListErrors : public RestClientTest, public ::testing::WithParamInterface<StatusCase> {};

TEST_P(RestListErrors, OneSentenceWithStatusAndNeverTheToken) {
  const auto& p = GetParam();
  TestHttpServer server([&](const RecordedRequest&) { return CannedResponse{p.status, p.body}; });
  auto c = client(server);
  auto list = c->list_tokens(ctx_);
  ASSERT_FALSE(list.ok()) << p.name;
  EXPECT_EQ(list.error().code, ErrorCode::kHttpStatus);
  EXPECT_EQ(list.error().http_status, p.status);
  auto has = p.message_has;
  has.push_back(std::to_string(p.status));
  has.push_back("/api/v0/tokens");
  expect_clean_error(list.error(), has);
}

INSTANTIATE_TEST_SUITE_P(
    Table, RestListErrors,
    ::testing::Values(
        StatusCase{
            "401", 401, R"({"code":401,"message":"unauthorized"})", {"unauthorized", "mgmt.token"}},
        StatusCase{
            "401 echoing the token",
            401,
            R"({"code":401,"message":"token apiv1_MgmtTokenNeverToBeShown_0123456789 is invalid"})",
            {"[redacted]"}},
        StatusCase{
            "403", 403, R"({"code":403,"message":"forbidden"})", {"forbidden", "permission"}},
        StatusCase{"404: a Clustered release without the REST token API",
                   404,
                   R"({"code":404,"message":"not found"})",
                   {"not found", "Clustered 20250508-1719206 or later", "type = \"influxctl\""}},
        StatusCase{"500",
                   500,
                   R"({"code":500,"message":"internal server error"})",
                   {"internal server error"}},
        StatusCase{"502 html body", 502, "<html><body>Bad Gateway\n</body></html>", {}},
        StatusCase{"500 multi-line message", 500, R"({"code":500,"message":"line1\nline2"})", {}},
        StatusCase{"204 on a list", 204, "", {}}),
    tw::testing::CaseName());

TEST_F(RestClientTest, UnreadableListIsAParseError) {
  TestHttpServer server([](const RecordedRequest&) {
    return CannedResponse{200, R"([{"id":"a"},{"description":"no id"}])"};
  });
  auto c = client(server);
  auto list = c->list_tokens(ctx_);
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().code, ErrorCode::kParse);
  expect_clean_error(list.error(), {"token #1"});
}

TEST_F(RestClientTest, InvalidUtf8IsFlagged) {
  TestHttpServer server([](const RecordedRequest&) {
    return CannedResponse{200, "[{\"id\":\"a\",\"description\":\"x\xFF\"}]"};
  });
  auto list = client(server)->list_tokens(ctx_);
  ASSERT_TRUE(list.ok()) << list.error().message;
  EXPECT_TRUE(list->replaced_invalid_utf8);
}

TEST_F(RestClientTest, DeadlineWhenTheServerNeverAnswers) {
  TestHttpServer server([](const RecordedRequest&) {
    CannedResponse r;
    r.hang = true;
    return r;
  });
  auto c = client(server, SourceType::kClustered, std::chrono::milliseconds(300));
  auto start = std::chrono::steady_clock::now();
  auto list = c->list_tokens(ctx_);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().code, ErrorCode::kTimeout);
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  expect_clean_error(list.error(), {"300ms"});
}

TEST_F(RestClientTest, CancelledCallReturnsEarly) {
  TestHttpServer server([](const RecordedRequest&) {
    CannedResponse r;
    r.hang = true;
    return r;
  });
  auto c = client(server, SourceType::kClustered, std::chrono::seconds(20));
  std::atomic<bool> cancel{true};
  CallContext ctx;
  ctx.cancel = &cancel;
  auto start = std::chrono::steady_clock::now();
  auto list = c->list_tokens(ctx);
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().code, ErrorCode::kCancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(RestClientTest, ConnectionRefused) {
  int port = 0;
  {
    TestHttpServer server([](const RecordedRequest&) { return CannedResponse{}; });
    port = server.port();
  }  // closed: nothing listens there any more
  SourceConfig cfg;
  cfg.url = "http://127.0.0.1:" + std::to_string(port) + "/api/v0";
  cfg.token_file = token_file_;
  cfg.timeout = std::chrono::seconds(5);
  RestClusterClient c(cfg, *parse_url(cfg.url), "");
  auto list = c.list_tokens(ctx_);
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().code, ErrorCode::kNetwork);
  expect_clean_error(list.error(), {"127.0.0.1"});
}

// --- revoke -----------------------------------------------------------------------------------

TEST_F(RestClientTest, Revoke204IsRevoked) {
  TestHttpServer server([](const RecordedRequest&) { return CannedResponse{204, ""}; });
  auto r = client(server)->revoke("55555555-5555-4555-8555-555555555555", ctx_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, RevokeOutcome::kRevoked);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "DELETE");
  EXPECT_EQ(reqs[0].target, "/api/v0/tokens/55555555-5555-4555-8555-555555555555");
  EXPECT_EQ(reqs[0].headers["authorization"], "Bearer " + kSecret);
}

TEST_F(RestClientTest, Revoke404IsAlreadyGone) {
  TestHttpServer server([](const RecordedRequest&) {
    return CannedResponse{404, R"({"code":404,"message":"not found"})"};
  });
  auto r = client(server)->revoke("55555555-5555-4555-8555-555555555555", ctx_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, RevokeOutcome::kAlreadyGone);
}

TEST_F(RestClientTest, RevokeErrors) {
  for (int status : {400, 401, 403, 409, 500}) {
    TestHttpServer server([&](const RecordedRequest&) {
      return CannedResponse{status, R"({"code":)" + std::to_string(status) + R"(,"message":"no"})"};
    });
    auto r = client(server, SourceType::kDedicated)->revoke("abc-123", ctx_);
    ASSERT_FALSE(r.ok()) << status;
    EXPECT_EQ(r.error().code, ErrorCode::kHttpStatus);
    EXPECT_EQ(r.error().http_status, status);
    expect_clean_error(r.error(), {std::to_string(status), "DELETE", "/tokens/abc-123"});
  }
}

class UnsafeIds : public RestClientTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(UnsafeIds, RefusedWithoutAnyRequest) {
  TestHttpServer server([](const RecordedRequest&) { return CannedResponse{204, ""}; });
  auto c = client(server);
  auto r = c->revoke(GetParam(), ctx_);
  ASSERT_FALSE(r.ok()) << "revoked \"" << GetParam() << "\"";
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  auto s = c->restrict(GetParam(), {{"read", "db"}}, ctx_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(server.request_count(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Table, UnsafeIds,
                         ::testing::Values("a/b", "../tokens", "/", ".", "..", "", "a b", "a%2Fb",
                                           "a?x=1", "a#b", "a\nb", "a\\b", std::string(129, 'a'),
                                           "caf\xC3\xA9"));

// --- restrict (PATCH) -------------------------------------------------------------------------

std::string token_json(const std::string& perms) {
  return R"({"id":"tok-1","description":"d","permissions":)" + perms +
         R"(,"createdAt":"2025-01-01T00:00:00Z"})";
}

TEST_F(RestClientTest, RestrictSendsPermissionsAndChecksTheAnswer) {
  TestHttpServer server([](const RecordedRequest&) {
    // Same set, another order: still what was asked for.
    return CannedResponse{
        200, token_json(R"([{"action":"write","resource":"b"},{"action":"read","resource":"a"}])")};
  });
  auto s = client(server)->restrict("tok-1", {{"write", "b"}, {"read", "a"}}, ctx_);
  ASSERT_TRUE(s.ok()) << s.error().message;
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "PATCH");
  EXPECT_EQ(reqs[0].target, "/api/v0/tokens/tok-1");
  EXPECT_EQ(reqs[0].headers["content-type"], "application/json");
  EXPECT_EQ(reqs[0].headers["authorization"], "Bearer " + kSecret);
  EXPECT_EQ(reqs[0].body, encode_permissions_update({{"write", "b"}, {"read", "a"}}));
}

TEST_F(RestClientTest, RestrictToNothing) {
  TestHttpServer server([](const RecordedRequest&) {
    return CannedResponse{200, token_json("[]")};
  });
  auto s = client(server)->restrict("tok-1", {}, ctx_);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(server.requests()[0].body, R"({"permissions":[]})");
}

TEST_F(RestClientTest, RestrictAnsweredWithOtherPermissionsIsAnError) {
  TestHttpServer server([](const RecordedRequest&) {
    return CannedResponse{200, token_json(R"([{"action":"write","resource":"*"}])")};
  });
  auto s = client(server)->restrict("tok-1", {{"read", "a"}}, ctx_);
  ASSERT_FALSE(s.ok()) << "a PATCH that did not take effect was accepted";
  expect_clean_error(s.error(), {"PATCH", "tok-1"});
}

TEST_F(RestClientTest, RestrictErrors) {
  {
    TestHttpServer server([](const RecordedRequest&) {
      return CannedResponse{409, R"({"code":409,"message":"conflict"})"};
    });
    auto s = client(server)->restrict("tok-1", {{"read", "a"}}, ctx_);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, ErrorCode::kHttpStatus);
    EXPECT_EQ(s.error().http_status, 409);
    expect_clean_error(s.error(), {"409", "conflict"});
  }
  {
    TestHttpServer server([](const RecordedRequest&) { return CannedResponse{200, "not json"}; });
    auto s = client(server)->restrict("tok-1", {{"read", "a"}}, ctx_);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, ErrorCode::kParse);
    expect_clean_error(s.error(), {"PATCH"});
  }
  {
    TestHttpServer server([](const RecordedRequest&) {
      return CannedResponse{404, R"({"code":404,"message":"not found"})"};
    });
    auto s = client(server)->restrict("tok-1", {{"read", "a"}}, ctx_);
    ASSERT_FALSE(s.ok()) << "restricting a token that does not exist cannot succeed";
    EXPECT_EQ(s.error().http_status, 404);
  }
}

TEST(MakeClusterClient, BuildsTheRightClient) {
  SourceConfig rest;
  rest.cluster = "c";
  rest.url = "https://influxdb.example.com/api/v0/";
  auto r = make_cluster_client(rest, "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)->describe(), "https://influxdb.example.com/api/v0/tokens");

  SourceConfig bad = rest;
  bad.url = "ftp://x";
  auto b = make_cluster_client(bad, "");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code, ErrorCode::kInvalidArgument);

  SourceConfig ctl;
  ctl.type = SourceType::kInfluxctl;
  ctl.influxctl_path = "/usr/local/bin/influxctl";
  ctl.influxctl_config = "/etc/influxctl.toml";
  ctl.profile = "prod";
  auto i = make_cluster_client(ctl, "");
  ASSERT_TRUE(i.ok());
  EXPECT_EQ((*i)->describe(),
            "/usr/local/bin/influxctl --config /etc/influxctl.toml --profile prod");
}

}  // namespace
}  // namespace tw::influx

namespace tw::influx {
namespace {

TEST_F(RestClientTest, IdenticalListIsReportedUnchangedWithoutDecoding) {
  std::string body = kList;
  TestHttpServer server([&](const RecordedRequest&) { return CannedResponse{200, body}; });
  auto c = client(server);
  auto first = c->list_tokens(ctx_);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_FALSE(first->unchanged);
  EXPECT_EQ(first->digest, list_digest(kList));
  ASSERT_EQ(first->digest.size(), 64u);

  CallContext known;
  known.known_digest = first->digest;
  auto again = c->list_tokens(known);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(again->unchanged);
  EXPECT_TRUE(again->tokens.empty());
  EXPECT_EQ(again->digest, first->digest);

  // One byte more and the list is decoded again.
  body += " ";
  auto changed = c->list_tokens(known);
  ASSERT_TRUE(changed.ok()) << changed.error().message;
  EXPECT_FALSE(changed->unchanged);
  EXPECT_EQ(changed->tokens.size(), 2u);
  EXPECT_NE(changed->digest, first->digest);
}

}  // namespace
}  // namespace tw::influx

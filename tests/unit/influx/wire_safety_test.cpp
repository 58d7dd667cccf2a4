// Tests for what a server or influxctl says on the way into tokenwarden (issue 9): secrets are
// redacted before they can reach an error message or a stored description, the body limit
// stops the read, interim 1xx responses are skipped, repeated JSON keys are refused.

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <string>
#include <vector>

#include "core/strings.h"
#include "influx/codec.h"
#include "influx/http_client.h"
#include "influx/influxctl_source.h"
#include "influx/json_reader.h"
#include "influx/rest_source.h"
#include "tests/unit/core/test_support.h"
#include "tests/unit/influx/test_http_server.h"

namespace tw::influx {
namespace {

using tw::testing::CannedResponse;
using tw::testing::RecordedRequest;
using tw::testing::TempDir;
using tw::testing::TestHttpServer;

const std::string kSecret = "mgmt-SECRET-d445d3254efe33c9ccea6619";

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// No form of the secret, nor its first half (what a cut could leave), is in text.
void expect_no_secret(const std::string& text, const std::string& secret = kSecret) {
  const std::string lowered = to_lower(text);
  EXPECT_EQ(lowered.find(to_lower(secret)), std::string::npos) << "secret leaked: " << text;
  EXPECT_EQ(lowered.find(to_lower(secret.substr(0, secret.size() / 2))), std::string::npos)
      << "part of the secret leaked: " << text;
}

// --- REST --------------------------------------------------------------------------------------

class RestRedaction : public ::testing::Test {
 protected:
  std::unique_ptr<RestClusterClient> client(const TestHttpServer& server,
                                            std::size_t max_response = std::size_t{512} << 20) {
    SourceConfig cfg;
    cfg.cluster = "test";
    cfg.url = server.base_url("/api/v0");
    cfg.token_file = token_file_;
    cfg.timeout = std::chrono::seconds(10);
    cfg.max_response_bytes = max_response;
    auto url = parse_url(cfg.url);
    EXPECT_TRUE(url.ok());
    return std::make_unique<RestClusterClient>(cfg, *url, "");
  }
  TempDir dir_;
  std::string token_file_ = dir_.write("mgmt.token", kSecret + "\n");
  CallContext ctx_;
};

TEST_F(RestRedaction, ErrorBodyEchoingTheTokenInAnyCaseIsRedacted) {
  for (const std::string& echo :
       std::vector<std::string>{kSecret, upper(kSecret), to_lower(kSecret)}) {
    TestHttpServer server([&](const RecordedRequest&) {
      return CannedResponse{400,
                            R"({"code":400,"message":"header was BEARER )" + echo + R"( ..."})"};
    });
    auto list = client(server)->list_tokens(ctx_);
    ASSERT_FALSE(list.ok());
    expect_no_secret(list.error().message);
    EXPECT_NE(
        list.error().message.find("answered 400 Bad Request (header was BEARER [redacted] ...)"),
        std::string::npos)
        << list.error().message;
  }
}

TEST_F(RestRedaction, TokenAtTheCutOfALongMessageLeavesNoPart) {
  // The message is cut at 200 bytes; the token straddles the cut.
  const std::string message = std::string(180, 'x') + " " + upper(kSecret) + " tail";
  TestHttpServer server([&](const RecordedRequest&) {
    return CannedResponse{500, R"({"code":500,"message":")" + message + R"("})"};
  });
  auto list = client(server)->list_tokens(ctx_);
  ASSERT_FALSE(list.ok());
  expect_no_secret(list.error().message);
  EXPECT_NE(list.error().message.find(std::string(180, 'x') + " [redacted]"), std::string::npos)
      << list.error().message;
}

TEST_F(RestRedaction, RevokeAndRestrictErrorsAreRedactedToo) {
  TestHttpServer server([&](const RecordedRequest&) {
    return CannedResponse{409, R"({"code":409,"message":"token )" + to_lower(kSecret) + R"("})"};
  });
  auto c = client(server);
  auto revoked = c->revoke("55555555-5555-4555-8555-555555555555", ctx_);
  ASSERT_FALSE(revoked.ok());
  expect_no_secret(revoked.error().message);
  auto restricted = c->restrict("55555555-5555-4555-8555-555555555555", {{"read", "db"}}, ctx_);
  ASSERT_FALSE(restricted.ok());
  expect_no_secret(restricted.error().message);
}

TEST_F(RestRedaction, UnreadableListQuotingTheTokenIsRedacted) {
  // A bad timestamp is quoted, cut to 64 bytes, in the parse error; the token straddles the cut.
  TestHttpServer server([&](const RecordedRequest&) {
    return CannedResponse{
        200, R"([{"id":"a","createdAt":")" + std::string(40, 'x') + upper(kSecret) + R"("}])"};
  });
  auto list = client(server)->list_tokens(ctx_);
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().code, ErrorCode::kParse);
  expect_no_secret(list.error().message);
  EXPECT_NE(list.error().message.find("token #0 field \"createdAt\""), std::string::npos)
      << list.error().message;
}

TEST_F(RestRedaction, DescriptionQuotingTheTokenIsStoredWithoutIt) {
  TestHttpServer server([&](const RecordedRequest&) {
    return CannedResponse{200, R"([{"id":"a","description":"curl -H 'Authorization: Bearer )" +
                                   kSecret +
                                   R"('"},{"id":"b","description":"Bearer token for grafana"}])"};
  });
  auto list = client(server)->list_tokens(ctx_);
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_EQ(list->tokens.size(), 2u);
  EXPECT_EQ(list->tokens[0].description, "curl -H 'Authorization: Bearer [redacted]'");
  // Data is not rewritten by the "Bearer …" rule for messages: only known secrets go.
  EXPECT_EQ(list->tokens[1].description, "Bearer token for grafana");
}

TEST_F(RestRedaction, APermissionNamingTheTokenIsReadBackWithoutIt) {
  TestHttpServer server([&](const RecordedRequest&) {
    return CannedResponse{
        200, R"({"id":"a","description":"","permissions":[{"action":"read","resource":")" +
                 kSecret + R"("}]})"};
  });
  auto t = client(server)->get_token("a", ctx_);
  ASSERT_TRUE(t.ok()) << t.error().message;
  ASSERT_TRUE(t->has_value());
  ASSERT_EQ((*t)->permissions.size(), 1u);
  EXPECT_EQ((*t)->permissions[0].resource, "[redacted]");
}

// --- HTTP client: body limit, interim responses --------------------------------------------------

std::string chunked(const std::string& body, std::size_t chunk) {
  std::string out;
  for (std::size_t i = 0; i < body.size(); i += chunk) {
    std::size_t n = std::min(chunk, body.size() - i);
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", n);
    out += size;
    out.append(body, i, n);
    out += "\r\n";
  }
  return out + "0\r\n\r\n";
}

Result<HttpResponse> get(const TestHttpServer& server, std::size_t max_body) {
  auto url = parse_url(server.base_url("/api/v0"));
  EXPECT_TRUE(url.ok());
  HttpRequest req;
  req.target = "/tokens";
  HttpOptions opts;
  opts.timeout = std::chrono::seconds(10);
  opts.max_body_bytes = max_body;
  return http_request(*url, req, opts);
}

TEST(HttpBodyLimit, ChunkedBodyOverTheLimitFailsAtTheLimit) {
  const std::string body(3 << 20, 'a');
  TestHttpServer server([&](const RecordedRequest&) {
    CannedResponse r;
    r.raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body, 100000);
    return r;
  });
  auto resp = get(server, std::size_t{1} << 20);
  ASSERT_FALSE(resp.ok());
  EXPECT_NE(resp.error().message.find("the response body is larger than the limit of 1 MiB"),
            std::string::npos)
      << resp.error().message;
}

TEST(HttpBodyLimit, OneChunkAnnouncedBeyondTheLimitFailsBeforeItsData) {
  TestHttpServer server([&](const RecordedRequest&) {
    CannedResponse r;
    r.raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40000000\r\nabc";  // 1 GiB chunk
    return r;
  });
  auto resp = get(server, std::size_t{1} << 20);
  ASSERT_FALSE(resp.ok());
  EXPECT_NE(resp.error().message.find("larger than the limit"), std::string::npos)
      << resp.error().message;
}

TEST(HttpBodyLimit, CloseDelimitedBodyOverTheLimitFails) {
  const std::string body(3 << 20, 'a');
  TestHttpServer server([&](const RecordedRequest&) {
    CannedResponse r;
    r.raw = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body;
    return r;
  });
  auto resp = get(server, std::size_t{1} << 20);
  ASSERT_FALSE(resp.ok());
  EXPECT_NE(resp.error().message.find("the response body is larger than the limit of 1 MiB"),
            std::string::npos)
      << resp.error().message;
}

TEST(HttpBodyLimit, ContentLengthOverTheLimitFailsBeforeReading) {
  TestHttpServer server([&](const RecordedRequest&) {
    CannedResponse r;
    r.raw = "HTTP/1.1 200 OK\r\nContent-Length: 2097152\r\n\r\nabc";
    return r;
  });
  auto resp = get(server, std::size_t{1} << 20);
  ASSERT_FALSE(resp.ok());
  EXPECT_NE(resp.error().message.find("the response body is larger than the limit of 1 MiB"),
            std::string::npos)
      << resp.error().message;
}

TEST(HttpBodyLimit, BodiesUpToTheLimitAreReadWhole) {
  const std::string body(std::size_t{1} << 20, 'b');
  for (bool use_chunks : {true, false}) {
    TestHttpServer server([&](const RecordedRequest&) {
      CannedResponse r;
      r.raw = use_chunks
                  ? "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body, 70000)
                  : "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body;
      return r;
    });
    auto resp = get(server, body.size());
    ASSERT_TRUE(resp.ok()) << (use_chunks ? "chunked: " : "close-delimited: ")
                           << resp.error().message;
    EXPECT_EQ(resp->status, 200);
    EXPECT_EQ(resp->body, body);
  }
}

TEST(HttpInterim, ContinueBeforeTheRealResponseIsSkipped) {
  TestHttpServer server([&](const RecordedRequest&) {
    CannedResponse r;
    r.raw =
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]";
    return r;
  });
  auto resp = get(server, 1 << 20);
  ASSERT_TRUE(resp.ok()) << resp.error().message;
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "[]");
  EXPECT_EQ(resp->content_type, "application/json");
}

TEST(HttpInterim, EndlessInterimResponsesFail) {
  TestHttpServer server([&](const RecordedRequest&) {
    CannedResponse r;
    for (int i = 0; i < 50; ++i) r.raw += "HTTP/1.1 100 Continue\r\n\r\n";
    return r;
  });
  auto resp = get(server, 1 << 20);
  ASSERT_FALSE(resp.ok());
  EXPECT_NE(resp.error().message.find("interim (1xx) responses and no final one"),
            std::string::npos)
      << resp.error().message;
}

// --- repeated JSON keys ------------------------------------------------------------------------

TEST(RepeatedKeys, TheReaderRefusesARepeatedKeyInOneObject) {
  JsonReader r(R"({"id":"k1","d":{"id":"inner"},"id":"k2"})");
  ASSERT_TRUE(r.enter_object());
  std::string key, value;
  ASSERT_TRUE(r.next_member(key));
  ASSERT_TRUE(r.read_string(value));
  ASSERT_TRUE(r.next_member(key));
  ASSERT_TRUE(r.enter_object());  // the same key one level down is another object's
  ASSERT_TRUE(r.next_member(key));
  ASSERT_TRUE(r.read_string(value));
  ASSERT_FALSE(r.next_member(key));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_FALSE(r.next_member(key));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "the key \"id\" appears twice in one object at byte 30");
}

TEST(RepeatedKeys, EscapedSpellingsAreTheSameKey) {
  JsonReader r(R"({"id":"k1","i\u0064":"k2"})");
  ASSERT_TRUE(r.enter_object());
  std::string key, value;
  ASSERT_TRUE(r.next_member(key));
  ASSERT_TRUE(r.read_string(value));
  EXPECT_FALSE(r.next_member(key));
  EXPECT_NE(r.error().find("appears twice"), std::string::npos) << r.error();
}

TEST(RepeatedKeys, SiblingObjectsMayUseTheSameKeys) {
  auto list = decode_token_list(R"([{"id":"a","description":"x"},{"id":"b","description":"y"}])");
  ASSERT_TRUE(list.ok()) << list.error().message;
  EXPECT_EQ(list->tokens.size(), 2u);
}

struct RepeatCase {
  const char* name;
  const char* body;
  const char* says;
};

class RepeatedKeysInTokens : public ::testing::TestWithParam<RepeatCase> {};

TEST_P(RepeatedKeysInTokens, FailTheWholeList) {
  auto list = decode_token_list(GetParam().body);
  ASSERT_FALSE(list.ok()) << GetParam().name;
  EXPECT_EQ(list.error().code, ErrorCode::kParse);
  EXPECT_NE(list.error().message.find(GetParam().says), std::string::npos) << list.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Table, RepeatedKeysInTokens,
    ::testing::Values(
        RepeatCase{"id", R"([{"id":"k1","id":"k2","description":"a","description":"b"}])",
                   "the key \"id\" appears twice"},
        RepeatCase{"description", R"([{"id":"k1","description":"a","description":"b"}])",
                   "the key \"description\" appears twice"},
        RepeatCase{
            "permission",
            R"([{"id":"k1","permissions":[{"action":"read","action":"write","resource":"db"}]}])",
            "the key \"action\" appears twice"},
        RepeatCase{"timestamp", R"([{"id":"k1","created_at":{"seconds":1,"seconds":2}}])",
                   "the key \"seconds\" appears twice"},
        RepeatCase{"unknown field", R"([{"id":"k1","accountId":"x","accountId":"y"}])",
                   "the key \"accountId\" appears twice"},
        RepeatCase{
            "two spellings",
            R"([{"id":"k1","createdAt":"2024-01-01T00:00:00Z","created_at":{"seconds":1}}])",
            "token #0 field \"created_at\" repeats a timestamp already given under another name"}),
    [](const ::testing::TestParamInfo<RepeatCase>& p) {
      std::string n = p.param.name;
      for (char& c : n) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return n;
    });

// --- influxctl ---------------------------------------------------------------------------------

// Prints "<dir>/out" on stdout and "<dir>/err" on stderr, exits with "<dir>/code".
const char* kScript = R"SH(#!/bin/sh
dir=$(dirname "$0")
[ -f "$dir/out" ] && cat "$dir/out"
[ -f "$dir/err" ] && cat "$dir/err" >&2
exit "$(cat "$dir/code" 2>/dev/null || echo 0)"
)SH";

class InfluxctlRedaction : public ::testing::Test {
 protected:
  void SetUp() override {
    script_ = dir_.write("influxctl", kScript, 0700);
    dir_.write("config.toml", R"([[profile]]
name = "default"
host = "127.0.0.1"
mgmt_token = ")" + kSecret + R"("

[[profile]]
name = "other"
host = "127.0.0.1"
mgmt_token = "second-profile-token-0123456789"
token = "database-token-abcdef0123456789"
)");
  }
  InfluxctlClusterClient client() {
    SourceConfig cfg;
    cfg.cluster = "ctl";
    cfg.type = SourceType::kInfluxctl;
    cfg.influxctl_path = script_;
    cfg.influxctl_config = dir_.file("config.toml");
    cfg.profile = "default";
    return InfluxctlClusterClient(cfg);
  }
  void answer(const std::string& out, int code, const std::string& err) {
    dir_.write("out", out);
    dir_.write("err", err);
    dir_.write("code", std::to_string(code));
  }
  TempDir dir_;
  std::string script_;
  CallContext ctx_;
};

TEST_F(InfluxctlRedaction, StderrQuotingTheProfileTokenIsRedacted) {
  // The adversarial reproduction: influxctl prints its mgmt_token (no "Bearer" before it).
  answer("", 1, "error\tthe management token " + upper(kSecret) + " was rejected\n");
  auto list = client().list_tokens(ctx_);
  ASSERT_FALSE(list.ok());
  expect_no_secret(list.error().message);
  EXPECT_NE(list.error().message.find(
                "exited with status 1: error\\tthe management token [redacted] was rejected"),
            std::string::npos)
      << list.error().message;
}

TEST_F(InfluxctlRedaction, EveryProfilesCredentialsAndBearerTokensGo) {
  answer("", 1,
         "second-profile-token-0123456789 database-token-abcdef0123456789 "
         "Authorization: Bearer oauth-token-from-a-cache.xyz\n");
  auto list = client().list_tokens(ctx_);
  ASSERT_FALSE(list.ok());
  expect_no_secret(list.error().message, "second-profile-token-0123456789");
  expect_no_secret(list.error().message, "database-token-abcdef0123456789");
  expect_no_secret(list.error().message, "oauth-token-from-a-cache.xyz");
  EXPECT_NE(list.error().message.find("[redacted] [redacted] Authorization: Bearer [redacted]"),
            std::string::npos)
      << list.error().message;
}

TEST_F(InfluxctlRedaction, TokenAtTheCutOfStderrLeavesNoPart) {
  // stderr is cut to 300 bytes for the message; the token straddles that cut.
  answer("", 1, std::string(280, 'x') + " " + kSecret + " tail\n");
  auto list = client().list_tokens(ctx_);
  ASSERT_FALSE(list.ok());
  expect_no_secret(list.error().message);
}

TEST_F(InfluxctlRedaction, RevokeAndRestrictFailuresAreRedacted) {
  answer("", 1, "error\trejected " + kSecret + "\n");
  auto revoked = client().revoke("tok-1", ctx_);
  ASSERT_FALSE(revoked.ok());
  expect_no_secret(revoked.error().message);
  auto restricted = client().restrict("tok-1", {{"read", "db"}}, ctx_);
  ASSERT_FALSE(restricted.ok());
  expect_no_secret(restricted.error().message);
}

TEST_F(InfluxctlRedaction, StdoutQuotingTheTokenIsRedacted) {
  answer(R"([{"id":"a","description":"uses )" + kSecret + R"("}])", 0, "");
  auto list = client().list_tokens(ctx_);
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_EQ(list->tokens.size(), 1u);
  EXPECT_EQ(list->tokens[0].description, "uses [redacted]");

  answer(R"([{"id":"a","created_at":")" + std::string(40, 'x') + kSecret + R"("}])", 0, "");
  auto bad = client().list_tokens(ctx_);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kParse);
  expect_no_secret(bad.error().message);
}

TEST_F(InfluxctlRedaction, AnUnreadableConfigStillRemovesBearerCredentials) {
  dir_.write("config.toml", "this is [not toml");
  answer("", 1, "Authorization: Bearer " + kSecret + "\n");
  auto list = client().list_tokens(ctx_);
  ASSERT_FALSE(list.ok());
  expect_no_secret(list.error().message);
}

}  // namespace
}  // namespace tw::influx

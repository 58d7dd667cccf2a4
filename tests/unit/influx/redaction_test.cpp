// Tests of influx/redaction.cpp through both sources (issue 9): a management token a server or
// influxctl quotes — in an error body, a description, a permission, stderr or stdout — is
// redacted before it can reach an error message or a stored value.

#include "influx/redaction.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "core/strings.h"
#include "influx/http_client.h"
#include "influx/influxctl_source.h"
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

// --- the functions themselves ------------------------------------------------------------------

TEST(Redacted, AnErrorKeepsItsCodeAndLosesEverySecretAndBearerCredential) {
  Error e = make_error(ErrorCode::kHttpStatus,
                       "rejected " + upper(kSecret) + " (sent as Bearer abc.def.ghi)");
  Error r = redacted(e, {kSecret});
  EXPECT_EQ(r.code, ErrorCode::kHttpStatus);
  expect_no_secret(r.message);
  EXPECT_EQ(r.message.find("abc.def.ghi"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("rejected"), std::string::npos) << r.message;
}

TEST(Redacted, DecodedDescriptionsLoseTheSecretButKeepTheirText) {
  auto list = decode_token_list_redacted(
      R"([{"id":"k1","description":"copy of )" + kSecret + R"( for ci","permissions":[]}])",
      {kSecret});
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_EQ(list->tokens.size(), 1u);
  expect_no_secret(list->tokens[0].description);
  EXPECT_NE(list->tokens[0].description.find("for ci"), std::string::npos);
}

TEST(Redacted, ABodyThatDoesNotDecodeIsDescribedWithoutTheSecret) {
  auto list = decode_token_list_redacted(R"([{"id":")" + kSecret + R"(", )", {kSecret});
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().code, ErrorCode::kParse);
  expect_no_secret(list.error().message);
}

TEST(InfluxctlConfigSecrets, EveryProfilesTokensAndNoneForAnUnreadableFile) {
  TempDir dir;
  std::string config = dir.write("config.toml", R"([[profile]]
name = "default"
mgmt_token = "first-mgmt-token-0123456789"

[[profile]]
name = "other"
mgmt_token = "second-mgmt-token-0123456789"
token = "database-token-0123456789"
)");
  auto secrets = influxctl_config_secrets(config);
  std::sort(secrets.begin(), secrets.end());
  EXPECT_EQ(secrets,
            (std::vector<std::string>{"database-token-0123456789", "first-mgmt-token-0123456789",
                                      "second-mgmt-token-0123456789"}));
  EXPECT_EQ(influxctl_profile_mgmt_token(config, "other"), "second-mgmt-token-0123456789");
  EXPECT_EQ(influxctl_profile_mgmt_token(config, ""), "first-mgmt-token-0123456789");
  EXPECT_EQ(influxctl_profile_mgmt_token(config, "missing"), "");
  EXPECT_TRUE(influxctl_config_secrets(dir.file("no-such.toml")).empty());
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

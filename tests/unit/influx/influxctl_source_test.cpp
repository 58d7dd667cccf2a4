// Tests for influx/influxctl_source.h against a shell script that mimics influxctl: it logs its
// arguments and answers from files the test writes into a temp dir.

#include "influx/influxctl_source.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/strings.h"
#include "tests/unit/core/test_support.h"

namespace tw::influx {
namespace {

using tw::testing::read_file;
using tw::testing::TempDir;

// Behaviour per subcommand: "<dir>/<sub>.out" is printed to stdout, "<dir>/<sub>.err" to
// stderr, "<dir>/<sub>.code" is the exit status, "<dir>/<sub>.sleep" makes it sleep first.
const char* kFakeInfluxctl = R"SH(#!/bin/sh
dir=$(dirname "$0")
printf '%s\n' "$*" >> "$dir/args.log"
sub=other
case "$*" in
  *" token list "*) sub=list ;;
  *" token revoke "*) sub=revoke ;;
  *" token update "*) sub=update ;;
  *" token get "*) sub=get ;;
esac
if [ -f "$dir/$sub.sleep" ]; then sleep "$(cat "$dir/$sub.sleep")"; fi
if [ -f "$dir/$sub.out" ]; then cat "$dir/$sub.out"; fi
if [ -f "$dir/$sub.err" ]; then cat "$dir/$sub.err" >&2; fi
if [ -f "$dir/$sub.code" ]; then exit "$(cat "$dir/$sub.code")"; fi
exit 0
)SH";

const char* kList = R"([
  {"account_id":"11111111-1111-4111-8111-111111111111",
   "cluster_id":"33333333-3333-4333-8333-333333333333",
   "id":"tok-active","description":"read/write for mydb1",
   "permissions":[{"id":"00000000-0000-0000-0000-000000000000","action":"read","resource":"mydb1"}],
   "created_at":{"seconds":1710274420,"nanos":436126000},"expires_at":{"seconds":"1893456000"}},
  {"id":"tok-revoked","description":"old","permissions":[],
   "created_at":{"seconds":1710274420},"revoked_at":{"seconds":1710274650,"nanos":63389000}}
])";

class InfluxctlTest : public ::testing::Test {
 protected:
  void SetUp() override { script_ = dir_.write("influxctl", kFakeInfluxctl, 0700); }

  InfluxctlClusterClient client(Duration timeout = std::chrono::seconds(20),
                                std::string profile = "prod") {
    SourceConfig cfg;
    cfg.cluster = "ctl";
    cfg.type = SourceType::kInfluxctl;
    cfg.influxctl_path = script_;
    cfg.influxctl_config = dir_.file("config.toml");
    cfg.profile = std::move(profile);
    cfg.timeout = timeout;
    return InfluxctlClusterClient(cfg);
  }
  void answer(const std::string& sub, const std::string& out, int code = 0,
              const std::string& err = "") {
    dir_.write(sub + ".out", out);
    dir_.write(sub + ".code", std::to_string(code));
    dir_.write(sub + ".err", err);
  }
  std::vector<std::string> calls() const {
    std::string log = read_file(dir_.file("args.log"));
    std::vector<std::string> out = split(log, '\n');
    if (!out.empty() && out.back().empty()) out.pop_back();
    if (out.size() == 1 && out[0].empty()) out.clear();
    return out;
  }
  std::string prefix() const { return "--config " + dir_.file("config.toml") + " --profile prod "; }

  TempDir dir_;
  std::string script_;
  CallContext ctx_;
};

TEST_F(InfluxctlTest, ListDecodesSnakeCaseJson) {
  answer("list", kList);
  auto c = client();
  auto list = c.list_tokens(ctx_);
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_EQ(list->tokens.size(), 2u);
  EXPECT_EQ(list->tokens[0].id, "tok-active");
  EXPECT_EQ(list->tokens[0].permissions, (std::vector<Permission>{{"read", "mydb1"}}));
  EXPECT_EQ(list->tokens[0].created_at, Timestamp(Duration(1710274420436)));
  EXPECT_EQ(list->tokens[0].expires_at, Timestamp(Duration(1893456000000)));
  EXPECT_EQ(list->tokens[1].revoked_at, Timestamp(Duration(1710274650063)));
  EXPECT_EQ(calls(),
            (std::vector<std::string>{prefix() + "token list --format json --include-revoked"}));
}

TEST_F(InfluxctlTest, ListWithoutProfileOmitsTheFlag) {
  answer("list", "[]");
  auto c = client(std::chrono::seconds(20), "");
  auto list = c.list_tokens(ctx_);
  ASSERT_TRUE(list.ok()) << list.error().message;
  EXPECT_EQ(calls(), (std::vector<std::string>{"--config " + dir_.file("config.toml") +
                                               " token list --format json --include-revoked"}));
  EXPECT_EQ(c.describe(), script_ + " --config " + dir_.file("config.toml"));
}

TEST_F(InfluxctlTest, FailureCarriesExitStatusAndStderr) {
  answer("list", "", 1, "Error: failed to list tokens: rpc error: code = Unauthenticated\n");
  auto list = client().list_tokens(ctx_);
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().code, ErrorCode::kIo);
  EXPECT_NE(list.error().message.find("status 1"), std::string::npos) << list.error().message;
  EXPECT_NE(list.error().message.find("code = Unauthenticated"), std::string::npos)
      << list.error().message;
  EXPECT_EQ(list.error().message.find('\n'), std::string::npos);
}

TEST_F(InfluxctlTest, LongStderrIsTruncated) {
  answer("list", "", 2, std::string(100000, 'x') + "TAIL");
  auto list = client().list_tokens(ctx_);
  ASSERT_FALSE(list.ok());
  EXPECT_LT(list.error().message.size(), 1000u);
  EXPECT_EQ(list.error().message.find("TAIL"), std::string::npos);
}

TEST_F(InfluxctlTest, MalformedOutputIsAParseError) {
  answer("list", "Listing tokens...\n[]");
  auto list = client().list_tokens(ctx_);
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().code, ErrorCode::kParse);

  answer("list", R"([{"description":"no id"}])");
  auto noid = client().list_tokens(ctx_);
  ASSERT_FALSE(noid.ok());
  EXPECT_EQ(noid.error().code, ErrorCode::kParse);
  EXPECT_NE(noid.error().message.find("token #0"), std::string::npos) << noid.error().message;
}

TEST_F(InfluxctlTest, SlowInfluxctlIsKilledAtTheTimeout) {
  answer("list", "[]");
  dir_.write("list.sleep", "30");
  auto start = std::chrono::steady_clock::now();
  auto list = client(std::chrono::milliseconds(300)).list_tokens(ctx_);
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().code, ErrorCode::kTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(InfluxctlTest, MissingBinary) {
  SourceConfig cfg;
  cfg.type = SourceType::kInfluxctl;
  cfg.influxctl_path = dir_.file("no-such-influxctl");
  cfg.influxctl_config = "x";
  auto list = InfluxctlClusterClient(cfg).list_tokens(ctx_);
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().code, ErrorCode::kIo);
}

TEST_F(InfluxctlTest, RevokeSuccess) {
  answer("revoke", "Token revoked\n");
  auto r = client().revoke("tok-active", ctx_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, RevokeOutcome::kRevoked);
  EXPECT_EQ(calls(), (std::vector<std::string>{prefix() + "token revoke --force tok-active"}));
}

TEST_F(InfluxctlTest, RevokeFailureButAlreadyRevokedCountsAsDone) {
  answer("revoke", "", 1, "Error: token already revoked\n");
  answer("list", kList);
  auto r = client().revoke("tok-revoked", ctx_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, RevokeOutcome::kAlreadyGone);
  ASSERT_EQ(calls().size(), 2u);
  EXPECT_NE(calls()[1].find("token list"), std::string::npos);
}

TEST_F(InfluxctlTest, RevokeFailureAndTokenGoneCountsAsDone) {
  answer("revoke", "", 1, "Error: not found\n");
  answer("list", kList);
  auto r = client().revoke("tok-unknown", ctx_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, RevokeOutcome::kAlreadyGone);
}

TEST_F(InfluxctlTest, RevokeFailureWhileTokenStillActiveIsAnError) {
  answer("revoke", "", 1, "Error: permission denied\n");
  answer("list", kList);
  auto r = client().revoke("tok-active", ctx_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("permission denied"), std::string::npos) << r.error().message;
}

TEST_F(InfluxctlTest, RevokeFailureAndListFailureIsTheRevokeError) {
  answer("revoke", "", 1, "Error: revoke broke\n");
  answer("list", "", 1, "Error: list broke\n");
  auto r = client().revoke("tok-active", ctx_);
  ASSERT_FALSE(r.ok()) << "must not claim success when nothing confirms it";
  EXPECT_NE(r.error().message.find("revoke broke"), std::string::npos) << r.error().message;
}

TEST_F(InfluxctlTest, IdsThatLookLikeFlagsAreRefusedWithoutRunning) {
  for (const char* id : {"", "-h", "--force", "--config=/etc/passwd"}) {
    auto r = client().revoke(id, ctx_);
    EXPECT_FALSE(r.ok()) << id;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << id;
    }
    auto s = client().restrict(id, {{"read", "db"}}, ctx_);
    EXPECT_FALSE(s.ok()) << id;
  }
  EXPECT_TRUE(calls().empty());
}

TEST_F(InfluxctlTest, RestrictBuildsDatabaseFlags) {
  answer("update", "{}");
  auto s =
      client().restrict("tok-active", {{"read", "db1"}, {"write", "db2"}, {"read", "*"}}, ctx_);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(
      calls(),
      (std::vector<std::string>{prefix() + "token update --read-database db1 --write-database db2 "
                                           "--read-database * tok-active"}));
}

TEST_F(InfluxctlTest, RestrictItCannotExpressFailsWithoutRunning) {
  auto none = client().restrict("tok-active", {}, ctx_);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::kUnsupported);
  auto admin = client().restrict("tok-active", {{"admin", "db"}}, ctx_);
  ASSERT_FALSE(admin.ok());
  EXPECT_EQ(admin.error().code, ErrorCode::kUnsupported);
  auto flag = client().restrict("tok-active", {{"read", "--all"}}, ctx_);
  ASSERT_FALSE(flag.ok());
  EXPECT_EQ(flag.error().code, ErrorCode::kUnsupported);
  EXPECT_TRUE(calls().empty());
}

TEST_F(InfluxctlTest, RestrictFailureCarriesStderr) {
  answer("update", "", 3, "Error: database db9 not found\n");
  auto s = client().restrict("tok-active", {{"read", "db9"}}, ctx_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("db9 not found"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("status 3"), std::string::npos) << s.error().message;
}

TEST_F(InfluxctlTest, GetReadsOneTokenIncludingRevoked) {
  answer("get", R"({"id":"tok-revoked","description":"old","permissions":[],)"
                R"("created_at":{"seconds":1710274420},"revoked_at":{"seconds":1710274650}})");
  auto t = client().get_token("tok-revoked", {});
  ASSERT_TRUE(t.ok()) << t.error().message;
  ASSERT_TRUE(t->has_value());
  EXPECT_EQ((*t)->id, "tok-revoked");
  EXPECT_TRUE((*t)->revoked_at.has_value());
  ASSERT_EQ(calls().size(), 1u);
  EXPECT_NE(calls()[0].find("token get --include-revoked --format json tok-revoked"),
            std::string::npos)
      << calls()[0];
}

TEST_F(InfluxctlTest, GetNotFoundNamingTheTokenMeansNoSuchToken) {
  answer("get", "", 1, "error\ttoken tok-gone not found\n");
  auto t = client().get_token("tok-gone", {});
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_FALSE(t->has_value());
}

TEST_F(InfluxctlTest, GetNotFoundAboutSomethingElseIsAFailure) {
  // A missing profile, or a "not found" that does not name the token, proves nothing about it.
  answer("get", "", 1, "error\tprofile \"prod\" not found in config file (token tok-1)\n");
  EXPECT_FALSE(client().get_token("tok-1", {}).ok());
  answer("get", "", 1, "error\t404 page not found\n");
  EXPECT_FALSE(client().get_token("tok-1", {}).ok());
}

TEST_F(InfluxctlTest, GetOfAnotherTokenIsRefused) {
  answer("get", R"({"id":"tok-other","description":"","permissions":[]})");
  auto t = client().get_token("tok-1", {});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("instead of the one asked for"), std::string::npos)
      << t.error().message;
}

}  // namespace
}  // namespace tw::influx

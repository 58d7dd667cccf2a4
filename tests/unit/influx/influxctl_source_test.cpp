// Tests for influx/influxctl_source.h against a shell script that mimics influxctl: it logs its
// arguments and answers from files the test writes into a temp dir.

#include "influx/influxctl_source.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/strings.h"
#include "influx/influxctl_version.h"
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
  *" management list "*) sub=mgmt ;;
  version) sub=version ;;
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
  // influxctl's own --timeout: 18 s for the 20 s deadline of client().
  std::string prefix() const {
    return "--config " + dir_.file("config.toml") + " --profile prod --timeout 18s ";
  }

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
                                               " --timeout 18s token list --format json "
                                               "--include-revoked"}));
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

// --- influxctl as it really prints (reference §A2) ------------------------------------------

TEST_F(InfluxctlTest, NullListMeansNoTokens) {
  // encoding/json prints a nil slice as null: a cluster without tokens.
  answer("list", "null\n");
  auto list = client().list_tokens(ctx_);
  ASSERT_TRUE(list.ok()) << list.error().message;
  EXPECT_TRUE(list->tokens.empty());
  answer("list", "null []");
  auto bad = client().list_tokens(ctx_);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kParse);
}

TEST_F(InfluxctlTest, WarnLinesOnStderrDoNotFailACall) {
  answer("list", kList, 0, "warn\ta newer version is available\nwarn\tsecond\n");
  auto list = client().list_tokens(ctx_);
  ASSERT_TRUE(list.ok()) << list.error().message;
  EXPECT_EQ(list->tokens.size(), 2u);
  answer("revoke", "", 0, "warn\tsomething\n");
  auto r = client().revoke("tok-active", ctx_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, RevokeOutcome::kRevoked);
}

TEST_F(InfluxctlTest, AbsentFieldsAndExtraIdsAsAGoCliPrintsThem) {
  answer("list", R"([{"account_id":"00000000-0000-0000-0000-000000000000",
    "cluster_id":"00000000-0000-0000-0000-000000000000","id":"bare",
    "created_at":{"seconds":1710274420}},
    {"id":"full","description":"d","permissions":[
      {"id":"00000000-0000-0000-0000-000000000000","action":"write","resource":"db"}],
     "created_at":{"seconds":1710274420,"nanos":5000000},"expires_at":{"seconds":1893456000}}])");
  auto list = client().list_tokens(ctx_);
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_EQ(list->tokens.size(), 2u);
  EXPECT_EQ(list->tokens[0].description, "");
  EXPECT_TRUE(list->tokens[0].permissions.empty());
  EXPECT_FALSE(list->tokens[0].expires_at.has_value());
  EXPECT_EQ(list->tokens[1].created_at, Timestamp(Duration(1710274420005)));
  EXPECT_EQ(list->tokens[1].permissions, (std::vector<Permission>{{"write", "db"}}));
}

TEST(InfluxctlTimeoutFlag, StaysBelowTheDeadline) {
  EXPECT_EQ(influxctl_timeout_flag(std::chrono::seconds(60)), "54s");
  EXPECT_EQ(influxctl_timeout_flag(std::chrono::seconds(10)), "9s");
  EXPECT_EQ(influxctl_timeout_flag(std::chrono::milliseconds(1500)), "750ms");
  EXPECT_EQ(influxctl_timeout_flag(std::chrono::milliseconds(300)), "150ms");
  EXPECT_EQ(influxctl_timeout_flag(std::chrono::minutes(10)), "540s");
}

// --- the management token tokenwarden uses ------------------------------------------------

const char* kManagementList = R"([
  {"id":"other-1","account_id":"a","token_prefix":"M.V1.+5Jk",
   "revoked_at":{"seconds":1710273809,"nanos":948178000},"created_at":{"seconds":1710273527},
   "description":"Client1 token","created_by":"u"},
  {"id":"ours","account_id":"a","token_prefix":"M.V1.Abcd","expires_at":{"seconds":1893456000},
   "created_at":{"seconds":1710273882,"nanos":819785000},"description":"tokenwarden"}
])";

class InfluxctlCredentialTest : public InfluxctlTest {
 protected:
  void profile(const std::string& mgmt_token) {
    dir_.write("config.toml",
               "[[profile]]\nname = \"prod\"\nhost = \"h\"\n" +
                   (mgmt_token.empty() ? std::string() : "mgmt_token = \"" + mgmt_token + "\"\n"));
  }
};

TEST_F(InfluxctlCredentialTest, FindsItsOwnTokenByPrefix) {
  profile("M.V1.Abcd-the-secret-rest");
  answer("mgmt", kManagementList);
  auto c = client().own_credential(ctx_);
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_TRUE(c->has_value());
  EXPECT_EQ((*c)->id, "ours");
  EXPECT_EQ((*c)->description, "tokenwarden");
  EXPECT_EQ((*c)->expires_at, Timestamp(std::chrono::seconds(1893456000)));
  EXPECT_FALSE((*c)->revoked_at.has_value());
  EXPECT_EQ(calls(), (std::vector<std::string>{prefix() + "management list --format json"}));
}

TEST_F(InfluxctlCredentialTest, NoMatchingPrefixOrNoMgmtTokenCannotTell) {
  profile("M.V1.Zzzz-not-listed");
  answer("mgmt", kManagementList);
  auto none = client().own_credential(ctx_);
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_FALSE(none->has_value());
  profile("");  // OAuth or an admin token file: nothing to match, influxctl is not even asked
  auto oauth = client().own_credential(ctx_);
  ASSERT_TRUE(oauth.ok());
  EXPECT_FALSE(oauth->has_value());
  EXPECT_EQ(calls().size(), 1u);
}

TEST_F(InfluxctlCredentialTest, RevokedMatchIsReportedAndLiveMatchWins) {
  profile("M.V1.+5Jk-old-secret");
  answer("mgmt", kManagementList);
  auto revoked = client().own_credential(ctx_);
  ASSERT_TRUE(revoked.ok());
  ASSERT_TRUE(revoked->has_value());
  EXPECT_TRUE((*revoked)->revoked_at.has_value());

  answer("mgmt", R"([{"id":"dead","token_prefix":"M.V1.Abcd","revoked_at":{"seconds":5}},
    {"id":"late","token_prefix":"M.V1.Abcd","expires_at":{"seconds":1999999999}},
    {"id":"soon","token_prefix":"M.V1.Abcd","expires_at":{"seconds":1893456000}}])");
  profile("M.V1.Abcd-x");
  auto live = client().own_credential(ctx_);
  ASSERT_TRUE(live.ok());
  ASSERT_TRUE(live->has_value());
  EXPECT_EQ((*live)->id, "soon");  // the earliest expiry of the live matches: the cautious one
}

TEST_F(InfluxctlCredentialTest, NullListUnreadableListAndFailureNeverShowTheSecret) {
  const std::string secret = "M.V1.Abcd-the-secret-rest";
  profile(secret);
  answer("mgmt", "null");
  auto none = client().own_credential(ctx_);
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_FALSE(none->has_value());
  answer("mgmt", R"([{"description":")" + secret + R"("}])");
  auto bad = client().own_credential(ctx_);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.find(secret), std::string::npos) << bad.error().message;
  answer("mgmt", "", 1, "error\tunauthenticated: " + secret + "\n");
  auto failed = client().own_credential(ctx_);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message.find(secret), std::string::npos) << failed.error().message;
}

// --- the version floor ---------------------------------------------------------------------

TEST_F(InfluxctlTest, VersionCheckNamesFoundAndNeeded) {
  answer("version", "influxctl v2.12.0 (abc) linux/amd64\n");
  auto good = check_influxctl_version(script_);
  ASSERT_TRUE(good.ok()) << good.error().message;
  EXPECT_EQ(good->to_string(), "2.12.0");

  answer("version", "influxctl v2.9.8 (abc) linux/amd64\n");
  auto old = check_influxctl_version(script_);
  ASSERT_FALSE(old.ok());
  EXPECT_NE(old.error().message.find("2.9.8"), std::string::npos) << old.error().message;
  EXPECT_NE(old.error().message.find("2.10.0"), std::string::npos) << old.error().message;

  answer("version", "influxctl dev\n");
  auto odd = check_influxctl_version(script_);
  ASSERT_FALSE(odd.ok());
  EXPECT_NE(odd.error().message.find("influxctl dev"), std::string::npos) << odd.error().message;
  EXPECT_NE(odd.error().message.find("2.10.0"), std::string::npos) << odd.error().message;

  answer("version", "", 3, "error\tno such command\n");
  auto failing = check_influxctl_version(script_);
  ASSERT_FALSE(failing.ok());
  EXPECT_EQ(failing.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(failing.error().message.find("failed (status 3): error"), std::string::npos)
      << failing.error().message;

  auto missing = check_influxctl_version(dir_.file("no-such-influxctl"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kIo) << "cannot run: not a version problem";
  EXPECT_NE(missing.error().message.find("no-such-influxctl"), std::string::npos);
  EXPECT_EQ(old.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace tw::influx

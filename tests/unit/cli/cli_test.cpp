// Tests for cli/cli.h: run_cli parses the command line and dispatches, in process, with stdout
// and stderr captured — --version, usage errors (exit 2), and `verify` as a whole command on a
// temp-dir database: intact (0, table or JSON), missing (1), broken chain (3).

#include "cli/cli.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/version.h"
#include "tests/unit/storage/store_fixture.h"

namespace tw::cli {
namespace {

using ::testing::internal::CaptureStderr;
using ::testing::internal::CaptureStdout;
using ::testing::internal::GetCapturedStderr;
using ::testing::internal::GetCapturedStdout;

struct Run {
  int code;
  std::string out;
  std::string err;
};

// `tokenwarden ARGS…` in this process.
Run run(std::vector<std::string> args) {
  args.insert(args.begin(), "tokenwarden");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  CaptureStdout();
  CaptureStderr();
  const int code = run_cli(static_cast<int>(args.size()), argv.data());
  std::fflush(stdout);
  Run r{code, GetCapturedStdout(), GetCapturedStderr()};
  return r;
}

TEST(RunCli, VersionIsPrintedAndExitsZero) {
  auto r = run({"--version"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_EQ(r.out, std::string("tokenwarden ") + kVersion + "\n");
}

TEST(RunCli, UsageErrorsExitTwo) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{},
                                               {"no-such-command"},
                                               {"verify", "--format", "yaml"},
                                               {"verify", "--db", ""},
                                               {"demo", "--cycles", "0"}}) {
    auto r = run(args);
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_EQ(r.code, kExitUsage) << joined << "\n" << r.err;
    EXPECT_FALSE(r.err.empty()) << joined << ": says why";
  }
}

TEST(RunCli, ABadDemoIntervalIsAUsageErrorBeforeAnythingStarts) {
  auto r = run({"demo", "--interval", "soon"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(r.err.rfind("tokenwarden: error: --interval: ", 0), 0u) << r.err;
}

class VerifyCommand : public storage::testing::StoreTest {};

TEST_F(VerifyCommand, AnIntactLogExitsZero) {
  storage::InventoryRecorder recorder(*store_);
  poll_ok(recorder, storage::testing::make_tokens(3));
  auto table = run({"verify", "--db", path_});
  EXPECT_EQ(table.code, kExitOk) << table.err;
  EXPECT_EQ(table.out.rfind(path_ + ": audit log intact: 3 rows, head seq 3, hash ", 0), 0u)
      << table.out;

  auto json = run({"verify", "--db", path_, "--format", "json"});
  EXPECT_EQ(json.code, kExitOk) << json.err;
  auto doc = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << json.out;
  EXPECT_EQ(doc["ok"], true);
  EXPECT_EQ(doc["rows"], 3);
  EXPECT_EQ(doc["database"], path_);
}

TEST_F(VerifyCommand, AMissingDatabaseExitsOne) {
  auto r = run({"verify", "--db", dir_.file("none.db")});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
}

TEST_F(VerifyCommand, ABrokenChainExitsThreeAndNamesTheRow) {
  storage::InventoryRecorder recorder(*store_);
  poll_ok(recorder, storage::testing::make_tokens(3));
  tamper("UPDATE audit_events SET detail = '{}' WHERE seq = 2;");
  auto r = run({"verify", "--db", path_});
  EXPECT_EQ(r.code, kExitChainBroken);
  EXPECT_NE(r.err.find("audit log is BROKEN"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tw::cli

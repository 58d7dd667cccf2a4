// Tests for cli/command_support.h (and print_error, database_path of cli/commands.h): what every
// command shares — the configuration loaded with its problems on stderr, --db or the
// configuration's database, the audit store opened or one error line, time arguments, stdout
// written byte for byte, and instants as table cells. Files live in a temp dir.

#include "cli/command_support.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>

#include "tests/unit/core/test_support.h"

namespace tw::cli {
namespace {

using ::testing::internal::CaptureStderr;
using ::testing::internal::CaptureStdout;
using ::testing::internal::GetCapturedStderr;
using ::testing::internal::GetCapturedStdout;
using tw::testing::ts;

class CommandSupportTest : public ::testing::Test {
 protected:
  // A valid configuration whose policy scope matches no cluster (a warning, not an error).
  GlobalOptions config_file(const std::string& extra = "") {
    const std::string text = "[daemon]\ndatabase = \"" + dir_.file("audit.db") +
                             "\"\n"
                             "[[clusters]]\nname = \"prod\"\ntype = \"clustered\"\n"
                             "url = \"https://h.example.com/api/v0\"\ntoken_file = \"/etc/t\"\n"
                             "[[policies]]\nname = \"p\"\nkind = \"max_age\"\nmax_age = \"1d\"\n"
                             "scope = { clusters = [\"staging-*\"] }\n" +
                             extra;
    return {dir_.write("tokenwarden.toml", text), true};
  }

  tw::testing::TempDir dir_;
};

TEST_F(CommandSupportTest, LoadConfigPrintsWarningsUnlessQuiet) {
  const GlobalOptions g = config_file();
  CaptureStderr();
  auto loud = load_config(g);
  const std::string said = GetCapturedStderr();
  ASSERT_TRUE(loud.has_value());
  EXPECT_EQ(loud->daemon.database, dir_.file("audit.db"));
  EXPECT_EQ(said,
            "tokenwarden: warning: policies[0].scope.clusters: \"staging-*\" matches no "
            "configured cluster\n");
  CaptureStderr();
  EXPECT_TRUE(load_config(g, true).has_value());
  EXPECT_EQ(GetCapturedStderr(), "");
}

TEST_F(CommandSupportTest, LoadConfigPrintsEachErrorAndTheCount) {
  const GlobalOptions g = config_file("[bogus]\nkey = 1\n[daemon2]\n");
  CaptureStderr();
  auto config = load_config(g, true);
  const std::string said = GetCapturedStderr();
  EXPECT_FALSE(config.has_value());
  EXPECT_NE(said.find("tokenwarden: error: "), std::string::npos) << said;
  EXPECT_NE(said.find("bogus"), std::string::npos) << said;
  EXPECT_NE(said.find("tokenwarden: 2 problem(s) in " + g.config_path + "\n"), std::string::npos)
      << said;
  EXPECT_EQ(said.find("warning"), std::string::npos) << "quiet: " << said;
}

TEST_F(CommandSupportTest, AMissingConfigurationIsOneProblem) {
  const GlobalOptions g{dir_.file("absent.toml"), true};
  CaptureStderr();
  EXPECT_FALSE(load_config(g).has_value());
  const std::string said = GetCapturedStderr();
  EXPECT_NE(said.find("tokenwarden: 1 problem(s) in " + g.config_path), std::string::npos) << said;
}

TEST_F(CommandSupportTest, DatabasePathPrefersDbOverTheConfiguration) {
  const GlobalOptions g = config_file();
  EXPECT_EQ(database_path(g, "/tmp/other.db"), "/tmp/other.db");
  CaptureStderr();
  EXPECT_EQ(database_path(g, ""), dir_.file("audit.db"));
  EXPECT_EQ(GetCapturedStderr(), "") << "the configuration's warnings are not repeated";
  CaptureStderr();
  EXPECT_EQ(database_path(GlobalOptions{dir_.file("absent.toml"), true}, ""), std::nullopt);
  EXPECT_NE(GetCapturedStderr().find("problem(s)"), std::string::npos);
}

TEST_F(CommandSupportTest, OpenStoreFailsWithOneErrorLine) {
  CaptureStderr();
  auto missing = open_store(dir_.file("none.db"), storage::AuditStore::Mode::kReadOnly);
  const std::string said = GetCapturedStderr();
  EXPECT_EQ(missing, nullptr);
  EXPECT_EQ(said.rfind("tokenwarden: error: ", 0), 0u) << said;
  EXPECT_NE(said.find(dir_.file("none.db")), std::string::npos) << said;
  EXPECT_EQ(std::count(said.begin(), said.end(), '\n'), 1) << said;

  auto created = open_store(dir_.file("new.db"), storage::AuditStore::Mode::kReadWrite);
  EXPECT_NE(created, nullptr);
  created.reset();
  EXPECT_NE(open_store(dir_.file("new.db"), storage::AuditStore::Mode::kReadOnly), nullptr);
}

TEST(TimeOption, ParsesOrPrintsTheOptionName) {
  const Timestamp now = ts("2026-06-10T12:00:00Z");
  EXPECT_EQ(time_option("7d", "--since", now), ts("2026-06-03T12:00:00Z"));
  EXPECT_EQ(time_option("2026-01-02", "--since", now), ts("2026-01-02T00:00:00Z"));
  EXPECT_EQ(time_option("now", "--until", now), now);
  CaptureStderr();
  EXPECT_EQ(time_option("yesterday-ish", "--until", now), std::nullopt);
  const std::string said = GetCapturedStderr();
  EXPECT_EQ(said.rfind("tokenwarden: error: --until: ", 0), 0u) << said;
}

TEST(TimeCell, TextOrNull) {
  const Cell set = time_cell(ts("2026-01-02T03:04:05Z"));
  EXPECT_EQ(set.kind, Cell::Kind::kText);
  EXPECT_EQ(set.text, "2026-01-02T03:04:05.000Z");
  EXPECT_EQ(time_cell(std::nullopt).kind, Cell::Kind::kNull);
}

TEST(Env, ValueOrEmpty) {
  ::setenv("TW_UNIT_CLI_ENV", "value", 1);
  EXPECT_EQ(env("TW_UNIT_CLI_ENV"), "value");
  ::unsetenv("TW_UNIT_CLI_ENV");
  EXPECT_EQ(env("TW_UNIT_CLI_ENV"), "");
}

TEST(WriteStdout, BytesAsTheyAre) {
  const std::string bytes("a\0b\n%s\n", 7);
  CaptureStdout();
  write_stdout(bytes);
  std::fflush(stdout);
  EXPECT_EQ(GetCapturedStdout(), bytes) << "no formatting, embedded NUL kept";
}

TEST(PrintError, OneLinePrefixed) {
  CaptureStderr();
  print_error("database \"x\" is locked");
  EXPECT_EQ(GetCapturedStderr(), "tokenwarden: error: database \"x\" is locked\n");
}

}  // namespace
}  // namespace tw::cli

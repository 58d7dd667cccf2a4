// Tests for cli/sim_process.h with fake tokenwarden-sim programs (shell scripts in a temp dir):
// the arguments it is started with, its listening line, each way a start fails (no such program,
// a child that exits or prints something else before listening, a bad URL), stop() reaping the
// child, call() against nothing listening, and where find_sim_program() looks.

#include "cli/sim_process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>

#include "tests/unit/core/test_support.h"

namespace tw::cli {
namespace {

using tw::testing::ScopedEnv;

class SimProcessTest : public ::testing::Test {
 protected:
  // A fake tokenwarden-sim: records its pid and arguments, runs `body`.
  std::string fake_sim(const std::string& body) {
    return dir_.write("tokenwarden-sim",
                      "#!/bin/sh\necho $$ > '" + dir_.file("pid") + "'\necho \"$@\" > '" +
                          dir_.file("args") + "'\n" + body + "\n",
                      0700);
  }
  Result<std::unique_ptr<SimProcess>> start(const std::string& program) {
    return SimProcess::start(program, "clustered", dir_.file("sim.token"), "apiv1_test");
  }
  pid_t child_pid() const { return std::stoi(tw::testing::read_file(dir_.file("pid"))); }

  tw::testing::TempDir dir_;
};

TEST_F(SimProcessTest, ReadsTheListeningLineAndStopReapsTheChild) {
  auto sim = start(
      fake_sim("echo 'tokenwarden-sim listening on http://127.0.0.1:4567/api/v0'\nexec sleep 30"));
  ASSERT_TRUE(sim.ok()) << sim.error().message;
  EXPECT_EQ((*sim)->base_url(), "http://127.0.0.1:4567/api/v0");
  EXPECT_EQ(tw::testing::read_file(dir_.file("args")), "--flavor clustered --token-file " +
                                                           dir_.file("sim.token") +
                                                           " --listen 127.0.0.1:0 --quiet\n");
  const pid_t pid = child_pid();
  EXPECT_EQ(::kill(pid, 0), 0) << "running until stopped";
  (*sim)->stop();
  EXPECT_EQ(::kill(pid, 0), -1) << "stopped and reaped";
  EXPECT_EQ(errno, ESRCH);
  (*sim)->stop();  // idempotent
}

TEST_F(SimProcessTest, AProgramThatDoesNotExistIsAClearError) {
  auto sim = start(dir_.file("no-such-tokenwarden-sim"));
  ASSERT_FALSE(sim.ok());
  EXPECT_EQ(sim.error().code, ErrorCode::kIo);
  EXPECT_EQ(sim.error().message, "tokenwarden-sim exited before listening");
}

TEST_F(SimProcessTest, AChildThatExitsWithoutListeningIsAClearError) {
  auto sim = start(fake_sim("echo 'starting' >&2\nexit 3"));
  ASSERT_FALSE(sim.ok());
  EXPECT_EQ(sim.error().code, ErrorCode::kIo);
  EXPECT_EQ(sim.error().message, "tokenwarden-sim exited before listening");
}

TEST_F(SimProcessTest, AnotherFirstLineIsQuotedPrintably) {
  auto sim = start(fake_sim("printf 'error: \\033[31mbad flag\\n'\nexec sleep 30"));
  ASSERT_FALSE(sim.ok());
  EXPECT_EQ(sim.error().code, ErrorCode::kIo);
  EXPECT_EQ(sim.error().message,
            "tokenwarden-sim printed \"error: \\x1b[31mbad flag\" instead of its listening line");
  const pid_t pid = child_pid();
  EXPECT_EQ(::kill(pid, 0), -1) << "the child of a failed start is stopped and reaped";
}

TEST_F(SimProcessTest, AListeningLineWithoutAUrlIsAnError) {
  auto sim = start(fake_sim("echo 'tokenwarden-sim listening on nowhere'\nexec sleep 30"));
  ASSERT_FALSE(sim.ok());
  EXPECT_NE(sim.error().message.find("nowhere"), std::string::npos) << sim.error().message;
}

TEST_F(SimProcessTest, CallWithNothingListeningIsAnErrorValue) {
  // Port 1 on loopback: nothing listens there, the connection is refused at once.
  auto sim = start(
      fake_sim("echo 'tokenwarden-sim listening on http://127.0.0.1:1/api/v0'\nexec sleep 30"));
  ASSERT_TRUE(sim.ok()) << sim.error().message;
  auto got = (*sim)->call("GET", "/_sim/tokens");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, ErrorCode::kNetwork) << got.error().message;
}

// find_sim_program looks beside this executable first: in a build tree tokenwarden-sim may be
// there, and then PATH is not consulted.
bool sim_beside_this_test() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return !ec && ::access((self.parent_path() / "tokenwarden-sim").c_str(), X_OK) == 0;
}

TEST_F(SimProcessTest, FindSimProgramOnPath) {
  if (sim_beside_this_test()) GTEST_SKIP() << "tokenwarden-sim is beside the test binary";
  const std::string empty = (dir_.path() / "empty").string();
  std::filesystem::create_directory(empty);
  {
    ScopedEnv path("PATH", ":" + empty + ":" + dir_.file("absent"));
    auto none = find_sim_program();
    ASSERT_FALSE(none.ok());
    EXPECT_EQ(none.error().code, ErrorCode::kNotFound);
    EXPECT_NE(none.error().message.find("neither next to this tokenwarden nor on PATH"),
              std::string::npos)
        << none.error().message;
  }
  {
    ScopedEnv path("PATH", std::nullopt);
    EXPECT_EQ(find_sim_program().error().code, ErrorCode::kNotFound) << "no PATH at all";
  }
  const std::string noexec = (dir_.path() / "noexec").string();
  std::filesystem::create_directory(noexec);
  dir_.write("noexec/tokenwarden-sim", "#!/bin/sh\n", 0600);
  const std::string program = fake_sim("exit 0");
  ScopedEnv path("PATH", empty + ":" + noexec + ":" + dir_.path().string());
  auto found = find_sim_program();
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_EQ(*found, program) << "a file that is not executable is passed over";
}

TEST_F(SimProcessTest, FindSimProgramPrefersTheOneBesideThisExecutable) {
  if (!sim_beside_this_test()) GTEST_SKIP() << "no tokenwarden-sim beside the test binary";
  const std::string program = fake_sim("exit 0");
  ScopedEnv path("PATH", dir_.path().string());
  auto found = find_sim_program();
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_NE(*found, program);
  EXPECT_EQ(std::filesystem::path(*found).filename(), "tokenwarden-sim");
}

}  // namespace
}  // namespace tw::cli

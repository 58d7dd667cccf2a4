// Tests for influx/subprocess.h: exit codes, output capture, deadlines, cancellation, limits.
// Deadlines are real (the child is a real process); upper bounds on elapsed time are generous
// so the tests stay deterministic on a loaded machine, and nothing sleeps in the test itself.

#include "influx/subprocess.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "tests/unit/core/test_support.h"

namespace tw::influx {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using tw::testing::TempDir;

ProcessOptions opts(Duration timeout = std::chrono::seconds(20)) {
  ProcessOptions o;
  o.timeout = timeout;
  return o;
}

Result<ProcessResult> sh(const std::string& script, const ProcessOptions& o = opts()) {
  return run_process({"/bin/sh", "-c", script}, o);
}

// True once the process is gone or a zombie (killed, waiting for its reaper), within ~5 s.
bool process_dead(pid_t pid) {
  auto until = steady_clock::now() + std::chrono::seconds(5);
  while (steady_clock::now() < until) {
    std::string content = tw::testing::read_file("/proc/" + std::to_string(pid) + "/stat");
    if (content.empty()) return true;
    auto close = content.rfind(')');
    if (close == std::string::npos || close + 2 >= content.size()) return true;
    char state = content[close + 2];
    if (state == 'Z' || state == 'X') return true;
    std::this_thread::yield();
  }
  return false;
}

pid_t read_pid(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  in >> pid;
  return static_cast<pid_t>(pid);
}

TEST(RunProcess, ExitCodes) {
  for (int code : {0, 1, 2, 3, 42, 255}) {
    auto r = sh("exit " + std::to_string(code));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->exit_code, code);
    EXPECT_EQ(r->signal, 0);
  }
}

TEST(RunProcess, CapturesStdoutAndStderrSeparately) {
  auto r = sh("printf 'out line\\n'; printf 'err line\\n' >&2; printf more");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->out, "out line\nmore");
  EXPECT_EQ(r->err, "err line\n");
  EXPECT_EQ(r->exit_code, 0);
}

TEST(RunProcess, PassesArgumentsVerbatimWithoutAShell) {
  auto r = run_process({"/bin/echo", "a b", "$HOME", "'q'", ";", "*"}, opts());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->out, "a b $HOME 'q' ; *\n");
}

TEST(RunProcess, FindsProgramsOnPath) {
  auto r = run_process({"sh", "-c", "echo found"}, opts());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->out, "found\n");
}

TEST(RunProcess, StdinIsDevNull) {
  auto r = run_process({"/bin/cat"}, opts(std::chrono::seconds(10)));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->out, "");
  EXPECT_EQ(r->exit_code, 0);
}

TEST(RunProcess, LargeOutputOnBothStreams) {
  auto r = sh("head -c 1000000 /dev/zero | tr '\\0' a; head -c 200000 /dev/zero | tr '\\0' e >&2");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->out.size(), 1'000'000u);
  EXPECT_EQ(r->out, std::string(1'000'000, 'a'));
  EXPECT_EQ(r->err.size(), 64u * 1024u) << "stderr is kept up to 64 KiB";
}

TEST(RunProcess, ReportsTheKillingSignal) {
  auto r = sh("kill -TERM $$");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->signal, SIGTERM);
}

TEST(RunProcess, TimeoutKillsASleepQuickly) {
  auto start = steady_clock::now();
  auto r = run_process({"sleep", "30"}, opts(milliseconds(300)));
  auto elapsed = steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
  EXPECT_NE(r.error().message.find("sleep"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("300ms"), std::string::npos) << r.error().message;
  EXPECT_GE(elapsed, milliseconds(300));
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

TEST(RunProcess, GrandchildHoldingThePipeIsKilledToo) {
  TempDir dir;
  std::string pidfile = dir.file("grandchild.pid");
  // The child starts a grandchild that inherits stdout, records its pid and exits at once.
  auto start = steady_clock::now();
  auto r = sh("sleep 30 & echo $! > '" + pidfile + "'; exit 0", opts(milliseconds(400)));
  auto elapsed = steady_clock::now() - start;
  ASSERT_FALSE(r.ok()) << "returned while a grandchild still held the pipe";
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  pid_t grandchild = read_pid(pidfile);
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(process_dead(grandchild)) << "grandchild " << grandchild << " survived";
}

TEST(RunProcess, ChildAndGrandchildBothKilledOnTimeout) {
  TempDir dir;
  std::string pidfile = dir.file("grandchild.pid");
  auto r = sh("sleep 30 & echo $! > '" + pidfile + "'; sleep 30", opts(milliseconds(300)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
  pid_t grandchild = read_pid(pidfile);
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(process_dead(grandchild));
}

TEST(RunProcess, StdoutLimit) {
  ProcessOptions o = opts();
  o.max_stdout_bytes = 1000;
  auto r = sh("head -c 100000 /dev/zero", o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kIo);
  EXPECT_NE(r.error().message.find("stdout"), std::string::npos) << r.error().message;

  auto exact = sh("head -c 1000 /dev/zero", o);
  ASSERT_TRUE(exact.ok()) << "exactly the limit is allowed: " << exact.error().message;
  EXPECT_EQ(exact->out.size(), 1000u);
}

TEST(RunProcess, StdoutLimitDoesNotWaitForTheChild) {
  ProcessOptions o = opts(std::chrono::seconds(20));
  o.max_stdout_bytes = 10;
  auto start = steady_clock::now();
  auto r = sh("printf 0123456789abcdef; exec sleep 30", o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kIo);
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(RunProcess, CancelFlagSetBeforehand) {
  std::atomic<bool> cancel{true};
  ProcessOptions o = opts(std::chrono::seconds(20));
  o.cancel = &cancel;
  auto start = steady_clock::now();
  auto r = run_process({"sleep", "30"}, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kCancelled);
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(RunProcess, CancelFlagSetWhileRunning) {
  TempDir dir;
  std::string started = dir.file("started");
  std::atomic<bool> cancel{false};
  ProcessOptions o = opts(std::chrono::seconds(20));
  o.cancel = &cancel;
  std::thread canceller([&] {
    // Wait (without sleeping a fixed time) until the child is running, then cancel.
    auto until = steady_clock::now() + std::chrono::seconds(10);
    while (!std::filesystem::exists(started) && steady_clock::now() < until)
      std::this_thread::yield();
    cancel.store(true);
  });
  auto start = steady_clock::now();
  auto r = sh("touch '" + started + "'; exec sleep 30", o);
  canceller.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kCancelled);
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(12));
}

TEST(RunProcess, CancelAfterTheChildClosedItsOutputIsStillCancelled) {
  // The child closes stdout and stderr but keeps running: run_process is then waiting for its
  // exit status. Shutdown during that wait is a cancellation, not a timeout (the poller records
  // nothing for a cancelled fetch but a poll_failed for a timeout).
  TempDir dir;
  std::string closed = dir.file("closed");
  std::atomic<bool> cancel{false};
  ProcessOptions o = opts(std::chrono::seconds(20));
  o.cancel = &cancel;
  std::thread canceller([&] {
    auto until = steady_clock::now() + std::chrono::seconds(10);
    while (!std::filesystem::exists(closed) && steady_clock::now() < until)
      std::this_thread::yield();
    cancel.store(true);
  });
  auto start = steady_clock::now();
  auto r = sh("exec >/dev/null 2>&1; touch '" + closed + "'; exec sleep 30", o);
  canceller.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kCancelled) << r.error().message;
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(12));
}

TEST(RunProcess, StdoutLimitMessageStatesTheLimit) {
  ProcessOptions o = opts();
  o.max_stdout_bytes = 1000;
  auto r = sh("head -c 5000 /dev/zero", o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.find("more than 0 MiB"), std::string::npos)
      << "the limit is 1000 bytes: " << r.error().message;
}

TEST(RunProcess, NonexistentProgram) {
  auto r = run_process({"/nonexistent/influxctl"}, opts());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kIo);
  EXPECT_NE(r.error().message.find("/nonexistent/influxctl"), std::string::npos)
      << r.error().message;

  auto on_path = run_process({"tokenwarden-no-such-program-xyz"}, opts());
  ASSERT_FALSE(on_path.ok());
  EXPECT_EQ(on_path.error().code, ErrorCode::kIo);
}

TEST(RunProcess, NotExecutable) {
  TempDir dir;
  std::string path = dir.write("script.sh", "#!/bin/sh\necho hi\n", 0600);
  auto r = run_process({path}, opts());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kIo);
}

TEST(RunProcess, EmptyArgvIsAnError) {
  auto r = run_process({}, opts());
  ASSERT_FALSE(r.ok());
}

TEST(SummarizeStderr, TrimmedPrintableAndCut) {
  EXPECT_EQ(summarize_stderr("  Error: token not found\n"), "Error: token not found");
  EXPECT_EQ(summarize_stderr("line1\nline2\n"), "line1\\nline2");
  EXPECT_EQ(summarize_stderr("\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m");
  EXPECT_EQ(summarize_stderr(""), "");
  std::string cut = summarize_stderr(std::string(1000, 'e'), 50);
  EXPECT_EQ(cut, std::string(50, 'e') + "...");
}

}  // namespace
}  // namespace tw::influx

// The tokenwarden-sim executable: start-up line, port file, seeding, request log lines, SIGTERM.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "influx/http_client.h"
#include "tests/unit/sim/sim_test_util.h"

extern char** environ;

namespace tw::sim {
namespace {

std::string slurp(const std::filesystem::path& p) { return testing::read_file(p); }

// Starts the simulator with stdout and stderr in files of `dir`.
pid_t spawn_sim(const testing::TempDir& dir, std::vector<std::string> args) {
  std::string exe = (testing::bin_dir() / "tokenwarden-sim").string();
  args.insert(args.begin(), exe);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  std::string out = (dir.path() / "stdout").string();
  std::string err = (dir.path() / "stderr").string();
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

// Waits for the child to exit (at most `limit`); returns its wait status or -1.
int wait_exit(pid_t pid, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

TEST(SimMainTest, PrintsListeningLineServesAndStopsOnSigterm) {
  testing::TempDir dir;
  std::string token_file = dir.write("token", "cli-secret-token\n");
  std::string port_file = (dir.path() / "port").string();
  pid_t pid = spawn_sim(dir, {"--token-file", token_file, "--port-file", port_file, "--seed-tokens",
                              "25", "--seed", "4", "--now", "2026-01-01T00:00:00Z"});
  ASSERT_GT(pid, 0);
  std::string port;
  for (int i = 0; i < 2000 && port.empty(); ++i) {  // up to 10 s, normally a few ms
    port = slurp(port_file);
    if (port.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_FALSE(port.empty()) << slurp(dir.path() / "stderr");
  while (!port.empty() && port.back() == '\n') port.pop_back();

  auto url = influx::parse_url("http://127.0.0.1:" + port);
  ASSERT_TRUE(url.ok());
  influx::HttpRequest req;
  req.target = "/api/v0/tokens";
  req.headers.emplace_back("Authorization", "Bearer cli-secret-token");
  auto r = influx::http_request(*url, req, influx::HttpOptions{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(testing::parse_json(r->body).size(), 25u);
  req.headers.clear();
  req.headers.emplace_back("Authorization", "Bearer guessed-token");
  r = influx::http_request(*url, req, influx::HttpOptions{});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);

  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = wait_exit(pid, std::chrono::seconds(10));
  ASSERT_NE(status, -1);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);

  std::string out = slurp(dir.path() / "stdout");
  EXPECT_EQ(out, "tokenwarden-sim listening on http://127.0.0.1:" + port + "/api/v0\n");
  std::string err = slurp(dir.path() / "stderr");
  EXPECT_NE(err.find("method=GET path=/api/v0/tokens status=200"), std::string::npos) << err;
  EXPECT_NE(err.find("status=401"), std::string::npos) << err;
  EXPECT_EQ(err.find("cli-secret-token"), std::string::npos);
  EXPECT_EQ(err.find("guessed-token"), std::string::npos);
}

TEST(SimMainTest, UsageErrors) {
  auto none = testing::run_binary("tokenwarden-sim", {"--listen", "127.0.0.1:0"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("--token"), std::string::npos);
  auto bad_flavor =
      testing::run_binary("tokenwarden-sim", {"--token", "t", "--flavor", "serverless"});
  EXPECT_EQ(bad_flavor.exit_code, 2);
  auto bad_listen =
      testing::run_binary("tokenwarden-sim", {"--token", "t", "--listen", "nohostport"});
  EXPECT_EQ(bad_listen.exit_code, 2);
  auto help = testing::run_binary("tokenwarden-sim", {"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--token-file"), std::string::npos);
  EXPECT_NE(help.out.find("/_sim/faults"), std::string::npos);
}

}  // namespace
}  // namespace tw::sim

#include "cli/sim_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "core/strings.h"
#include "influx/http_client.h"

namespace tw::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kProgram = "tokenwarden-sim";
constexpr const char* kListening = "tokenwarden-sim listening on ";
constexpr auto kStartDeadline = std::chrono::seconds(10);
constexpr auto kStopDeadline = std::chrono::seconds(5);

bool executable(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
}

// In the child, between fork and exec: only async-signal-safe calls, then _exit on failure.
[[noreturn]] void exec_child(char* const* argv, int out_fd, pid_t parent) {
  ::setpgid(0, 0);                     // Ctrl-C goes to the demo, which stops us in order
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // and we go if the demo dies without stopping us
  if (::getppid() != parent) ::_exit(127);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);  // the demo blocks SIGINT and SIGTERM
  int null_fd = ::open("/dev/null", O_RDONLY);
  if (null_fd < 0 || ::dup2(null_fd, STDIN_FILENO) < 0 || ::dup2(out_fd, STDOUT_FILENO) < 0) {
    ::_exit(127);
  }
  ::execv(argv[0], argv);
  ::_exit(127);
}

}  // namespace

Result<std::string> find_sim_program() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path beside = self.parent_path() / kProgram;
    if (executable(beside)) return beside.string();
  }
  const char* path = std::getenv("PATH");
  for (const auto& dir : split(path == nullptr ? "" : path, ':')) {
    if (dir.empty()) continue;
    fs::path candidate = fs::path(dir) / kProgram;
    if (executable(candidate)) return candidate.string();
  }
  return make_error(ErrorCode::kNotFound,
                    "the demo needs tokenwarden-sim, found neither next to this tokenwarden nor "
                    "on PATH (it is built and installed with tokenwarden; see "
                    "docs/simulator.md)");
}

Result<std::unique_ptr<SimProcess>> SimProcess::start(const std::string& program,
                                                      const std::string& flavor,
                                                      const std::string& token_file,
                                                      std::string token) {
  const std::vector<std::string> args = {program,    "--flavor", flavor,        "--token-file",
                                         token_file, "--listen", "127.0.0.1:0", "--quiet"};
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return make_error(ErrorCode::kIo,
                      std::string("cannot start tokenwarden-sim: pipe: ") + std::strerror(errno));
  }
  std::vector<char*> argv;  // built before fork: the child only execs
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) exec_child(argv.data(), fds[1], parent);
  ::close(fds[1]);
  if (pid < 0) {
    ::close(fds[0]);
    return make_error(ErrorCode::kIo,
                      std::string("cannot start tokenwarden-sim: fork: ") + std::strerror(errno));
  }
  std::unique_ptr<SimProcess> sim(new SimProcess(pid, std::move(token)));
  Status listening = sim->read_listening_line(fds[0]);
  ::close(fds[0]);
  if (!listening.ok()) return listening.error();  // the destructor stops the child
  return Result<std::unique_ptr<SimProcess>>(std::move(sim));
}

// Reads "tokenwarden-sim listening on URL\n" within kStartDeadline.
Status SimProcess::read_listening_line(int fd) {
  const auto deadline = std::chrono::steady_clock::now() + kStartDeadline;
  std::string line;
  while (line.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0) {
      return make_error(ErrorCode::kIo, "tokenwarden-sim did not start listening within 10 s");
    }
    char buf[512];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error(ErrorCode::kIo, "tokenwarden-sim exited before listening");
    line.append(buf, static_cast<std::size_t>(n));
  }
  line.resize(line.find('\n'));
  if (!starts_with(line, kListening)) {
    return make_error(ErrorCode::kIo, "tokenwarden-sim printed \"" + printable(line, 100) +
                                          "\" instead of its listening line");
  }
  base_url_ = line.substr(std::strlen(kListening));
  auto url = influx::parse_url(base_url_);
  if (!url.ok()) return url.error();
  root_url_ = url->scheme + "://" + url->authority();
  return ok_status();
}

Result<std::string> SimProcess::call(const std::string& method, const std::string& target,
                                     const std::string& body, bool authorized) const {
  auto root = influx::parse_url(root_url_);
  if (!root.ok()) return root.error();
  influx::HttpRequest request;
  request.method = method;
  request.target = target;
  request.body = body;
  if (authorized) request.headers.emplace_back("Authorization", "Bearer " + token_);
  influx::HttpOptions options;
  options.timeout = std::chrono::seconds(5);
  options.max_redirects = 0;
  auto response = influx::http_request(*root, request, options);
  if (!response.ok()) return response.error();
  if (response->status < 200 || response->status > 299) {
    return make_error(ErrorCode::kHttpStatus, method + " " + target + ": HTTP " +
                                                  std::to_string(response->status) + " " +
                                                  printable(response->body, 200));
  }
  return std::move(response->body);
}

void SimProcess::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + kStopDeadline;
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid_ = -1;
}

SimProcess::~SimProcess() { stop(); }

}  // namespace tw::cli

#include "influx/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/strings.h"

extern char** environ;

namespace tw::influx {
namespace {

constexpr std::size_t kMaxStderr = 64 * 1024;

struct Pipe {
  int fd[2] = {-1, -1};
  ~Pipe() {
    for (int f : fd) {
      if (f >= 0) ::close(f);
    }
  }
  void close_end(int i) {
    if (fd[i] >= 0) ::close(fd[i]);
    fd[i] = -1;
  }
};

void kill_and_reap(pid_t pid) {
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

std::string summarize_stderr(const std::string& err, std::size_t max_bytes) {
  std::string_view s = trim(err);
  return printable(s, max_bytes);
}

Result<ProcessResult> run_process(const std::vector<std::string>& argv,
                                  const ProcessOptions& options) {
  if (argv.empty()) return make_error(ErrorCode::kInternal, "run_process needs a program");
  const std::string& program = argv.front();
  Pipe out, err;
  if (::pipe2(out.fd, O_CLOEXEC) != 0 || ::pipe2(err.fd, O_CLOEXEC) != 0) {
    return make_error(ErrorCode::kIo, std::string("cannot create pipes: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out.fd[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err.fd[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t no_signals, default_signals;
  sigemptyset(&no_signals);
  sigfillset(&default_signals);
  posix_spawnattr_setsigmask(&attr, &no_signals);
  posix_spawnattr_setsigdefault(&attr, &default_signals);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, program.c_str(), &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return make_error(ErrorCode::kIo,
                      "cannot run \"" + printable(program, 200) + "\": " + std::strerror(rc));
  }
  out.close_end(1);
  err.close_end(1);

  ProcessResult result;
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  bool out_open = true, err_open = true;
  char buf[65536];
  while (out_open || err_open) {
    if (options.cancel != nullptr && options.cancel->load()) {
      kill_and_reap(pid);
      return make_error(ErrorCode::kCancelled,
                        "\"" + printable(program, 200) + "\" was stopped by shutdown");
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      kill_and_reap(pid);
      return make_error(ErrorCode::kTimeout,
                        "\"" + printable(program, 200) + "\" did not finish within " +
                            format_duration(options.timeout) + " and was killed");
    }
    pollfd fds[2];
    nfds_t n = 0;
    if (out_open) fds[n++] = {out.fd[0], POLLIN, 0};
    if (err_open) fds[n++] = {err.fd[0], POLLIN, 0};
    int wait_ms = static_cast<int>(std::min<long long>(
        50, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1));
    int ready = ::poll(fds, n, wait_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      kill_and_reap(pid);
      return make_error(ErrorCode::kIo, std::string("poll failed: ") + std::strerror(errno));
    }
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      bool is_out = fds[i].fd == out.fd[0];
      if (got <= 0) {
        (is_out ? out_open : err_open) = false;
        continue;
      }
      auto len = static_cast<std::size_t>(got);
      if (is_out) {
        if (result.out.size() + len > options.max_stdout_bytes) {
          kill_and_reap(pid);
          return make_error(ErrorCode::kIo, "\"" + printable(program, 200) + "\" wrote more than " +
                                                std::to_string(options.max_stdout_bytes) +
                                                " bytes to stdout");
        }
        result.out.append(buf, len);
      } else if (result.err.size() < kMaxStderr) {
        result.err.append(buf, std::min(len, kMaxStderr - result.err.size()));
      }
    }
  }
  // Both pipes are closed; wait for the exit status, still under the deadline.
  while (true) {
    int status = 0;
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
      if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
      break;
    }
    if (w < 0 && errno != EINTR) {
      return make_error(ErrorCode::kIo, std::string("waitpid failed: ") + std::strerror(errno));
    }
    if (options.cancel != nullptr && options.cancel->load()) {
      kill_and_reap(pid);
      return make_error(ErrorCode::kCancelled,
                        "\"" + printable(program, 200) + "\" was stopped by shutdown");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      kill_and_reap(pid);
      return make_error(ErrorCode::kTimeout,
                        "\"" + printable(program, 200) + "\" did not exit within " +
                            format_duration(options.timeout) + " and was killed");
    }
    ::usleep(2000);
  }
  return result;
}

}  // namespace tw::influx

#pragma once
// Runs a program with a deadline and captures its output (used for influxctl).
//
// The child gets /dev/null as stdin and runs in its own process group; past the deadline or on
// cancellation the whole group receives SIGKILL and is reaped. stdout is kept up to
// `max_stdout_bytes` (more is an error); stderr is kept up to 64 KiB.
//
// Thread safety: reentrant (posix_spawn, no fork in a threaded process).
// Errors: kIo (cannot start, output too large), kTimeout, kCancelled.

#include <atomic>
#include <cstddef>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/time.h"

namespace tw::influx {

struct ProcessResult {
  int exit_code = 0;  // valid when signal == 0
  int signal = 0;     // the signal that ended the child, if any
  std::string out;
  std::string err;
};

struct ProcessOptions {
  Duration timeout = std::chrono::seconds(30);
  std::size_t max_stdout_bytes = std::size_t{512} << 20;
  const std::atomic<bool>* cancel = nullptr;
};

Result<ProcessResult> run_process(const std::vector<std::string>& argv,
                                  const ProcessOptions& options);

// The first line-ish part of stderr for an error message: printable, at most max_bytes.
std::string summarize_stderr(const std::string& err, std::size_t max_bytes = 300);

}  // namespace tw::influx

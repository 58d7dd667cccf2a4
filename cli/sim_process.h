#pragma once
// tokenwarden-sim as a child process, for `tokenwarden demo`: no production library links the
// simulator (docs/simulator.md, "tokenwarden demo").
//
// find_sim_program() looks for tokenwarden-sim next to the running tokenwarden, then on PATH.
// SimProcess::start() runs it in its own process group (Ctrl-C reaches the demo, which stops the
// children after its daemon), with stdin /dev/null, stderr shared and the signal mask cleared;
// it reads the "tokenwarden-sim listening on URL" line (10 s deadline). The child also gets
// SIGTERM if the demo dies (PR_SET_PDEATHSIG). stop() (and the destructor) sends SIGTERM, waits
// up to 5 s for a clean exit, then SIGKILLs, and always reaps the child.
//
// Thread safety: one thread at a time. Errors: kNotFound (no program), kIo (cannot start, no
// listening line), kNetwork and kProtocol (call()).

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "core/result.h"

namespace tw::cli {

// The tokenwarden-sim to run: the one next to /proc/self/exe, else the first on PATH.
Result<std::string> find_sim_program();

class SimProcess {
 public:
  // program: tokenwarden-sim; flavor: clustered, dedicated or influxdb3; token_file holds
  // `token`, the management token it accepts (and that call(…, true) sends).
  static Result<std::unique_ptr<SimProcess>> start(const std::string& program,
                                                   const std::string& flavor,
                                                   const std::string& token_file,
                                                   std::string token);
  ~SimProcess();
  SimProcess(const SimProcess&) = delete;
  SimProcess& operator=(const SimProcess&) = delete;

  // What a tokenwarden cluster's `url` is (the simulator's listening line).
  const std::string& base_url() const { return base_url_; }

  // One HTTP request to the simulator: `target` is an absolute path on its root (/_sim/… for
  // the control API); `authorized` sends the management token. Returns the body of a 2xx answer.
  Result<std::string> call(const std::string& method, const std::string& target,
                           const std::string& body = {}, bool authorized = false) const;

  void stop();

 private:
  SimProcess(pid_t pid, std::string token) : pid_(pid), token_(std::move(token)) {}
  Status read_listening_line(int fd);
  pid_t pid_ = -1;
  std::string token_;
  std::string base_url_;
  std::string root_url_;  // scheme://host:port
};

}  // namespace tw::cli

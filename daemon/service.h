#pragma once
// The daemon (`tokenwarden run`): per-cluster schedules on an Asio event loop, cycles on a
// bounded worker pool, clean shutdown on SIGTERM/SIGINT.
//
// Each cluster is polled every poll_interval from its planned time (not the finish time) plus a
// random jitter of up to daemon.poll_jitter; a cycle that overruns skips the missed slots. At most
// daemon.max_concurrent_polls cycles run at once. On SIGTERM/SIGINT no new cycle starts; running
// cycles get 5 s to finish, then their network calls are cancelled; `daemon_stopped` is recorded
// and run() returns 0. The event loop itself never blocks on the network or the database.
// With [audit] signing_key_file, a checkpoint that is due (daemon/checkpointer.h) is signed on the
// worker pool, checked after every cycle and every heartbeat; the last one at a clean stop,
// right after `daemon_stopped`, so that it covers it.
// The audit export ([[audit.export]], daemon/exports.h) runs on threads of its own from the start
// of run(); after `daemon_stopped` and the final checkpoint are recorded the exporters get up to 5
// s to deliver the rest.
//
// The HTTP endpoint ([http] listen: /metrics, /healthz, /readyz) is bound before READY=1 is sent
// to systemd; a heartbeat timer on the event loop feeds the systemd watchdog and /healthz.
// SIGHUP (or reload()) re-reads the configuration file, validates all of it (and the TLS and
// token files a start would read) and applies it atomically — clusters added, removed or changed,
// policies, exemptions, safety, alerting, log level and format — or keeps the running
// configuration, says why in one log line, sets the reload metric to 0 and records
// `config_rejected`. A file without [[clusters]] (empty, truncated) is rejected like any other.
// daemon.database, daemon.max_concurrent_polls, [http] and the export settings of [audit] take
// effect only at start; SIGHUP reopens the export's file sinks in any case (logrotate). Cycles in
// flight finish with the configuration they started with; polling never pauses for a reload.
//
// Thread safety: run() on one thread; request_stop() from any thread.
// Errors: create() fails with one sentence if the database cannot be opened or a source cannot
// be built; run() returns the process exit code. `daemon_started` (and `config_applied`) are
// recorded only once the endpoint is bound, so a start that fails writes no audit event.

#include <functional>
#include <memory>
#include <string>

#include "core/log.h"
#include "core/time.h"
#include "daemon/config.h"
#include "daemon/poller.h"

namespace tw::daemon {

struct ServiceDeps {
  const Clock* clock = nullptr;
  std::shared_ptr<LogSink> sink;
  std::string credentials_directory;              // $CREDENTIALS_DIRECTORY
  bool handle_signals = true;                     // false when embedded (demo, tests)
  bool notify_systemd = true;                     // sd_notify (a no-op without $NOTIFY_SOCKET)
  std::function<void(LogFormat)> set_log_format;  // applies [daemon] log_format on reload
};

class Service {
 public:
  static Result<std::unique_ptr<Service>> create(Config config, ServiceDeps deps);
  ~Service();

  // Blocks until stopped; returns the exit code (0 after a clean stop).
  int run();
  // Asks run() to stop as on SIGTERM. Thread-safe, idempotent.
  void request_stop();
  // Re-reads and applies the configuration file as on SIGHUP. Thread-safe.
  void request_reload();
  // Called on the event loop after every cycle (tests, demo).
  void on_cycle(std::function<void(const CycleReport&)> callback);
  // The HTTP endpoint's base URL once run() has bound it ("" when disabled). Thread-safe.
  std::string endpoint_url() const;

 private:
  struct Impl;
  explicit Service(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tw::daemon

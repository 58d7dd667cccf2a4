#pragma once
// The daemon's audit export ([[audit.export]], docs/audit-export.md): one exporter thread per
// configured sink (export/exporter.h), each with its own connection to the audit database,
// woken after every commit and every second, reopened on SIGHUP, drained for a bounded time at
// shutdown. Also the fail-closed gate of `[audit] require_export`.
//
// Thread safety: notify(), reopen() and blocking_reason() from any thread; start() and
// drain_and_stop() from the thread that owns the object.
// Errors: create() fails with one sentence (a sink that cannot be built, the database).

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/log.h"
#include "core/time.h"
#include "daemon/config.h"
#include "export/exporter.h"
#include "export/sink.h"
#include "metrics/metrics.h"

namespace tw::daemon {

// Why one exporter's last report must hold enforcement back (require_export), else nullopt:
// it has not reported yet; its last successful read of the database is older than
// min(max_lag, 30 s) plus its current backoff (a thread stuck in a delivery, a database that
// keeps failing); the last step could not tell the oldest undelivered event (a database error,
// a destination it refuses to append to); or that event is older than max_lag.
std::optional<std::string> export_gate_reason(const exporting::ExportStatus& status, Timestamp now,
                                              Duration max_lag);

// The sink a [[audit.export]] entry describes.
std::unique_ptr<exporting::Sink> make_sink(const ExportSinkConfig& config);

class Exports {
 public:
  static Result<std::unique_ptr<Exports>> create(const Config& config, const Clock& clock,
                                                 const std::shared_ptr<LogSink>& sink,
                                                 metrics::Metrics* metrics);
  ~Exports();  // stops the threads without draining

  void start();
  void notify();
  void reopen();
  // Lets every exporter deliver what is left for at most `grace`, then stops them.
  void drain_and_stop(Duration grace);
  bool empty() const { return exporters_.empty(); }
  // Brings tokenwarden_export_lag_seconds up to `now` (at a scrape).
  void refresh_metrics(Timestamp now) const;

  // With require_export: why enforcement actions must wait now (export_gate_reason of the
  // first sink that holds it back), else nullopt.
  std::optional<std::string> blocking_reason(Timestamp now) const;

 private:
  Exports(const Clock& clock, Duration max_lag) : clock_(clock), max_lag_(max_lag) {}
  const Clock& clock_;
  Duration max_lag_;
  std::vector<std::unique_ptr<exporting::Exporter>> exporters_;  // until start()
  std::vector<std::unique_ptr<exporting::ExportThread>> threads_;
  std::vector<const exporting::Exporter*> view_;  // every exporter, for the gate
};

}  // namespace tw::daemon

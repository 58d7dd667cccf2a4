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

  // With require_export: why enforcement actions must wait now — a sink whose oldest
  // undelivered event is older than export_max_lag, or that has not reported yet — else nullopt.
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

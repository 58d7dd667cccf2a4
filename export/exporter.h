#pragma once
// The delivery loop of one export sink ([[audit.export]], docs/audit-export.md): reads the audit
// events after the sink's durable cursor, in seq order and in batches, hands them to the sink,
// and then advances the cursor (storage/export_log.h). Every event is delivered at least once
// and none is skipped: the cursor moves only past a batch the sink accepted, and a failed batch
// is sent again, whole. The stored cursor holds the sink's settled seq (Sink::settled_seq): a
// sink that keeps sent events for resending (syslog) has them sent again after a restart. The
// delivered position (delivered_seq(), the lag, the metrics, the require_export gate) is what the
// sink accepted: for syslog, in the kernel's hands, so an idle connection does not look lagging
// because the sink keeps its last 6 MiB. A sink that can
// read back what it holds (the file sink) is resumed right after its resume point, once the
// audit database confirms that seq and hash; a destination ahead of the database or holding
// other events fails the step (counted, retried) instead of being appended to.
//
// Exporter::step() is one cycle (deliver at most one batch), called directly by tests;
// ExportThread runs it on a thread of its own: again at once while there is a backlog, after
// notify() (a commit) or within a second (writes by another process), and after a failure with
// exponential backoff (1 s doubling to 30 s). Its database connection is its own, so exporting
// never blocks polling or enforcement (WAL: readers do not block the writer).
//
// Thread safety: step() on one thread; the status getters, reopen(), notify() from any thread.
// Errors: a failure is counted (metrics), logged once per outage with one sentence, retried.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "core/log.h"
#include "core/time.h"
#include "export/sink.h"
#include "metrics/metrics.h"

namespace tw::storage {
class Db;
}

namespace tw::exporting {

struct ExporterOptions {
  std::string name;    // the cursor's name and the metrics' sink label
  std::string target;  // where the sink delivers, stored with the cursor (no secrets)
  std::int64_t batch = 2000;
};

enum class StepResult { kIdle, kDelivered, kFailed };

// What an exporter last reported, for the require_export gate (daemon/exports.h).
struct ExportStatus {
  std::string name;
  bool reported = false;      // a step has read the database at least once
  bool oldest_known = false;  // false after a failure to read the database or to start
  std::optional<Timestamp> oldest_undelivered;  // when known; nullopt: caught up
  std::optional<Timestamp> last_ok;             // the last step that read the database successfully
  int failures = 0;
};

// The wait after `failures` consecutive failures: 1 s, 2 s, 4 s, … at most 30 s.
Duration export_backoff(int failures);

class Exporter {
 public:
  // `db` is a connection of the exporter's own to the audit database; `metrics` may be null.
  Exporter(ExporterOptions options, std::unique_ptr<Sink> sink, std::unique_ptr<storage::Db> db,
           const Clock& clock, Logger log, metrics::Metrics* metrics);
  ~Exporter();

  StepResult step();
  // The destination is reopened before the next delivery (SIGHUP, logrotate).
  void reopen();

  const std::string& name() const { return options_.name; }
  std::int64_t delivered_seq() const { return delivered_pub_.load(); }
  // recorded_at of the oldest event not yet delivered, as of the last step (none: caught up).
  std::optional<Timestamp> oldest_undelivered() const;
  int consecutive_failures() const { return failures_.load(); }
  // Whether a step has looked at the database yet (before that, the lag is unknown).
  bool reported() const { return reported_.load(); }
  ExportStatus status() const;
  // Sets tokenwarden_export_lag_seconds from the last report as of `now` (called at a scrape,
  // so the gauge keeps growing while a delivery takes long). Any thread.
  void refresh_lag_metric(Timestamp now) const;

 private:
  bool start();
  bool persist();
  void publish(std::optional<Timestamp> oldest, std::int64_t head);
  bool resync();
  bool settle();
  void failed(const std::string& why, bool unknown);
  void recovered();

  ExporterOptions options_;
  std::unique_ptr<Sink> sink_;
  std::unique_ptr<storage::Db> db_;
  const Clock& clock_;
  Logger log_;
  metrics::Metrics* metrics_;
  bool started_ = false;
  bool resync_ = false;        // ask the sink where it stands again (after a failure, a reopen)
  bool cursor_dirty_ = false;  // delivered_ is ahead of the stored cursor
  bool cursor_warned_ = false;
  std::int64_t sent_ = 0;         // the last seq handed to the sink (where the next batch starts)
  std::int64_t delivered_ = 0;    // the last settled seq: what the cursor stores (<= sent_)
  std::int64_t stored_sent_ = 0;  // sent_ as last stored with the cursor (for other processes)
  std::atomic<bool> reopen_{false};
  std::atomic<std::int64_t> delivered_pub_{0};
  std::atomic<std::int64_t> oldest_ms_{-1};  // -1: caught up, kUnknown: not known
  std::atomic<std::int64_t> last_ok_ms_{0};
  std::atomic<int> failures_{0};
  std::atomic<bool> reported_{false};
};

class ExportThread {
 public:
  explicit ExportThread(std::unique_ptr<Exporter> exporter);
  ~ExportThread();  // stops at once (no drain)
  ExportThread(const ExportThread&) = delete;
  ExportThread& operator=(const ExportThread&) = delete;

  void notify();
  void reopen();
  // Asks the thread to stop once caught up, or after `grace`; returns when it has stopped.
  void drain_and_stop(Duration grace);
  const Exporter& exporter() const { return *exporter_; }

 private:
  void loop();
  std::unique_ptr<Exporter> exporter_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool notified_ = false;
  bool draining_ = false;
  bool stop_ = false;
  std::chrono::steady_clock::time_point drain_deadline_;
  std::thread thread_;
};

}  // namespace tw::exporting

#pragma once
// The delivery loop of one export sink ([[audit.export]], docs/audit-export.md): reads the audit
// events after the sink's durable cursor, in seq order and in batches, hands them to the sink,
// and then advances the cursor (storage/export_log.h). Every event is delivered at least once
// and none is skipped: the cursor moves only past a batch the sink accepted, and a failed batch
// is sent again, whole. The exporter resumes after max(cursor, sink.resume_point()), so a sink
// that can read back what it holds (the file sink) gets each event exactly once.
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

 private:
  bool start();
  bool persist();
  void publish(std::optional<Timestamp> oldest, std::int64_t head);
  void failed(const std::string& why);
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
  std::int64_t delivered_ = 0;
  std::atomic<bool> reopen_{false};
  std::atomic<std::int64_t> delivered_pub_{0};
  std::atomic<std::int64_t> oldest_ms_{-1};  // -1: caught up
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

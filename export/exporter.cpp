#include "export/exporter.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <vector>

#include "storage/export_log.h"
#include "storage/sqlite.h"

namespace tw::exporting {

Duration export_backoff(int failures) {
  Duration d = std::chrono::seconds(1);
  for (int i = 1; i < failures && d < std::chrono::seconds(30); ++i) d *= 2;
  return std::min<Duration>(d, std::chrono::seconds(30));
}

Exporter::Exporter(ExporterOptions options, std::unique_ptr<Sink> sink,
                   std::unique_ptr<storage::Db> db, const Clock& clock, Logger log,
                   metrics::Metrics* metrics)
    : options_(std::move(options)),
      sink_(std::move(sink)),
      db_(std::move(db)),
      clock_(clock),
      log_(std::move(log)),
      metrics_(metrics) {}

Exporter::~Exporter() = default;

void Exporter::reopen() {
  sink_->reopen();
  reopen_.store(true);
}

namespace {
constexpr std::int64_t kUnknown = -2;  // oldest_ms_: the last step could not read the database
}  // namespace

std::optional<Timestamp> Exporter::oldest_undelivered() const {
  const auto ms = oldest_ms_.load();
  if (ms < 0) return std::nullopt;
  return Timestamp(Duration(ms));
}

ExportStatus Exporter::status() const {
  ExportStatus st;
  st.name = options_.name;
  st.reported = reported_.load();
  st.oldest_known = oldest_ms_.load() != kUnknown;
  st.oldest_undelivered = oldest_undelivered();
  if (st.reported) st.last_ok = Timestamp(Duration(last_ok_ms_.load()));
  st.failures = failures_.load();
  return st;
}

void Exporter::refresh_lag_metric(Timestamp now) const {
  if (metrics_ == nullptr || !reported_.load()) return;
  const auto oldest = oldest_undelivered();
  double lag_s = 0;
  if (oldest) lag_s = std::max(0.0, std::chrono::duration<double>(now - *oldest).count());
  metrics_->export_lag_seconds(options_.name, lag_s);
}

// The stored cursor, then where the sink itself stands (resync).
bool Exporter::start() {
  if (!started_) {
    auto cursor = storage::read_export_cursor(*db_, options_.name);
    if (!cursor.ok()) {
      failed(cursor.error().message, true);
      return false;
    }
    delivered_ = *cursor ? (*cursor)->delivered_seq : 0;
    stored_sent_ = *cursor ? (*cursor)->sent_seq : 0;
    sent_ = delivered_;
    if (*cursor && (*cursor)->target != options_.target) {
      log_.warn("the export cursor was stored for another target; resuming from it",
                {{"sink", options_.name},
                 {"cursor_target", (*cursor)->target},
                 {"target", options_.target},
                 {"delivered_seq", delivered_}});
    }
    started_ = true;
    resync_ = true;
  }
  if (resync_ && !resync()) return false;
  if (cursor_dirty_) persist();
  return true;
}

// Resumes right after the sink's own resume point if the database holds that seq and hash.
bool Exporter::resync() {
  auto at = sink_->resume_point();
  if (!at.ok()) {
    failed(at.error().message, true);
    return false;
  }
  if (*at) {
    const auto seq = (*at)->seq;
    auto hash = storage::read_event_hash(*db_, seq);
    if (!hash.ok()) {
      failed(hash.error().message, true);
      return false;
    }
    if (!*hash || **hash != (*at)->hash) {
      failed("export sink " + options_.name + ": " + sink_->target() + " ends at seq " +
                 std::to_string(seq) +
                 ", which the audit database does not hold (or holds with another hash): "
                 "refusing to append; move it away",
             true);
      return false;
    }
    if (seq != sent_) {
      sent_ = seq;
      delivered_ = seq;
      cursor_dirty_ = true;
    }
  }
  resync_ = false;
  return true;
}

bool Exporter::persist() {
  const Timestamp now = clock_.now();
  storage::ExportCursor c{options_.name, options_.target, delivered_, now, sent_, now};
  Status s = storage::write_export_cursor(*db_, c);
  cursor_dirty_ = !s.ok();
  if (s.ok()) stored_sent_ = sent_;
  if (!s.ok() && !cursor_warned_) {
    log_.warn("cannot store the export cursor; retrying (events are not sent twice meanwhile)",
              {{"sink", options_.name}, {"error", s.error().message}});
  }
  cursor_warned_ = !s.ok();
  return s.ok();
}

void Exporter::publish(std::optional<Timestamp> oldest, std::int64_t head) {
  delivered_pub_.store(sent_);
  oldest_ms_.store(oldest ? oldest->time_since_epoch().count() : -1);
  last_ok_ms_.store(clock_.now().time_since_epoch().count());
  reported_.store(true);
  if (metrics_ == nullptr) return;
  double lag_s = 0;
  if (oldest) lag_s = std::max(0.0, std::chrono::duration<double>(clock_.now() - *oldest).count());
  metrics_->export_status(options_.name, sent_, std::max<std::int64_t>(0, head - sent_), lag_s,
                          failures_.load() == 0);
}

// `unknown`: the oldest undelivered event is not known any more (the gate closes).
void Exporter::failed(const std::string& why, bool unknown) {
  if (unknown) oldest_ms_.store(kUnknown);
  if (failures_.fetch_add(1) == 0) {
    log_.warn("export failed; retrying with backoff until it recovers: " + why,
              {{"sink", options_.name}, {"target", options_.target}});
  }
  if (metrics_ != nullptr) metrics_->export_failed(options_.name);
}

void Exporter::recovered() {
  const int n = failures_.exchange(0);
  if (n > 0) {
    log_.info("export recovered", {{"sink", options_.name}, {"failed_attempts", n}});
  }
}

StepResult Exporter::step() {
  if (reopen_.exchange(false)) resync_ = true;
  if (!start()) return StepResult::kFailed;
  auto head = storage::read_chain_head(*db_);
  auto rows = storage::read_rows_after(*db_, sent_, options_.batch);
  if (!head.ok() || !rows.ok()) {
    failed(!head.ok() ? head.error().message : rows.error().message, true);
    return StepResult::kFailed;
  }
  if (rows->empty()) {
    if (!settle()) return StepResult::kFailed;
    return StepResult::kIdle;
  }
  Status s = sink_->deliver(*rows);
  if (!s.ok()) {
    failed(s.error().message, false);
    resync_ = true;
    auto oldest = storage::first_recorded_after(*db_, sent_);
    if (oldest.ok()) {
      publish(*oldest, head->seq);
    } else {
      oldest_ms_.store(kUnknown);
    }
    return StepResult::kFailed;
  }
  sent_ = rows->back().seq;
  recovered();
  return settle() ? StepResult::kDelivered : StepResult::kFailed;
}

// Advances the cursor to what the sink settled, then publishes the position delivered (sent).
bool Exporter::settle() {
  const std::int64_t settled = std::min(sink_->settled_seq(sent_), sent_);
  if (settled > delivered_ || sent_ > stored_sent_) {
    delivered_ = std::max(delivered_, settled);
    persist();
  }
  auto head = storage::read_chain_head(*db_);
  auto next = storage::first_recorded_after(*db_, sent_);
  if (!head.ok() || !next.ok()) {
    failed(!head.ok() ? head.error().message : next.error().message, true);
    return false;
  }
  publish(*next, std::max(head->seq, sent_));
  return true;
}

// ---- the thread -------------------------------------------------------------------------------

ExportThread::ExportThread(std::unique_ptr<Exporter> exporter)
    : exporter_(std::move(exporter)), thread_([this] { loop(); }) {}

ExportThread::~ExportThread() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ExportThread::notify() {
  {
    std::lock_guard lock(mu_);
    notified_ = true;
  }
  cv_.notify_all();
}

void ExportThread::reopen() {
  exporter_->reopen();
  notify();
}

void ExportThread::drain_and_stop(Duration grace) {
  {
    std::lock_guard lock(mu_);
    draining_ = true;
    drain_deadline_ = std::chrono::steady_clock::now() + grace;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ExportThread::loop() {
  // OpenSSL writes to the socket with write(): a collector that reset a TLS connection must give
  // this thread EPIPE, not a SIGPIPE that would end the daemon.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  while (true) {
    const StepResult r = exporter_->step();
    std::unique_lock lock(mu_);
    if (stop_) return;
    const auto now = std::chrono::steady_clock::now();
    if (draining_ && (r == StepResult::kIdle || now >= drain_deadline_)) return;
    if (r == StepResult::kDelivered) continue;
    if (r == StepResult::kIdle) {
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_ || draining_ || notified_; });
    } else {
      // Backoff: a commit does not cut it short, a stop or the end of a drain does.
      const auto until = now + export_backoff(exporter_->consecutive_failures());
      while (!stop_) {
        const auto target = draining_ ? std::min(until, drain_deadline_) : until;
        if (std::chrono::steady_clock::now() >= target) break;
        cv_.wait_until(lock, target);
      }
    }
    notified_ = false;
    if (stop_) return;
  }
}

}  // namespace tw::exporting

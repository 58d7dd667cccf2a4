#pragma once
// Delivers alerts without ever blocking polling: Alertmanager API v2 (`POST /api/v2/alerts`)
// and a generic JSON webhook, from one worker thread with a bounded queue.
//
// Alertmanager: every active alert is posted when it appears and re-posted every `repost`
// interval with endsAt = now + 3 intervals, so alerts end by themselves if tokenwarden stops;
// an alert that leaves the active set is posted once more with endsAt = now (resolved).
// Webhook: one POST per violation state change (the audit event and the violation).
// Failed deliveries are retried (`attempts`, with back-off); when the queue is full the oldest
// webhook message is dropped. Every delivery, failure and drop is counted and logged.
// Reposts follow the injected Clock: a test advances a ManualClock and calls wake().
//
// Thread safety: set_active/state_changed from any thread; counters are atomic.
// Errors: never thrown; failures are counted and logged with the receiver and one sentence.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/log.h"
#include "core/time.h"
#include "daemon/alert_sink.h"

namespace tw::daemon {

struct AlertingOptions {
  std::string alertmanager_url;  // base URL, e.g. http://127.0.0.1:9093
  std::string webhook_url;
  Duration repost = std::chrono::minutes(1);
  Duration timeout = std::chrono::seconds(5);
  std::size_t queue_capacity = 1000;  // webhook messages waiting
  int attempts = 3;
  Duration retry_backoff = std::chrono::milliseconds(500);  // before the 2nd attempt; doubles
};

struct AlertCounters {
  std::atomic<std::int64_t> alertmanager_ok{0};
  std::atomic<std::int64_t> alertmanager_failed{0};
  std::atomic<std::int64_t> webhook_ok{0};
  std::atomic<std::int64_t> webhook_failed{0};
  std::atomic<std::int64_t> dropped{0};
};

class AlertDispatcher final : public AlertSink {
 public:
  AlertDispatcher(AlertingOptions options, const Clock& clock, Logger log);
  ~AlertDispatcher() override;  // delivers what is queued for up to 2 s, then stops

  void set_active(const std::string& cluster, std::vector<Alert> alerts) override;
  void state_changed(const StateChange& change) override;
  bool wanted() const override;
  // [ha]: a standby keeps its set of active alerts current but sends nothing — no Alertmanager
  // post, no webhook message (dropped, not queued) — so receivers hear one voice, the leader's.
  // Unmuted (it leads), the active set is posted at once.
  void set_muted(bool muted);
  bool muted() const;
  // New receivers (a reload); queued messages go to the new ones.
  void reconfigure(const std::string& alertmanager_url, const std::string& webhook_url);

  const AlertCounters& counters() const { return counters_; }
  // Waits until nothing is queued or being delivered (tests).
  bool idle(Duration timeout);
  // Makes the worker look at the clock now (a repost may be due) instead of when its own timer
  // says so: tests that advance a ManualClock call it, then idle(). The real clock needs no call.
  void wake();
  void stop();

  // The JSON body of POST /api/v2/alerts for these alerts.
  static std::string alertmanager_body(const std::vector<Alert>& alerts, Timestamp ends_at);

 private:
  void run();
  bool quiet() const;  // nothing queued, due or being delivered; mu_ held
  bool post(const std::string& url, const std::string& body, const char* receiver);

  AlertingOptions options_;
  const Clock& clock_;
  Logger log_;
  AlertCounters counters_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool busy_ = false;
  bool wake_ = false;                                 // wake(): look at the clock
  std::map<std::string, std::vector<Alert>> active_;  // by cluster
  std::vector<Alert> resolved_;                       // to post once with endsAt = now
  bool post_active_now_ = false;
  bool muted_ = false;
  std::deque<std::string> webhook_queue_;
  std::thread worker_;
};

}  // namespace tw::daemon

#pragma once
// [ha] in the daemon (docs/high-availability.md): the election's thread, the audit events of
// leadership, the fence the enforcers act through, and the mirror of other instances' intents.
//
// A thread ticks the election (ha/election.h) when it asks to be (every lease_ttl/3 while idle,
// sooner after a failure) and then:
// - records leadership_acquired {term, instance} / leadership_lost {term, reason, instance} in
//   the audit log, sets tokenwarden_ha_* and mutes the alert dispatcher while standing by;
// - at an acquisition, reads every intent and keeps those earlier terms left at "intent" (an
//   action begun and never finished) for reconcile(): no action of a cluster runs before its
//   open intents were read back against the cluster and their finding written;
// - when the store's revision moved, mirrors the intents other instances wrote since the last
//   one it recorded as `action_observed` events (the cursor is the highest revision recorded, so
//   a restart neither repeats nor skips one).
// begin() writes an action's intent fenced on the leader key and only when the lease outlasts
// the action's deadline; finish() writes its outcome the same way. A fenced write that fails
// because the key moved steps this instance down at once.
//
// Thread safety: start()/stop() from the service; the ActionFence calls from poll threads.
// Errors: never thrown; failed calls to etcd are logged once per outage (with the sentence) and
// counted; a database failure to record an event is logged and retried at the next tick.

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/log.h"
#include "daemon/action_fence.h"
#include "daemon/config.h"
#include "ha/election.h"
#include "ha/etcd.h"
#include "ha/intent.h"
#include "metrics/metrics.h"
#include "storage/audit_store.h"

namespace tw::daemon {

class AlertDispatcher;

struct HaDeps {
  const Clock* clock = nullptr;
  std::shared_ptr<LogSink> sink;
  metrics::Metrics* metrics = nullptr;
  AlertDispatcher* alerts = nullptr;  // muted while standing by; may be null
  std::string credentials_directory;  // where a relative password_file is looked up first
  // Tests: another coordination service and steady clock (default: etcd, the real clock).
  std::unique_ptr<ha::Coordination> backend;
  const ha::SteadyClock* steady = nullptr;
};

class HaCoordinator final : public ActionFence, public ha::CallObserver {
 public:
  static Result<std::unique_ptr<HaCoordinator>> create(const HaSection& config,
                                                       storage::AuditStore& store, HaDeps deps);
  ~HaCoordinator() override;

  void start();
  // Resigns (the lease is revoked so a standby takes over at once), records leadership_lost
  // with reason "shutdown" if it led, and joins the thread. Idempotent.
  void stop();
  // Runs one step on the caller's thread (tests; start() not called).
  void step();

  bool leading() const override;
  std::int64_t term() const override;
  bool reconcile(const std::string& cluster, influx::ClusterClient& client,
                 const influx::CallContext& ctx) override;
  Result<ActionTicket> begin(const std::string& cluster, const storage::ActionRow& a,
                             Duration deadline) override;
  bool may_send(const ActionTicket& ticket, Duration deadline) override;
  bool holds(const ActionTicket& ticket) const override;
  // Called on the election's thread when this instance starts leading (after the open intents
  // were read): the service polls every cluster at once instead of at its next slot.
  void on_leading(std::function<void()> callback) { on_leading_ = std::move(callback); }
  void finish(const ActionTicket& ticket, const std::string& cluster, const storage::ActionRow& a,
              std::string_view state, std::string_view outcome, std::string_view error) override;

  const std::string& instance() const { return config_.instance; }

 private:
  HaCoordinator(const HaSection& config, storage::AuditStore& store, HaDeps deps);
  void run();
  void after_tick(const ha::TickResult& r);
  void record_leadership();
  void load_open_intents(std::int64_t term);
  bool mirror();
  void publish();
  void etcd_call(const char* op, bool ok) override;  // ha::CallObserver: the request metrics
  ha::Intent intent_of(const std::string& cluster, const storage::ActionRow& a) const;
  Status append(EventKind kind, const std::string& cluster, const std::string& token_id,
                std::string detail);

  HaSection config_;
  storage::AuditStore& store_;
  HaDeps deps_;
  Logger log_;
  ha::RealSteadyClock real_steady_;
  std::unique_ptr<ha::Coordination> backend_;
  std::unique_ptr<ha::Election> election_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool wake_ = false;
  std::thread thread_;
  bool outage_logged_ = false;
  std::int64_t mirrored_ = 0;    // the highest intent revision recorded as action_observed
  bool mirror_pending_ = true;   // catch up at start and after a failed range
  std::int64_t ready_term_ = 0;  // open intents of this term's predecessors are loaded
  std::function<void()> on_leading_;
  // Intents earlier terms left open, by cluster: key → intent.
  std::map<std::string, std::vector<std::pair<std::string, ha::Intent>>> open_;
};

}  // namespace tw::daemon

#pragma once
// One poll cycle of one cluster, separate from any timer (STYLE §12): fetch the token list,
// record the diff in the audit store and the tokens' time anomalies (once each), evaluate, report.
// The scheduler and the `poll` command call run_once(); tests call it directly with a fake source
// and a manual clock.
//
// Thread safety: one run_once() at a time per poller; different pollers may run concurrently.
// Errors: never thrown; a failed fetch or database write is reported in CycleReport (and
// logged with cluster=…), and nothing partial is recorded.

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/log.h"
#include "core/time.h"
#include "daemon/anomalies.h"
#include "daemon/config.h"
#include "daemon/credential_watch.h"
#include "daemon/enforcer.h"
#include "daemon/owners.h"
#include "influx/token_source.h"
#include "metrics/metrics.h"
#include "storage/recorder.h"

namespace tw::daemon {

struct CycleReport {
  std::string cluster;
  Timestamp started_at;
  Timestamp finished_at;
  Duration fetch_time{0};
  Duration total_time{0};
  storage::PollSummary summary;
  bool recorded = false;          // false: the database write failed (error says why)
  std::string error;              // one sentence: fetch failure, suspect reason or database failure
  EnforcementReport enforcement;  // what policy evaluation and enforcement did this cycle
  // The longest wait the cluster asked for this cycle (HTTP 429/503 Retry-After, on the list, a
  // direct read or an action): the scheduler starts the next cycle no sooner.
  std::optional<Duration> retry_after;
};

struct RunOptions {
  const std::atomic<bool>* cancel = nullptr;
  bool dry_run = false;
  int max_vanished_percent = 50;
  bool full_compare = false;  // never use the unchanged-list shortcut (benchmarks)
  // After a cycle that decoded a list, hand freed heap pages back to the kernel (malloc_trim);
  // benchmarks turn it off to measure its effect (tw-bench-poll --no-trim).
  bool trim_heap = true;
  // A process without the inventory in memory (a one-shot `poll`): an unchanged list may be
  // recorded from the checkpoint the last poll saved, without reading the inventory back or
  // evaluating the policies again (storage/recorder.h says when it may not). The daemon does not:
  // its inventory gauges need the inventory.
  bool use_checkpoint = false;
};

class ClusterPoller {
 public:
  // `enforcer` may be null (no policy evaluation).
  ClusterPoller(ClusterConfig cluster, std::unique_ptr<influx::ClusterClient> client,
                storage::InventoryRecorder& recorder, const Clock& clock, Logger log,
                std::unique_ptr<Enforcer> enforcer = nullptr);

  CycleReport run_once(const RunOptions& options);
  const ClusterConfig& cluster() const { return cluster_; }
  influx::ClusterClient& client() { return *client_; }
  Enforcer* enforcer() { return enforcer_.get(); }
  // Metrics to keep current (polls, inventory gauges); may be null. Set before the first cycle.
  void set_metrics(metrics::Metrics* m);
  // The [[owners]] rules (null: none); applied at the next poll.
  void set_owner_rules(std::shared_ptr<const policy::OwnerRules> rules);
  const OwnerTracker& owners() const { return owners_; }

 private:
  // One team's active tokens (inventory gauges).
  struct TeamTokens {
    std::int64_t never_expiring = 0;
    std::vector<Timestamp> expiries;  // sorted once counted
  };
  // The steps of run_once (poller.cpp).
  struct Cycle;
  void offer_digest(Cycle& c);
  std::optional<storage::PollInput> fetch(Cycle& c);
  void abandon(Cycle& c, std::string why);
  Result<storage::PollSummary> record(Cycle& c);
  Status on_recorded(Cycle& c, storage::WriteTxn& txn, const storage::Inventory& inventory,
                     storage::PollSummary& s);
  void after_record(Cycle& c, bool committed);
  void publish_poll(const Cycle& c, const Result<storage::PollSummary>& summary);
  void log_outcome(CycleReport& rep);
  void log_recorded(const storage::PollSummary& s, Duration total_time);

  // Counts the inventory by status and the active tokens by team (and ranks the teams for their
  // metric labels).
  void count_inventory(const storage::Inventory& inventory);
  void rank_teams(std::unordered_map<std::string_view, TeamTokens>& by_team);
  // Reads each id directly into in.confirmations (ids already read are skipped); false if
  // shutdown cut the reads short. Once the cluster asks to wait (`wait` set), the ids left are
  // not read but recorded as failed reads.
  bool confirm_vanished(const std::vector<std::string>& ids, const influx::CallContext& ctx,
                        storage::PollInput& in, std::optional<Duration>& wait);
  void publish_inventory(Timestamp now);

  ClusterConfig cluster_;
  std::unique_ptr<influx::ClusterClient> client_;
  storage::InventoryRecorder& recorder_;
  const Clock& clock_;
  Logger log_;
  OwnerTracker owners_;  // before enforcer_, which reads it
  std::unique_ptr<Enforcer> enforcer_;
  AnomalyRecorder anomalies_;   // token_anomaly events, once per token and reason
  CredentialWatch credential_;  // the management token's expiry, where the source tells it
  metrics::Metrics* metrics_ = nullptr;
  // Inventory gauges, recomputed when a poll changed the inventory or the tokens' owners.
  bool stats_ready_ = false;
  bool last_success_known_ = false;  // the last-success gauge holds the database's value
  metrics::InventoryCounts counts_;
  // Active tokens by team label (metrics::Metrics::team_label: at most kMaxTeamLabels + 2).
  std::map<std::string, TeamTokens> team_tokens_;
};

}  // namespace tw::daemon

#pragma once
// The parts of a running tokenwarden built from one configuration — audit store, recorder,
// metrics, compiled policies, alert dispatcher and one poller (with its enforcer) per cluster —
// shared by `run`, `poll` and `demo` so each composes them the same way.
//
// Member order is destruction order in reverse: pollers (whose enforcers hold the alert sink and
// the metrics) go first, the store last.
//
// Thread safety: build once; the parts document their own.
// Errors: build_runtime fails with one sentence (database, a source that cannot be built,
// policies that do not compile).

#include <memory>
#include <string>
#include <vector>

#include "core/log.h"
#include "daemon/alerts.h"
#include "daemon/checkpointer.h"
#include "daemon/config.h"
#include "daemon/poller.h"
#include "metrics/metrics.h"
#include "storage/audit_store.h"
#include "storage/recorder.h"

namespace tw::daemon {

struct Runtime {
  std::unique_ptr<storage::AuditStore> store;
  std::unique_ptr<storage::InventoryRecorder> recorder;
  std::unique_ptr<metrics::Metrics> metrics;
  // Always built; signs only with [audit] signing_key_file (the key is loaded by build_runtime).
  std::unique_ptr<Checkpointer> checkpointer;
  std::shared_ptr<const policy::PolicySet> policies;
  std::shared_ptr<const policy::OwnerRules> owners;  // null: no [[owners]] rules
  std::unique_ptr<AlertDispatcher> alerts;           // null when no receiver is configured
  std::vector<std::unique_ptr<ClusterPoller>> pollers;
};

struct RuntimeOptions {
  std::string credentials_directory;
  std::string only_cluster;  // build one cluster's poller only ("" = all)
  bool alerting = true;      // false: no alert delivery (dry runs)
  bool always_dispatch =
      false;  // build the dispatcher even without receivers (a reload may add them)
};

Result<Runtime> build_runtime(const Config& config, const Clock& clock,
                              const std::shared_ptr<LogSink>& sink, const RuntimeOptions& options);

// The [audit] signing_key_file's key (nullopt when not set); one sentence naming the file if it
// cannot be loaded. configure_checkpoints loads it into the checkpointer with its triggers and
// reads the last checkpoint (at start; a reload applies a new key with Checkpointer::configure).
Result<std::optional<ed25519::PrivateKey>> load_configured_key(
    const Config& config, const std::string& credentials_directory);
Status configure_checkpoints(Checkpointer& checkpointer, const Config& config,
                             const std::string& credentials_directory, Timestamp now);

// One cluster's poller and enforcer, wired to the runtime's recorder, policies, alerts and
// metrics (also used when a reload adds or changes a cluster).
Result<std::unique_ptr<ClusterPoller>> make_poller(const Config& config,
                                                   const ClusterConfig& cluster, Runtime& rt,
                                                   const Clock& clock,
                                                   const std::shared_ptr<LogSink>& sink,
                                                   const std::string& credentials_directory);

// Active (not yet expired) exemptions per policy name ("*" for those covering every policy).
std::map<std::string, std::int64_t> active_exemptions(const Config& config, Timestamp now);

}  // namespace tw::daemon

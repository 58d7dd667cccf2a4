#pragma once
// Records the time anomalies of one cluster's tokens (core/time_anomaly.h) once per token and
// reason, as token_anomaly audit events written in the poll's own transaction.
//
// The poller hands over what the source reported (placeholder createdAt values) plus the tokens
// whose createdAt is in the future at the poll time (anomalies_in). The audit log is the memory
// of what was recorded: it is read once, then kept in memory and read again when another writer
// may have recorded polls (the recorder reloaded its inventory).
//
// Thread safety: one poll at a time (owned by its ClusterPoller). Errors: kDatabase from the
// transaction; nothing is remembered unless the transaction commits (after_commit).

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/time_anomaly.h"
#include "storage/audit_store.h"

namespace tw::daemon {

// The anomalies of a fetched list at `poll_time`: `reported` (placeholders, from the decoder),
// then created_in_future for each token whose createdAt is beyond the tolerance.
std::vector<TimeAnomaly> anomalies_in(const std::vector<Token>& tokens,
                                      std::vector<TimeAnomaly> reported, Timestamp poll_time);

class AnomalyRecorder {
 public:
  explicit AnomalyRecorder(std::string cluster) : cluster_(std::move(cluster)) {}

  // Appends a token_anomaly event for every anomaly in `seen` not recorded before. `reload`:
  // read the recorded ones from the log again first.
  Status record(storage::WriteTxn& txn, const std::vector<TimeAnomaly>& seen, Timestamp poll_time,
                bool reload);
  // Once the poll's transaction ended: keep what record() appended, or forget it.
  void after_commit(bool committed);
  // What the last committed record() appended (for logs and metrics).
  const std::vector<TimeAnomaly>& recorded() const { return committed_; }

 private:
  std::string cluster_;
  bool loaded_ = false;
  std::set<std::pair<std::string, std::string>> known_;  // (token id, reason) recorded
  std::vector<TimeAnomaly> pending_;
  std::vector<TimeAnomaly> committed_;
};

}  // namespace tw::daemon

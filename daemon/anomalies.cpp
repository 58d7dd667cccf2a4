#include "daemon/anomalies.h"

#include "storage/anomalies.h"

namespace tw::daemon {

std::vector<TimeAnomaly> anomalies_in(const std::vector<Token>& tokens,
                                      std::vector<TimeAnomaly> reported, Timestamp poll_time) {
  std::vector<TimeAnomaly> out = std::move(reported);
  for (const auto& t : tokens) {
    if (auto a = future_created_at(t, poll_time)) out.push_back(std::move(*a));
  }
  return out;
}

Status AnomalyRecorder::record(storage::WriteTxn& txn, const std::vector<TimeAnomaly>& seen,
                               Timestamp poll_time, bool reload) {
  pending_.clear();
  if (seen.empty()) return ok_status();
  if (!loaded_ || reload) {
    auto rows = storage::recorded_anomalies(txn.db(), cluster_);
    if (!rows.ok()) return rows.take_error();
    known_.clear();
    for (auto& r : *rows) known_.emplace(std::move(r.token_id), std::move(r.reason));
    loaded_ = true;
  }
  for (const auto& a : seen) {
    std::pair<std::string, std::string> key{a.token_id, std::string(a.reason)};
    if (known_.contains(key)) continue;
    auto seq = txn.append(storage::anomaly_event(cluster_, a, poll_time), poll_time);
    if (!seq.ok()) return seq.take_error();
    known_.insert(std::move(key));
    pending_.push_back(a);
  }
  return ok_status();
}

void AnomalyRecorder::after_commit(bool committed) {
  committed_.clear();
  if (committed) {
    committed_ = std::move(pending_);
  } else if (!pending_.empty()) {
    loaded_ = false;  // known_ holds rows that were rolled back: read the log again next time
  }
  pending_.clear();
}

}  // namespace tw::daemon

#pragma once
// Time anomalies in the audit log (core/time_anomaly.h): the token_anomaly event's detail, and
// the anomalies recorded so far, read back from the log. The audit log itself is the memory that
// records each anomaly once per token and reason (no table of its own; the event index serves).
//
// Thread safety: use a Db from one thread. Errors: kDatabase.

#include <optional>
#include <string>
#include <vector>

#include "core/audit_event.h"
#include "core/result.h"
#include "core/time_anomaly.h"

namespace tw::storage {

class Db;

struct RecordedAnomaly {
  std::string cluster;
  std::string token_id;
  std::string reason;
  std::string value;
  std::string recorded_at;
};

// The token_anomaly event of an anomaly seen by the poll that ended at `poll_time`:
// detail {"reason","value","poll_time"}.
NewEvent anomaly_event(const std::string& cluster, const TimeAnomaly& anomaly, Timestamp poll_time);

// token_anomaly events of one cluster ("" = every cluster) recorded up to `until` (nullopt: all),
// in the order they were recorded.
Result<std::vector<RecordedAnomaly>> recorded_anomalies(
    Db& db, const std::string& cluster, std::optional<Timestamp> until = std::nullopt);

}  // namespace tw::storage

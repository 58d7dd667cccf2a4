#include "storage/anomalies.h"

#include "core/json_writer.h"
#include "storage/sqlite.h"

namespace tw::storage {

NewEvent anomaly_event(const std::string& cluster, const TimeAnomaly& anomaly,
                       Timestamp poll_time) {
  std::string detail;
  JsonWriter(detail)
      .begin_object()
      .field("reason", anomaly.reason)
      .field("value", anomaly.value)
      .field("poll_time", poll_time)
      .end_object();
  return NewEvent{EventKind::kTokenAnomaly, cluster, anomaly.token_id, std::move(detail)};
}

Result<std::vector<RecordedAnomaly>> recorded_anomalies(Db& db, const std::string& cluster,
                                                        std::optional<Timestamp> until) {
  // event = 'token_anomaly' uses the (event, recorded_at) index: only these rows are read.
  std::string sql =
      "SELECT cluster, token_id, json_extract(detail, '$.reason'), json_extract(detail, "
      "'$.value'), "
      "recorded_at FROM audit_events WHERE event = 'token_anomaly'";
  if (until) sql += " AND recorded_at <= ?1";
  if (!cluster.empty()) sql += " AND cluster = ?2";
  sql += " ORDER BY seq";
  auto st = db.prepare(sql);
  if (!st.ok()) return st.take_error();
  if (until) st->bind(1, format_timestamp(*until));
  if (!cluster.empty()) st->bind(2, cluster);
  std::vector<RecordedAnomaly> out;
  while (true) {
    auto r = st->step();
    if (!r.ok()) return r.take_error();
    if (!*r) break;
    out.push_back(RecordedAnomaly{st->text(0), st->text(1), st->text(2), st->text(3), st->text(4)});
  }
  return out;
}

}  // namespace tw::storage

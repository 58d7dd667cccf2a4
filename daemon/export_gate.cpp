#include "daemon/export_gate.h"

#include "storage/export_log.h"

namespace tw::daemon {

std::optional<std::string> stored_export_blocking_reason(storage::Db& db, const AuditSection& audit,
                                                         Timestamp now) {
  for (const auto& sink : audit.exports) {
    auto cursor = storage::read_export_cursor(db, sink.name);
    if (!cursor.ok()) {
      return "cannot read the cursor of export sink " + sink.name + ": " + cursor.error().message;
    }
    if (!*cursor) return "export sink " + sink.name + " has not delivered anything yet";
    // What the daemon's sink accepted, as its own gate counts it (daemon/exports.h); a syslog
    // sink's settled cursor stays behind by what it keeps for resending.
    auto oldest = storage::first_recorded_after(db, (*cursor)->sent_seq);
    if (!oldest.ok()) {
      return "cannot read what export sink " + sink.name +
             " has not delivered: " + oldest.error().message;
    }
    if (*oldest && now - **oldest > audit.export_max_lag) {
      return "export sink " + sink.name + " has not delivered events recorded " +
             format_duration(now - **oldest) + " ago (export_max_lag " +
             format_duration(audit.export_max_lag) + ")";
    }
  }
  return std::nullopt;
}

}  // namespace tw::daemon

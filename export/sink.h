#pragma once
// One destination of the exported audit log ([[audit.export]], docs/audit-export.md).
//
// An exporter thread per sink reads the events after the sink's durable cursor and hands them to
// deliver() in seq order; the cursor advances only after deliver() returned ok, so every event is
// delivered at least once and never skipped. A sink never sees the private signing key or any
// management token: it receives audit rows, which hold neither.
//
// Thread safety: a sink is used by its own exporter thread only, except reopen(), which may be
// called from any thread (SIGHUP) and takes effect before the next delivery.
// Errors: deliver() fails with one sentence naming the sink's target (kNetwork, kTimeout, kIo).

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "core/result.h"
#include "storage/queries.h"

namespace tw::exporting {

class Sink {
 public:
  virtual ~Sink() = default;
  // Delivers `rows` (contiguous seqs, ascending) completely, or fails. After a failure the
  // exporter sends the same rows again later, so a destination may receive some twice.
  virtual Status deliver(std::span<const storage::AuditRow> rows) = 0;
  // The last seq the destination itself is known to hold, if the sink can read it back (the
  // file sink reads its file's last line): the exporter resumes after max(cursor, this), so a
  // crash between a delivery and the cursor's update does not send those events twice.
  virtual std::optional<std::int64_t> resume_point() { return std::nullopt; }
  // Closes the destination; the next delivery opens it again (SIGHUP: logrotate).
  virtual void reopen() {}
  // "type:address" as the configuration describes it (logs, the cursor's target; no secrets).
  virtual std::string target() const = 0;
};

}  // namespace tw::exporting

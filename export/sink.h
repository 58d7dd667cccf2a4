#pragma once
// One destination of the exported audit log ([[audit.export]], docs/audit-export.md).
//
// An exporter thread per sink reads the events after the sink's durable cursor and hands them to
// deliver() in seq order; the cursor advances only after deliver() returned ok and only as far
// as settled_seq(), so every event is delivered at least once and never skipped. A sink never sees
// the private signing key or any management token: it receives audit rows, which hold neither.
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
  // Where the destination itself ends, if the sink can read it back (the file sink reads its
  // file's last line); nullopt when it cannot tell or holds nothing. The exporter accepts it
  // only if the audit database holds that seq with that hash, and then resumes right after it
  // (even behind the cursor: the gap is sent again), so a crash between a delivery and the
  // cursor's update sends nothing twice. Fails (one sentence) when the destination cannot be
  // read or does not look like an export.
  struct ResumePoint {
    std::int64_t seq = 0;
    std::string hash;
  };
  virtual Result<std::optional<ResumePoint>> resume_point() { return std::optional<ResumePoint>(); }
  // The last seq that cannot be lost any more, given that everything up to `sent` was delivered:
  // the exporter stores only this in the cursor, so a restart
  // sends again what the sink still keeps for resending (the syslog sink). Default: `sent`.
  virtual std::int64_t settled_seq(std::int64_t sent) { return sent; }
  // Closes the destination; the next delivery opens it again (SIGHUP: logrotate).
  virtual void reopen() {}
  // "type:address" as the configuration describes it (logs, the cursor's target; no secrets).
  virtual std::string target() const = 0;
};

}  // namespace tw::exporting

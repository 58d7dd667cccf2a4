#pragma once
// The `[audit] require_export` gate of a process that runs no exporter itself — a one-shot
// `tokenwarden poll` — read from the sinks' durable cursors in the database (the running
// daemon's exporters write them). It fails closed exactly like the daemon's own gate
// (daemon/exports.h): a configured sink without a cursor, a cursor whose oldest undelivered event
// is older than export_max_lag, or a database that cannot be read all hold actions back. It
// counts what each sink accepted (the cursor's sent_seq), as the daemon's gate does.
//
// Thread safety: uses `db` from the calling thread only. Errors: none; a read error is a reason
// to wait, given in the returned sentence.

#include <optional>
#include <string>

#include "core/time.h"
#include "daemon/config.h"

namespace tw::storage {
class Db;
}

namespace tw::daemon {

std::optional<std::string> stored_export_blocking_reason(storage::Db& db, const AuditSection& audit,
                                                         Timestamp now);

}  // namespace tw::daemon

#pragma once
// Daemon-level audit events (daemon_started, daemon_stopped, config_applied), each in its own
// transaction.
//
// Thread safety: goes through AuditStore::begin(). Errors: kDatabase.

#include <string>

#include "core/audit_event.h"
#include "core/result.h"
#include "daemon/config.h"
#include "storage/audit_store.h"

namespace tw::daemon {

Status append_daemon_event(storage::AuditStore& store, EventKind kind, const std::string& detail,
                           Timestamp now);

// daemon_started, and config_applied when the configuration's hash differs from the last one
// recorded (first start, or the file changed while the daemon was down).
Status record_startup(storage::AuditStore& store, const Config& config, Timestamp now);

// The detail of a config_applied event: {"config_hash","path","clusters","policies","exemptions"}.
std::string config_applied_detail(const Config& config);

}  // namespace tw::daemon

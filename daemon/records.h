#pragma once
// Daemon-level audit events (daemon_started, daemon_stopped, config_applied, config_rejected),
// each in its own transaction.
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

// The detail of a config_rejected event (a reload refused; the running configuration stays):
// {"path", "config_hash" (of the rejected file, null if it could not be read),
//  "running_config_hash", "reason" (one sentence)}.
std::string config_rejected_detail(const std::string& path, const std::string& rejected_hash,
                                   const std::string& running_hash, const std::string& reason);

}  // namespace tw::daemon

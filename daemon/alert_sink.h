#pragma once
// What the enforcer tells the outside world (SPEC §2, issue 3 "Alerting"): the set of alerts
// that are active for a cluster, and each violation state change.
//
// Implementations must not block: the real one (AlertDispatcher) queues and delivers from its
// own thread. Tests use a fake that records calls.
//
// Thread safety: implementations are called from poll threads concurrently.

#include <map>
#include <string>
#include <vector>

#include "core/time.h"

namespace tw::daemon {

// A violation's alert also carries the token's owner and team (when known), its [[owners]]
// rule's static labels, and, for expires_soon with notify_before, the current threshold; its
// annotations the owner's contact (docs/alerting.md). Labels stay bounded: never a description.
struct Alert {
  std::map<std::string, std::string> labels;       // alertname, cluster, policy, severity, token_id
  std::map<std::string, std::string> annotations;  // summary, description, …
  Timestamp starts_at;
};

// One violation state change, as posted to the generic webhook.
struct StateChange {
  std::string event;  // the audit event: violation_opened, action_succeeded, notice_sent, …
  std::string cluster;
  std::string token_id;
  std::string policy;
  std::string severity;
  std::string state;  // the violation's state after the change
  std::int64_t violation_id = 0;
  Timestamp at;
  std::string detail;  // the audit event's JSON detail
  // The token's owner, team and contact as the [[owners]] rules resolve it ("": unknown).
  std::string owner;
  std::string team;
  std::string contact;
};

class AlertSink {
 public:
  virtual ~AlertSink() = default;
  // The complete set of alerts that should fire for `cluster` now (replaces the previous set;
  // alerts missing from it are resolved).
  virtual void set_active(const std::string& cluster, std::vector<Alert> alerts) = 0;
  virtual void state_changed(const StateChange& change) = 0;
  // false: no receiver is configured, so callers need not build alerts at all.
  virtual bool wanted() const { return true; }
};

}  // namespace tw::daemon

#pragma once
// Rows of policy enforcement (SPEC §3 views `violations` and `enforcement_actions`): violations,
// the actions planned for them, per-cluster halts and exemption use.
//
// Writes go through a WriteTxn, so they commit with the poll that caused them; the executor's
// attempt bookkeeping (claim, outcome) uses short transactions of its own. Claiming an action is
// atomic: two processes (the daemon and a manual `poll`) never run the same action.
//
// Thread safety: as the Db or WriteTxn used. Errors: kDatabase.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/enforcement_state.h"
#include "core/result.h"
#include "core/token.h"

namespace tw::storage {

class Db;
class WriteTxn;

// The lifecycle enums live in core (shared with the pure planner); their names are what is stored.
using tw::ActionKind;
using tw::ActionState;
using tw::parse_action_state;
using tw::parse_violation_state;
using tw::Resolution;
using tw::to_string;
using tw::ViolationState;

struct ViolationRow {
  std::int64_t id = 0;
  std::string cluster;
  std::string token_id;
  std::string policy;
  std::string severity;
  std::string action;  // alert | restrict | revoke (as configured when opened)
  ViolationState state = ViolationState::kOpen;
  Timestamp opened_at;
  std::optional<Timestamp> due_at;  // when the action becomes due (nullopt for alert-only)
  std::optional<Timestamp> resolved_at;
  std::optional<Resolution> resolution;
  std::string detail;     // JSON
  bool released = false;  // approved past a halt
};

struct ActionRow {
  std::int64_t id = 0;
  std::int64_t violation_id = 0;
  std::string cluster;
  std::string token_id;
  std::string policy;
  std::string action;  // restrict | revoke
  ActionState state = ActionState::kPlanned;
  Timestamp planned_at;
  std::optional<Timestamp> completed_at;
  int attempts = 0;
  std::string error;
  std::vector<Permission> target;  // restrict: the permissions to leave
  std::optional<Timestamp> next_attempt_at;
  std::optional<Timestamp> attempt_started_at;  // set while an attempt has no recorded outcome
  std::int64_t attempt_pid = 0;                 // the process that made that attempt
  std::string approved_by;
};

// Reads (any Db).
// PRAGMA data_version: changes when another connection commits (a cache of these rows is stale).
Result<std::int64_t> data_version(Db& db);
Result<std::vector<ViolationRow>> open_violations(Db& db, const std::string& cluster);
// The latest violation of (token, policy), if it ended because of the token's latest removal: a
// token that reappears continues it (same opening time, same grace deadline).
Result<std::optional<ViolationRow>> last_violation_resolved_as_removed(Db& db,
                                                                       const std::string& cluster,
                                                                       const std::string& token_id,
                                                                       const std::string& policy);
Result<std::vector<ActionRow>> pending_actions(Db& db,
                                               const std::string& cluster);  // planned, awaiting
Result<std::optional<ActionRow>> find_action(Db& db, std::int64_t id);
Result<bool> cluster_halted(Db& db, const std::string& cluster);
// (exemption key, token id) pairs recorded for a cluster.
Result<std::vector<std::pair<std::string, std::string>>> exemption_uses(Db& db,
                                                                        const std::string& cluster);

struct ViolationFilter {
  bool open_only = false;
  std::string cluster;
  std::string policy;
};
Result<std::vector<ViolationRow>> query_violations(Db& db, const ViolationFilter& filter);
Result<std::vector<ActionRow>> query_actions(Db& db, const std::string& cluster);

// Writes, inside a WriteTxn.
Result<std::int64_t> insert_violation(WriteTxn& txn, const ViolationRow& v);
Status set_violation_state(WriteTxn& txn, std::int64_t id, ViolationState state);
Status resolve_violation(WriteTxn& txn, std::int64_t id, Resolution resolution, Timestamp at);
Status release_violation(WriteTxn& txn, std::int64_t id);
// Back to `open`, no longer released: an action that succeeded did not hold and is planned again.
Status reopen_violation(WriteTxn& txn, std::int64_t id);
struct SucceededActions {
  std::int64_t count = 0;
  std::int64_t last_id = 0;
  std::optional<Timestamp> last_completed_at;
};
Result<SucceededActions> succeeded_actions(Db& db, std::int64_t violation_id);
Result<std::int64_t> insert_action(WriteTxn& txn, const ActionRow& a);
Status approve_action(WriteTxn& txn, std::int64_t id, const std::string& by, Timestamp at);
Status set_action_target(WriteTxn& txn, std::int64_t id, const std::vector<Permission>& target);
// Marks the start of an attempt (attempts + 1, by process `pid`) if the action is still planned
// and its attempt marker is still `seen` (compare-and-swap: nullopt = no attempt in progress);
// false if another process claimed it first or it is no longer planned.
Result<bool> claim_action(WriteTxn& txn, std::int64_t id, Timestamp now, std::int64_t pid,
                          const std::optional<Timestamp>& seen);
Status finish_action(WriteTxn& txn, std::int64_t id, ActionState state, Timestamp at,
                     const std::string& error, std::optional<Timestamp> next_attempt_at);
Status set_cluster_halted(WriteTxn& txn, const std::string& cluster, bool halted, Timestamp at,
                          const std::string& detail);
// true if this (exemption, cluster, token) was not recorded before (and records it).
Result<bool> note_exemption_use(WriteTxn& txn, const std::string& exemption,
                                const std::string& cluster, const std::string& token_id,
                                Timestamp at);

}  // namespace tw::storage

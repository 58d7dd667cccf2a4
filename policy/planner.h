#pragma once
// The enforcement planner (SPEC §2 "Violation lifecycle", docs/policies.md): pure functions from
// one cycle's verdicts and the recorded enforcement state to a typed plan — violations to open
// and resolve, exemption uses to record, actions to plan, skip, halt or run, and the alerts that
// change. No I/O, no clock reads (`now` is an input), no logging: the daemon's Enforcer loads the
// inputs, writes the plan in the poll's transaction (audit events in the order of the steps),
// and runs the actions.
//
// Planning has two phases because the second needs the ids the first one's violations get:
//   plan_verdicts: judged tokens -> resolve / open / exemption-use steps;
//   plan_actions:  open violations and pending actions -> settle, did-not-hold, new actions
//                  (skipped in monitor mode, awaiting approval, planned), halt, and what runs.
//
// Thread safety: pure functions of their arguments. Errors: none (inputs are trusted values).

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "core/enforcement_state.h"
#include "core/token.h"
#include "policy/engine.h"

namespace tw::policy {

struct EnforcementSettings {
  Mode mode = Mode::kEnforce;  // the daemon's; a policy's own mode wins
  int max_actions_per_cycle = 10;
  int max_actions_percent = 10;
};

// Succeeded actions a violation may see contradicted before it is failed for good.
inline constexpr int kMaxReplans = 3;

// An unresolved violation.
struct Violation {
  std::int64_t id = 0;
  std::string token_id;
  std::string policy;
  std::string severity;
  Action action = Action::kAlert;  // as configured when it opened
  ViolationState state = ViolationState::kOpen;
  Timestamp opened_at;
  std::optional<Timestamp> due_at;
  bool released = false;  // approved past a halt
  std::string detail;     // JSON {"reason","kind","token_description"}; kept only for alerts
};
using OpenViolations = std::unordered_map<std::string, std::vector<Violation>>;  // by token id

// An action planned or awaiting approval.
struct PendingAction {
  std::int64_t id = 0;
  std::int64_t violation_id = 0;
  std::string token_id;
  std::string policy;
  ActionKind kind = ActionKind::kRevoke;
  ActionState state = ActionState::kPlanned;
  int attempts = 0;
  std::vector<Permission> target;  // restrict: the permissions to leave
  std::optional<Timestamp> next_attempt_at;
  std::optional<Timestamp> busy_until;  // another process's attempt; taken over after this
};

// The inventory after the poll, as the planner reads it.
class TokenView {
 public:
  virtual ~TokenView() = default;
  virtual const Token* listed(const std::string& id) const = 0;  // null: unknown or removed
  virtual std::size_t active_count(Timestamp now) const = 0;     // listed, active at `now`
};

// ---- Phase 1: verdicts ----------------------------------------------------------------------

// A token judged this cycle: listed (subject set) with its findings, or no longer listed.
struct Verdict {
  const std::string* token_id = nullptr;
  const Subject* subject = nullptr;
  std::span<const Finding> findings;
};
// The latest violation of a reappeared token, resolved as removed: a new one continues it.
struct Earlier {
  std::string token_id;
  std::string policy;
  std::int64_t id = 0;
  Timestamp opened_at;
};
struct VerdictInput {
  const PolicySet& policies;
  Mode mode = Mode::kEnforce;
  Timestamp now;
  std::span<const Verdict> verdicts;
  const OpenViolations& open;
  const std::unordered_set<std::string>& exemption_uses;  // exemption_use_key()s recorded
  std::span<const Earlier> earlier;
};

struct Resolve {
  std::int64_t violation = 0;
  std::string token_id;
  Resolution resolution = Resolution::kCompliant;
  std::string_view why;
};
struct Open {
  std::size_t policy = 0;
  const Subject* subject = nullptr;
  Timestamp opened_at;
  std::optional<Timestamp> due_at;  // nullopt for alert-only policies
  std::optional<std::int64_t> continues;
  std::string reason;
  Mode mode = Mode::kEnforce;
};
struct ExemptionUse {  // record once per (exemption, token)
  std::size_t policy = 0;
  std::size_t exemption = 0;
  std::string token_id;
  std::string key;  // PolicySet::exemption_key
};
using VerdictStep = std::variant<Resolve, Open, ExemptionUse>;

std::string exemption_use_key(std::string_view exemption_key, std::string_view token_id);
std::vector<VerdictStep> plan_verdicts(const VerdictInput& in);

// ---- Phase 2: actions -----------------------------------------------------------------------

struct Held {  // the succeeded actions of an enforced violation
  std::int64_t count = 0;
  std::int64_t last_id = 0;
  std::optional<Timestamp> last_completed_at;
};
struct ActionInput {
  const PolicySet& policies;
  EnforcementSettings settings;
  Timestamp now;
  Timestamp list_started_at;  // the poll's list was asked for then
  const OpenViolations& open;
  std::span<const PendingAction> pending;
  const std::unordered_map<std::int64_t, Held>& held;  // by violation id, enforced ones
  const TokenView& tokens;
  bool halted = false;  // the cluster is halted now
};

// A pending action whose violation ended: succeeded if the poll shows its effect, else skipped.
struct Settle {
  std::int64_t action = 0;
  bool done = false;
  std::string_view why;
};
// An enforced violation whose token the poll still lists active: planned again, or failed.
struct DidNotHold {
  std::int64_t violation = 0;
  std::string token_id;
  bool final = false;
  Held held;
};
// A new enforcement_actions row: kSkipped (monitor), kAwaitingApproval or kPlanned.
struct NewAction {
  std::int64_t violation = 0;
  std::string token_id;
  std::string policy;
  ActionKind kind = ActionKind::kRevoke;
  ActionState state = ActionState::kPlanned;
  std::vector<Permission> target;  // restrict
  bool released = false;
};
// Over the safety limits (violations held back), or a change of the cluster's halt.
struct Halt {
  bool over = false;
  std::optional<bool> set_halted;  // the cluster's halt changes to this
  std::vector<std::pair<std::int64_t, std::string>> newly_halted;  // (violation, token id)
  std::int64_t planned = 0;                                        // unreleased actions due
  std::int64_t active_tokens = 0;
  std::map<std::string, std::int64_t> by_policy;
};
// A planned action that must not run: its policy is in monitor mode now.
struct SkipPending {
  std::int64_t action = 0;
  std::int64_t violation = 0;
  std::string token_id;
};
// A restrict's target as it complies now (permissions removed since must not come back).
struct Retarget {
  std::int64_t action = 0;
  std::vector<Permission> target;
};
using ActionStep = std::variant<Settle, DidNotHold, NewAction, Halt, SkipPending, Retarget>;

// What runs after the commit: a pending action (by id) or a new one (index of its step).
struct Run {
  std::int64_t pending = 0;
  std::size_t step = std::numeric_limits<std::size_t>::max();
};

struct ActionPlan {
  std::vector<ActionStep> steps;  // in the order their effects are recorded
  std::vector<Run> run;
  Timestamp next_due = Timestamp::max();  // when a cycle without changes has work again
};
ActionPlan plan_actions(const ActionInput& in);

}  // namespace tw::policy

#pragma once
// Policy enforcement for one cluster (SPEC §2 "Violation lifecycle", §3): after every successful
// poll, inside the poll's transaction, the policies are evaluated and violations opened,
// resolved, exempted, and — once due — their actions planned, awaiting approval, skipped
// (monitor) or halted (safety limits). After the commit, planned actions run through the
// cluster's TokenActuator, each claimed durably before the call, read back from the cluster, and
// recorded with its outcome (succeeded only when the read-back shows the effect).
//
// Safety rules, all enforced here:
// - only data from a successful poll is acted on (the hook never runs for failed or suspect
//   polls) and every action is re-checked against that poll's inventory before it runs;
// - monitor mode (daemon or policy) records `action_skipped` and changes nothing;
// - if a cycle would plan more destructive actions than max_actions_per_cycle or
//   max_actions_percent of the active tokens, none runs: the cluster is halted until the plan
//   fits or an operator releases it (`approve --cluster N --all`);
// - an action is planned (row + event committed) before it runs, claimed (attempt recorded)
//   before the request, and an action whose outcome was lost in a crash is reconciled against
//   the next poll (token already revoked/restricted: succeeded, nothing sent again);
// - failures are retried with back-off, at most 5 attempts, then failed for good and alerted;
//   a failure whose answer said Retry-After is not retried before that wait either, and the
//   cycle's remaining actions wait for the next cycle.
// The decisions are policy/planner.h's pure functions; this class is their applier: it loads the
// rows, writes the plan in the poll's transaction (audit events, alerts, metrics) and runs the
// actions against the cluster with read-backs.
// expires_soon policies with notify_before announce each threshold a token's expiry crosses once
// (policy/notices.h): a notice_sent event, remembered in expiry_notices (a restart never
// announces again), a webhook message, and the alert's `threshold` label. Every violation's alert
// and webhook message carries the token's owner, team and contact (docs/alerting.md).
// An unchanged inventory is not re-evaluated until a clock-driven verdict, a due action or an
// outside change (approval) needs it, so the steady-state cycle stays cheap.
//
// Thread safety: one cluster's poll at a time (the poller's thread); configure() between polls.
// Errors: on_poll returns kDatabase errors (the poll's transaction then rolls back); execution
// failures are recorded, logged and retried, never thrown.

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/log.h"
#include "core/time.h"
#include "daemon/action_fence.h"
#include "daemon/alert_sink.h"
#include "daemon/config.h"
#include "daemon/owners.h"
#include "influx/token_source.h"
#include "metrics/metrics.h"
#include "policy/engine.h"
#include "policy/planner.h"
#include "storage/audit_store.h"
#include "storage/enforcement.h"
#include "storage/owners.h"
#include "storage/recorder.h"

namespace tw::daemon {

using EnforcementSettings = policy::EnforcementSettings;

// An action to run after the poll committed.
struct PendingRun {
  storage::ActionRow action;
};

struct EnforcementReport {
  bool evaluated = false;
  int opened = 0;
  int resolved = 0;
  int exemptions_applied = 0;
  int planned = 0;
  int awaiting_approval = 0;
  int skipped = 0;
  int halted = 0;  // actions held back by the safety limits this cycle
  int succeeded = 0;
  int failed = 0;
  int reconciled = 0;    // actions found done by the next poll (no request sent)
  int did_not_hold = 0;  // succeeded actions the next poll contradicted (planned again)
  int export_held = 0;   // actions held back by [audit] require_export (they stay planned)
  std::vector<PendingRun> to_run;
  // The cluster asked to wait this long (429/503 Retry-After) during execute(); the actions
  // left were not started.
  std::optional<Duration> retry_after;
};

// One attempt at an action: `outcome` when the cluster shows the effect (revoked,
// already_revoked, gone, deleted, restricted), else `error`, one sentence, and `retry_after` if
// the cluster asked to wait (the attempt then sends nothing more, not even the read-back).
struct ActionResult {
  std::string outcome;
  std::string error;
  std::optional<Duration> retry_after;
};
// [ha]: every attempt reads the token first (another instance may have acted since our poll),
// and `may_send` is asked right before the request that changes the token (false: nothing is
// sent, the attempt fails with that reason).
struct ActionGuard {
  bool read_first = false;
  std::function<bool()> may_send;
  bool sent = false;  // set when may_send allowed the request that changes the token
};
ActionResult run_revoke(influx::ClusterClient& client, const storage::ActionRow& a,
                        const influx::CallContext& ctx, ActionGuard* guard = nullptr);
ActionResult run_restrict(influx::ClusterClient& client, const storage::ActionRow& a,
                          const influx::CallContext& ctx, ActionGuard* guard = nullptr);

// [audit] require_export: why actions must wait for the audit export now, or nullopt.
using ExportGate = std::function<std::optional<std::string>(Timestamp now)>;

// The daemon-wide enforcement settings and compiled policies of a configuration.
EnforcementSettings enforcement_settings(const Config& config);
Result<std::shared_ptr<const policy::PolicySet>> compile_policies(const Config& config);

class Enforcer {
 public:
  Enforcer(ClusterConfig cluster, const Clock& clock, Logger log, AlertSink* sink);

  void configure(std::shared_ptr<const policy::PolicySet> policies, EnforcementSettings settings);
  // Metrics to keep current (violations, actions, halt); may be null.
  void set_metrics(metrics::Metrics* m) { metrics_ = m; }
  // [audit] require_export: while the gate gives a reason, execute() sends no request; the
  // planned actions stay planned (durable), the hold is recorded once (enforcement_halted with
  // reason "export_lagging") and the actions run in the first cycle after the gate opens.
  void set_export_gate(ExportGate gate) { export_gate_ = std::move(gate); }
  // [ha] (daemon/action_fence.h): only while the fence says this instance leads do actions run,
  // each after its intent was written; a standby keeps its planned actions planned. Action
  // events carry the fence's term. May be null (no [ha]).
  void set_fence(ActionFence* fence) { fence_ = fence; }
  // Who owns each token (the cluster poller's tracker); may stay null (every token unowned).
  void set_owners(const OwnerTracker* owners) { owners_ = owners; }
  // Tokens' owners may have changed: the open-violation gauges (by team) are set again after the
  // next committed poll (publish_metrics).
  void recount_open_violations() { counts_dirty_ = true; }
  // Whether execute() has work even without actions to run (a leader's reconciliation).
  bool wants_execute() const { return fence_ != nullptr && fence_->leading(); }

  // In the poll's transaction, with the inventory after the poll and what the poll changed.
  Status on_poll(storage::WriteTxn& txn, const storage::Inventory& inventory,
                 const storage::PollSummary& poll, Timestamp now, EnforcementReport& report);
  // After the poll's transaction committed (or was rolled back: `committed` false).
  void after_commit(bool committed);
  // Runs report.to_run. Never called after a failed, suspect or dry-run poll.
  // Every action is read back (get_token) before it counts: see run_revoke/run_restrict.
  void execute(storage::AuditStore& store, influx::ClusterClient& client,
               const influx::CallContext& ctx, EnforcementReport& report);

  const policy::PolicySet* policies() const { return policies_.get(); }
  const EnforcementSettings& settings() const { return settings_; }
  // Until then, a poll that changes nothing gives on_poll nothing to do (no clock-driven verdict,
  // no action due or retried); Timestamp::min() before the first evaluation.
  Timestamp next_due() const {
    if (!policies_) return Timestamp::max();
    if (!evaluated_once_) return Timestamp::min();
    return clock_heap_.empty() ? next_due_ : std::min(next_due_, clock_heap_.front().first);
  }

  static constexpr int kMaxAttempts = 5;
  // Succeeded actions a violation may see contradicted before it is failed for good.
  static constexpr int kMaxReplans = policy::kMaxReplans;

 private:
  struct Judged;  // the subjects judged this cycle and their evaluation
  struct Cycle;   // one poll's transaction, time, report and loaded actions
  enum class Claim { kOurs, kTaken, kNoDatabase };

  Status refresh(storage::WriteTxn& txn);
  Status load(storage::WriteTxn& txn);
  bool judge(const storage::Inventory& inventory, const storage::PollSummary& poll, Timestamp now,
             Judged& out);
  // Phase 1: the verdicts' plan (policy::plan_verdicts), written step by step.
  Status apply_verdicts(storage::WriteTxn& txn, const storage::Inventory& inventory,
                        const storage::PollSummary& poll, const Judged& judged, Timestamp now,
                        EnforcementReport& report);
  Result<std::vector<policy::Earlier>> continued_violations(
      storage::WriteTxn& txn, const storage::PollSummary& poll,
      std::span<const policy::Verdict> verdicts);
  Status apply(Cycle& c, const policy::Resolve& s);
  Status apply(Cycle& c, const policy::Open& s);
  Status apply(Cycle& c, const policy::ExemptionUse& s);
  // Phase 2: the actions' plan (policy::plan_actions), written step by step; `step` is the
  // step's index in the plan.
  Status apply_actions(storage::WriteTxn& txn, const storage::Inventory& inventory, Timestamp now,
                       EnforcementReport& report);
  Status apply(Cycle& c, const policy::Settle& s, std::size_t step);
  Status apply(Cycle& c, const policy::DidNotHold& s, std::size_t step);
  Status apply(Cycle& c, const policy::NewAction& s, std::size_t step);
  Status apply(Cycle& c, const policy::Halt& s, std::size_t step);
  Status apply(Cycle& c, const policy::SkipPending& s, std::size_t step);
  Status apply(Cycle& c, const policy::Retarget& s, std::size_t step);
  // The notice ladder: announces the current threshold of every open expires_soon violation
  // with notify_before, once per (token, policy, expiry, threshold).
  Status send_notices(storage::WriteTxn& txn, const storage::Inventory& inventory, Timestamp now);
  Status send_notice(storage::WriteTxn& txn, const policy::Violation& v,
                     const storage::SentNotice& n, Timestamp expires_at, Timestamp now);
  // The token's owner labels, rule labels and contact on a violation's alert.
  void address(Alert& a, const std::string& token_id) const;
  Status record(storage::WriteTxn& txn, EventKind kind, const std::string& token_id,
                std::string detail, Timestamp now, const policy::Violation* violation);
  void remember_clock(const std::string& id, Timestamp next);
  policy::Violation* find_violation(const std::string& token_id, std::int64_t id);
  policy::Violation* find_violation(std::int64_t id);
  // Execution.
  Claim claim(storage::AuditStore& store, const storage::ActionRow& a);
  bool record_outcome(storage::AuditStore& store, const storage::ActionRow& a,
                      const ActionResult& result, EnforcementReport& report);
  Status write_outcome(storage::WriteTxn& txn, const storage::ActionRow& a,
                       const ActionResult& result, std::optional<Timestamp> retry, Timestamp now);
  bool held_for_export(storage::AuditStore& store, EnforcementReport& report);
  bool held_for_leadership(influx::ClusterClient& client, const influx::CallContext& ctx,
                           EnforcementReport& report);
  // One action under the fence: intent, claim, guarded attempt, outcome; false: stop the cycle.
  bool run_fenced(storage::AuditStore& store, influx::ClusterClient& client,
                  const influx::CallContext& ctx, const storage::ActionRow& a, ActionResult& result,
                  bool& claimed_it);
  void rebuild_alerts(Timestamp now);
  void count_action(const std::string& policy, std::string_view action, std::string_view result);
  bool alerting() const { return sink_ != nullptr && sink_->wanted(); }
  const Ownership* ownership_of(const std::string& token_id) const {
    return owners_ != nullptr ? &owners_->of(token_id) : nullptr;
  }
  void publish_metrics();

  ClusterConfig cluster_;
  policy::ClusterInfo info_;
  const Clock& clock_;
  Logger log_;
  AlertSink* sink_;
  metrics::Metrics* metrics_ = nullptr;
  ExportGate export_gate_;
  ActionFence* fence_ = nullptr;
  const OwnerTracker* owners_ = nullptr;
  bool standby_noted_ = false;  // the standby's hold of planned actions is logged
  bool export_held_ = false;    // the current hold is recorded
  bool counts_dirty_ = true;    // open violations changed since the gauges were set
  std::shared_ptr<const policy::PolicySet> policies_;
  EnforcementSettings settings_;
  bool configured_changed_ = true;

  // Cached state, valid while the database has no outside writer (PRAGMA data_version).
  bool loaded_ = false;
  std::int64_t data_version_ = -1;
  policy::OpenViolations open_;                     // by token id
  std::unordered_set<std::string> exemption_uses_;  // policy::exemption_use_key, recorded
  bool halted_ = false;
  Timestamp list_started_at_;  // this poll's list was asked for then
  // Violations whose succeeded action did not hold, since when (the TokenActionDidNotHold alert
  // while they are planned again); pending until the poll's transaction commits.
  std::unordered_map<std::int64_t, Timestamp> unheld_;
  std::vector<std::int64_t> unheld_pending_;
  // Incremental evaluation: verdicts depend only on the token and the time, so after a full
  // evaluation only changed tokens, and tokens whose clock-driven verdict time has come, are
  // judged again. clock_heap_ is a min-heap of (time, token id).
  bool evaluated_once_ = false;
  std::vector<std::pair<Timestamp, std::string>> clock_heap_;
  Timestamp next_due_ = Timestamp::min();  // an action comes due or is retried
  std::vector<Alert> alerts_;
  bool alerts_dirty_ = true;
  // The notice ladder: the notices recorded (keys of (token, policy, expires_at, threshold)),
  // those recorded by the poll in progress, and each open violation's current threshold.
  std::unordered_set<std::string> notices_sent_;
  std::vector<std::string> notices_pending_;
  bool notices_held_ = false;  // a standby did not issue a due notice (issued once it leads)
  std::unordered_map<std::int64_t, std::string> thresholds_;
  std::vector<StateChange> outbox_;  // sent after commit
};

}  // namespace tw::daemon

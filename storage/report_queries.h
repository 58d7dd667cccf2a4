#pragma once
// The typed reads behind compliance reports (report/): polls, violations, enforcement and
// exemption events, token changes and the chain head over a period, each returning plain rows
// for the report to build on. Only storage/ knows the tables and views they read.
//
// Times are bound as RFC 3339 text and compared as recorded; a period includes both ends.
// Rows are returned in no particular order unless a function says otherwise.
//
// A period may name a team and/or an owner (report --team/--owner): every query about tokens
// then keeps only the tokens whose current recorded owner (token_owners, matched by a rule)
// has them; cluster-wide events (halts) are kept for the clusters where such a token is.
//
// Thread safety: as the ReadTxn. Errors: kDatabase.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ed25519.h"
#include "core/result.h"
#include "core/time.h"
#include "storage/read_txn.h"

namespace tw::storage {

struct ReportPeriod {
  Timestamp from;
  Timestamp to;
  std::string cluster;          // "" = every cluster
  std::string team;             // "" = any (else: tokens whose recorded team is exactly this)
  std::string owner;            // "" = any (else: tokens whose recorded owner is exactly this)
  bool owners_recorded = true;  // the database has token_owners (owners_recorded())
};

// Whether the database records owners (schema 6; older ones are read as unowned and cannot be
// filtered by team or owner).
Result<bool> owners_recorded(ReadTxn& txn);

// One token's recorded owner (token_owners). `owned`: an [[owners]] rule matched it.
struct TokenOwnerRow {
  std::string cluster, token_id;
  std::optional<std::string> owner, team;
  bool owned = false;
};
// Visits the recorded owner of each of period.cluster's tokens ("" = every cluster; team and
// owner ignored); `row` is valid during the call only.
Status for_each_token_owner(ReadTxn& txn, const ReportPeriod& period,
                            const std::function<void(const TokenOwnerRow& row)>& visit);

// Violations per recorded owner: opened in the period, and open at its end.
struct OwnerViolationCount {
  bool owned = false;
  std::optional<std::string> team, owner;
  std::int64_t opened = 0, open_at_end = 0;
};
Result<std::vector<OwnerViolationCount>> violations_by_owner(ReadTxn& txn,
                                                             const ReportPeriod& period);

// Every cluster with a recorded poll, ordered by name.
Result<std::vector<std::string>> polled_clusters(ReadTxn& txn);

struct PollCoverage {
  std::int64_t ok = 0, failed = 0, suspect = 0;  // polls that finished in the period
  std::optional<Timestamp> first_started;        // the cluster's first poll ever
  std::optional<Timestamp> last_ok_before;       // the last ok poll finished before the period
  std::vector<Timestamp> ok_finished;            // ok polls finished in the period, ascending
};
// One cluster's polls (period.cluster must be set).
Result<PollCoverage> poll_coverage(ReadTxn& txn, const ReportPeriod& period);
// Start times of the cluster's polls started in the period, ascending.
Result<std::vector<Timestamp>> poll_starts(ReadTxn& txn, const ReportPeriod& period);

// Open and resolve times of the violations open at some point of the period, each sorted.
struct ViolationTimes {
  std::vector<std::string> opened;
  std::vector<std::string> resolved;  // of those resolved
};
Result<ViolationTimes> violation_times(ReadTxn& txn, const ReportPeriod& period);

struct PolicyCount {
  std::string policy;
  std::int64_t count = 0;
};
struct OpenedByPolicy {
  std::string policy, severity, action;  // the highest severity and action seen
  std::int64_t opened = 0;
};
// Violations opened in the period, per policy.
Result<std::vector<OpenedByPolicy>> violations_opened(ReadTxn& txn, const ReportPeriod& period);
// Violations still open at the end of the period, per policy.
Result<std::vector<PolicyCount>> violations_open_at_end(ReadTxn& txn, const ReportPeriod& period);

struct ResolvedViolation {
  std::string policy;
  std::optional<std::string> resolution;
  std::string opened_at, resolved_at;
  bool owned = false;  // the token's recorded owner, as in TokenOwnerRow
  std::optional<std::string> team, owner;
};
// Violations resolved in the period, one row each.
Result<std::vector<ResolvedViolation>> violations_resolved(ReadTxn& txn,
                                                           const ReportPeriod& period);

struct ActionEventCount {
  std::string event;  // action_planned, action_succeeded, action_failed, action_skipped
  std::string policy;
  bool final = true;  // action_failed: no retry follows
  std::int64_t count = 0;
};
// Action events recorded in the period, by event, policy and finality (rows without a policy
// are left out).
Result<std::vector<ActionEventCount>> action_event_counts(ReadTxn& txn, const ReportPeriod& period);

struct HaltRecord {
  std::string recorded_at;
  std::string cluster;
  std::int64_t planned = 0;                                     // actions held back
  std::vector<std::pair<std::string, std::int64_t>> by_policy;  // held back, per policy
};
// enforcement_halted events recorded in the period, in the order they were recorded (with a
// team or owner: in the clusters where one of its tokens is).
Result<std::vector<HaltRecord>> halts(ReadTxn& txn, const ReportPeriod& period);

// Actions planned for approval up to the end of the period and not yet approved, run or settled
// then, per policy.
Result<std::vector<PolicyCount>> awaiting_approval_at_end(ReadTxn& txn, const ReportPeriod& period);

struct ExemptionUse {
  std::optional<std::string> policy;
  std::optional<std::string> exemption;  // the exemption's key
  std::int64_t tokens = 0;               // distinct tokens it was applied to
};
// exemption_applied events recorded up to the end of the period by exemptions still in force at
// its start, per policy and exemption.
Result<std::vector<ExemptionUse>> exemption_uses(ReadTxn& txn, const ReportPeriod& period);

struct EventCount {
  std::string event;
  std::int64_t count = 0;
};
// Token events (token_discovered … token_reappeared) recorded in the period, per event.
Result<std::vector<EventCount>> token_event_counts(ReadTxn& txn, const ReportPeriod& period);

// One token change; the views are valid during the visit only.
struct TokenChange {
  std::int64_t seq = 0;
  std::string_view recorded_at, cluster, token_id, event, detail;
};
// Streams the token_created, _updated, _revoked, _expired, _removed and _reappeared events of
// the period in seq order (read on a second thread); `visit` returns false to stop.
Status for_each_token_change(ReadTxn& txn, const ReportPeriod& period,
                             const std::function<bool(const TokenChange&)>& visit);

// The seq of the chain head row, if any; and the number of events in the audit log.
Result<std::optional<std::int64_t>> chain_head_seq(ReadTxn& txn);
Result<std::int64_t> audit_event_count(ReadTxn& txn);

// The last signed checkpoint (storage/checkpoints.h) and what checking it with `keys` found;
// its text fields pass through printable() (they are read from a file anyone may have edited).
struct CheckpointSummary {
  std::int64_t seq = 0;       // the checkpoint_signed row
  std::int64_t head_seq = 0;  // the head it signs
  std::string signed_at, key_id, host;
  bool checked = false;  // keys were given
  std::string problem;   // checked: "" if it verifies with one of the keys, else why not
};
Result<std::optional<CheckpointSummary>> last_checkpoint(
    ReadTxn& txn, const std::vector<ed25519::PublicKey>& keys);

}  // namespace tw::storage

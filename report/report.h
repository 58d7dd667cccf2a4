#pragma once
// Compliance reports from the audit database (SPEC §4 `report`, docs/reports.md).
//
// collect() reads everything a report says about a period into ReportData — coverage (polls,
// gaps), the inventory at an instant with its highlights, counts of token changes, policy
// compliance (violations, time to remediate, actions, exemptions), time series for the charts,
// and the integrity of the hash chain. The token changes themselves can be millions of rows, so
// they are not held in memory: for_each_change() streams them in seq order while a renderer
// writes. write_report() renders one format (HTML, Markdown, CSV, JSON) through a Sink.
//
// Everything comes from the database; the optional Context (from the configuration) adds what
// only the configuration knows: poll intervals (for gaps; otherwise observed from the polls),
// policy settings, scopes (for "tokens judged") and exemptions. The database is only read,
// through storage's typed queries inside the caller's ReadTxn (one snapshot for every section).
//
// A report for one team or owner (Request::team, ::owner) keeps, in every section, only the
// tokens whose current recorded owner (token_owners) is that team/owner; the owners section
// sums the tokens, violations and time to remediate per team and per owner.
//
// Thread safety: one report per ReadTxn at a time. Errors: kDatabase (unreadable database),
// kInvalidArgument (bad period); a broken hash chain is reported, not an error.

#include <array>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/ed25519.h"
#include "core/result.h"
#include "core/time.h"
#include "policy/policy_spec.h"
#include "storage/anomalies.h"
#include "storage/chain.h"
#include "storage/queries.h"
#include "storage/report_queries.h"

namespace tw::storage {
class ReadTxn;
}

namespace tw::report {

inline constexpr const char* kSchemaId = "https://tokenwarden.dev/schemas/report-1.json";
inline constexpr int kSchemaVersion = 1;

enum class Format { kHtml, kMarkdown, kCsv, kJson };
std::optional<Format> parse_format(std::string_view s);

struct ClusterSettings {
  Duration poll_interval{0};
  std::map<std::string, std::string> labels;
};

// What the configuration adds (all optional).
struct Context {
  bool from_config = false;
  std::string config_path;
  std::map<std::string, ClusterSettings> clusters;
  std::vector<policy::PolicySpec> policies;
  std::vector<policy::ExemptionSpec> exemptions;
  // report --public-key or [audit] public_key_file: the last checkpoint is checked with these.
  std::vector<ed25519::PublicKey> public_keys;
};

struct Request {
  Timestamp from;
  Timestamp to;
  Timestamp at;         // the inventory's instant (default: to)
  std::string cluster;  // "" = every cluster
  std::string team;     // "" = every team; else only the tokens of this team (exact match)
  std::string owner;    // "" = every owner; else only the tokens of this owner (exact match)
  Timestamp generated_at;
  std::string database;           // as shown in the report
  std::string version;            // tokenwarden's
  std::size_t list_limit = 5000;  // HTML/Markdown: rows listed per long section (the rest counted)
  // Leave the chain check running (on its second connection) when collect() returns; the
  // renderers wait for it through integrity_of() when they reach that section (JSON and CSV
  // write it last, so the check overlaps the rendering).
  bool integrity_in_background = false;
  std::size_t samples = 60;  // points of the time series
};

struct Gap {
  Timestamp from;
  Timestamp to;
};

struct ClusterCoverage {
  std::string cluster;
  Duration interval{0};
  std::string interval_source;  // "config", "observed" or "default"
  std::int64_t polls_ok = 0, polls_failed = 0, polls_suspect = 0;
  std::optional<Timestamp> monitored_since;       // the cluster's first poll ever
  std::optional<Timestamp> last_successful_poll;  // at or before the end of the period
  std::vector<Gap> gaps;                          // no successful poll for more than 3 intervals
  Duration gap_total{0};
};

struct InventoryEntry {
  const storage::InventoryRow& row;
  bool never_expires = false;  // active without an expiry
  bool all_databases = false;  // a grant on "*"
  bool writes = false;         // a write grant
};

InventoryEntry make_entry(const storage::InventoryRow& row);

// The tokens a team/owner report covers (looked up without copying the ids).
class TokenSet {
 public:
  void insert(const std::string& cluster, const std::string& token_id);
  bool contains(std::string_view cluster, std::string_view token_id) const;
  bool empty() const { return by_cluster_.empty(); }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Ids = std::unordered_set<std::string, Hash, std::equal_to<>>;
  std::map<std::string, Ids, std::less<>> by_cluster_;
};

struct InventorySection {
  Timestamp at;
  std::array<std::int64_t, 4> by_status{};  // active, expired, revoked, removed
  std::int64_t never_expire = 0, all_databases = 0, writes = 0;  // among active tokens
  std::int64_t token_count = 0;                                  // every token known at `at`
  // The tokens themselves stay in the replay (compact) and are visited by cluster and id until
  // `visit` returns false; the entry is only valid during the call.
  std::shared_ptr<const storage::InventoryReplay> replay;
  // Time anomalies recorded up to `at` (token_anomaly events: created_in_future,
  // created_at_unset), in the order they were recorded.
  std::vector<storage::RecordedAnomaly> anomalies;
  // A team/owner report: the tokens it covers (for_each_token visits only these).
  std::shared_ptr<const TokenSet> only;
  bool covers(std::string_view cluster, std::string_view token_id) const;
  void for_each_token(const std::function<bool(const InventoryEntry&)>& visit) const;
};

struct ChangeCounts {
  std::int64_t discovered = 0, created = 0, updated = 0, revoked = 0, expired = 0, removed = 0;
  std::int64_t reappeared = 0;  // listed again after token_removed
  // How many changes for_each_change() visits: all but the discoveries.
  std::int64_t streamed() const {
    return created + updated + revoked + expired + removed + reappeared;
  }
};

struct TimeToRemediate {
  std::int64_t count = 0;
  std::optional<double> median_seconds;
  std::optional<double> max_seconds;
};

struct PolicyCompliance {
  std::string policy;
  bool configured = false;                    // in the configuration now (else only in the history)
  std::string kind, severity, action, mode;   // from the configuration, else from the history
  std::optional<std::int64_t> tokens_judged;  // active tokens in scope at the end (needs config)
  std::int64_t opened = 0, resolved = 0, open_at_end = 0;
  std::map<std::string, std::int64_t> resolutions;  // resolved in the period, by resolution
  TimeToRemediate
      time_to_remediate;  // opened to resolved (compliant, revoked, restricted, removed)
  std::int64_t actions_planned = 0, actions_succeeded = 0, actions_failed = 0, actions_skipped = 0;
  std::int64_t actions_halted = 0;  // held back when enforcement halted (not with a team/owner)
  std::int64_t awaiting_approval_at_end = 0;
  std::int64_t exemptions_in_force = 0;  // configured, in force at some point of the period
  std::int64_t exemptions_used = 0;      // tokens an exemption was applied to in the period
};

// One row of the owners section: a team (by_team) or a team's owner (by_owner).
struct OwnerRow {
  bool unowned = false;               // the tokens no [[owners]] rule matched
  std::optional<std::string> team;    // none: unowned, or the rule assigns no team
  std::optional<std::string> owner;   // by_owner rows: none if the rule assigns no owner
  std::int64_t tokens = 0;            // active at the end of the period
  std::int64_t opened = 0;            // violations opened in the period
  std::int64_t open_at_end = 0;       // violations open at the end of the period
  TimeToRemediate time_to_remediate;  // as PolicyCompliance's, over the group's tokens
};

struct OwnersSection {
  bool recorded = true;  // false: the database predates owners (schema < 6)
  // Teams by name, then "(no team)", then "(unowned)"; by_owner: owned tokens only, by team
  // (same order) and owner.
  std::vector<OwnerRow> by_team;
  std::vector<OwnerRow> by_owner;
};

// What a team/owner report covers, e.g. `team "data", owner "ana"` (raw text: escape it);
// "" for a report over every token.
std::string owner_filter_text(const Request& request);

// "(unowned)", "(no team)" or the team; "(no owner)" or the owner.
std::string team_label(const OwnerRow& row);
std::string owner_label(const OwnerRow& row);

struct HaltEvent {
  Timestamp at;
  std::string cluster;
  std::int64_t planned = 0;
};

struct ExemptionEntry {
  std::string policy, token_id, description, cluster, reason;
  Timestamp expires;
  std::int64_t used = 0;  // tokens it was applied to in the period
};

struct SeriesPoint {
  Timestamp at;
  std::array<std::int64_t, 4> tokens{};  // by status
  std::int64_t open_violations = 0;
};

struct Integrity {
  bool ok = true;
  std::int64_t rows = 0;
  std::int64_t head_seq = 0;
  std::string head_hash;
  std::int64_t first_bad_seq = 0;  // 0: the problem is not one row
  std::string problem;
  bool append_only_triggers = true;
  // The last signed checkpoint (docs/database.md "Signed checkpoints"), if any.
  std::optional<storage::CheckpointSummary> checkpoint;
};

// "verified", "invalid", "not_checked" (no public key) or "none" (no checkpoint), and one
// sentence saying so.
std::string_view checkpoint_verification(const Integrity& g);
std::string checkpoint_note(const Integrity& g);

// Progress for long reports: one line per stage ("reading polls", …) with an optional count.
using Progress = std::function<void(std::string_view stage, std::int64_t done, std::int64_t total)>;

// The chain check started by collect() (see Request::integrity_in_background).
struct PendingIntegrity {
  std::mutex mu;
  std::future<Result<storage::VerifyReport>> parallel;
  std::optional<std::int64_t> snapshot_head;
  Progress progress;
  std::optional<Integrity> result;
};

struct ReportData {
  Request request;
  Context context;
  std::vector<std::string> clusters;
  std::vector<ClusterCoverage> coverage;
  InventorySection inventory;
  ChangeCounts changes;
  std::vector<PolicyCompliance> policies;
  OwnersSection owners;
  std::vector<HaltEvent> halts;
  std::vector<ExemptionEntry> exemptions;
  std::vector<SeriesPoint> series;
  // Use integrity_of(): it is only filled here once the check has finished.
  mutable Integrity integrity;
  std::shared_ptr<PendingIntegrity> pending;
  // The token states at the end of the period (descriptions of the changes).
  std::shared_ptr<const storage::InventoryReplay> period_end;
};

// One recorded token change (created, updated, revoked, expired, removed) in the period.
struct ChangeEvent {
  std::int64_t seq = 0;
  std::string time;
  std::string cluster;
  std::string token_id;
  std::string event;
  std::string description;  // the token's description at the end of the period
  std::string before;       // token_updated: the changed fields before, as JSON; else ""
  std::string after;        // token_updated: after; token_created: the token; else ""
};

Result<ReportData> collect(storage::ReadTxn& txn, const Request& request, const Context& context,
                           const Progress& progress = {});
// Streams the period's token changes in seq order; `visit` returns false to stop.
// The integrity section, waiting for the chain check if it still runs. Errors: kDatabase.
Result<Integrity> integrity_of(storage::ReadTxn& txn, const ReportData& data);

// `data` is what collect() returned for the same request (descriptions come from its replay).
Status for_each_change(storage::ReadTxn& txn, const ReportData& data,
                       const std::function<bool(const ChangeEvent&)>& visit);

// Receives the report in chunks.
using Sink = std::function<void(std::string_view chunk)>;

Status write_report(storage::ReadTxn& txn, const ReportData& data, Format format, const Sink& sink);

// The renderers (write_report dispatches to them).
Status render_json(storage::ReadTxn& txn, const ReportData& data, const Sink& sink);
Status render_csv(storage::ReadTxn& txn, const ReportData& data, const Sink& sink);
Status render_markdown(storage::ReadTxn& txn, const ReportData& data, const Sink& sink);
Status render_html(storage::ReadTxn& txn, const ReportData& data, const Sink& sink);

// Names used by every format.
std::string_view status_name(std::size_t index);  // 0..3: active, expired, revoked, removed

}  // namespace tw::report

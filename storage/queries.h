#pragma once
// Read queries behind the command line: the inventory (now or as of a past time, rebuilt from
// the audit history) and the audit events.
//
// Thread safety: use a Db from one thread. Errors: kDatabase.

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ownership.h"
#include "core/result.h"
#include "core/token.h"

namespace tw::storage {

class Db;

struct InventoryRow {
  std::string cluster;
  Token token;
  TokenStatus status = TokenStatus::kActive;
  std::string first_seen;
  std::string last_seen;
  Ownership ownership;  // as last resolved (token_owners); unmatched when no rule matched
};

struct InventoryFilter {
  std::string cluster;                // empty: all
  std::optional<TokenStatus> status;  // nullopt: all
  std::string owner;                  // empty: any
  std::string team;                   // empty: any
  bool matches(const Ownership& o) const {
    return (owner.empty() || o.owner == owner) && (team.empty() || o.team == team);
  }
};

// The recorded owners of every token of every cluster, by (cluster, token id): what `tokens --at`
// shows beside a replayed inventory (ownership is not replayed: it is the current one).
Result<std::map<std::pair<std::string, std::string>, Ownership>> current_owners(Db& db);

// The token_inventory view, ordered by cluster and token id. A database of schema 5 or older
// (not yet opened by this version's daemon) has no owner columns: every token is unowned.
Result<std::vector<InventoryRow>> query_inventory(Db& db, const InventoryFilter& filter);

// The inventory as tokenwarden knew it at `at`, replayed from token events recorded up to then.
// A token recorded active whose expiry is at or before `at` is reported expired.
Result<std::vector<InventoryRow>> inventory_at(Db& db, Timestamp at, const InventoryFilter& filter);

// The replay behind inventory_at, for callers that need the inventory at several instants in
// one pass (reports): events are applied in seq order, and `on_sample` is called at each sample
// time (ascending) with the inventory as of that instant, before any later event is applied.
class InventoryReplay {
 public:
  InventoryReplay();
  ~InventoryReplay();
  InventoryReplay(InventoryReplay&&) noexcept;
  InventoryReplay& operator=(InventoryReplay&&) noexcept;

  // Applies the token events recorded up to `until` (inclusive) for one cluster ("" = all),
  // calling on_sample(t) for every sample time t <= until once all events up to t are applied.
  Status run(Db& db, Timestamp until, const std::string& cluster,
             const std::vector<Timestamp>& samples,
             const std::function<void(Timestamp)>& on_sample);

  // Status counts (active, expired, revoked, removed) as of `at`, with expiry by time applied.
  std::array<std::int64_t, 4> counts(Timestamp at) const;
  // Visits the rows as of `at`, ordered by cluster and token id, optionally one status only,
  // until `visit` returns false. `row` is only valid during the call (one row is materialized
  // at a time, so a large inventory is never held twice).
  void for_each(Timestamp at, const std::optional<TokenStatus>& status,
                const std::function<bool(const InventoryRow& row)>& visit) const;
  // The same rows in a vector.
  std::vector<InventoryRow> rows(Timestamp at,
                                 const std::optional<TokenStatus>& status = std::nullopt) const;
  // Tokens known (in any status).
  std::size_t size() const;
  // Every token as of `at`, unordered and without copies (for counting).
  struct Summary {
    std::string_view cluster;
    TokenStatus status;
    bool expires;  // has an expiry time
    const std::vector<Permission>* permissions;
    std::string_view token_id;
  };
  void summarize(Timestamp at, const std::function<void(const Summary&)>& visit) const;
  // A known token's description, or nullptr.
  const std::string* description(std::string_view cluster, std::string_view token_id) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct AuditRow {
  std::int64_t seq = 0;
  std::string recorded_at;
  std::optional<std::string> cluster;
  std::optional<std::string> token_id;
  std::string event;
  std::string detail;
  std::string prev_hash;
  std::string hash;
};

struct HistoryFilter {
  std::string token_id;
  std::string cluster;
  std::optional<Timestamp> since;  // inclusive
  std::optional<Timestamp> until;  // inclusive
  std::vector<std::string> events;
  std::int64_t limit = 0;  // 0: no limit; otherwise the most recent `limit` rows
};

// The audit_log view, ordered by seq.
Result<std::vector<AuditRow>> query_history(Db& db, const HistoryFilter& filter);

// When the cluster's last successful (ok) poll finished, if it ever had one.
Result<std::optional<Timestamp>> last_successful_poll(Db& db, const std::string& cluster);

// Whether the database holds any poll or violation of this cluster (a cluster name typed on the
// command line that is neither configured nor recorded is a usage error).
Result<bool> cluster_recorded(Db& db, const std::string& cluster);

// The config_hash of the last config_applied event, "" if none (the daemon records a
// configuration only when it differs).
Result<std::string> last_applied_config_hash(Db& db);

// [ha]: the highest etcd mod revision an action_observed event recorded under `key_prefix`
// (0 if none), so a restarted daemon mirrors only what it has not recorded yet.
Result<std::int64_t> last_observed_intent_revision(Db& db, const std::string& key_prefix);

}  // namespace tw::storage

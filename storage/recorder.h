#pragma once
// Records one poll of one cluster: the snapshot diff, its events, token rows and the poll row,
// in one transaction (SPEC §3).
//
// - A failed poll writes its poll row and a poll_failed event, and no token event.
// - If more than max_vanished_percent of the known tokens vanished, the poll is `suspect`: its
//   row and a poll_suspect event are written and nothing else, until a later poll sees the same
//   tokens vanish (same digest) and confirms it.
// - A poll that changes nothing writes only its poll row.
// The recorder keeps each cluster's inventory in memory and checks, inside the transaction, that
// no other process recorded a poll meanwhile (else it reloads), so events are never doubled.
// It also remembers the digest of the last list it recorded whole: a source told that digest
// (known_digest) may answer "unchanged" instead of a list, and then, unless a token has expired
// since, only the poll row is written — the steady state costs no decoding and no diff.
// `hook` runs inside the transaction of a successful poll, with the inventory after it, so later
// stages (policy evaluation) commit atomically with the poll.
//
// Thread safety: record() and known_digest() may be called from several threads (the store
// serializes writers); one poll per cluster at a time.
// Errors: kDatabase; the transaction is rolled back and the in-memory inventory reloaded later.

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "storage/audit_store.h"

namespace tw::storage {

struct PollInput {
  std::string cluster;
  Timestamp started_at;
  Timestamp finished_at;
  std::optional<std::vector<Token>> tokens;  // nullopt: the poll failed (error says why)
  bool unchanged = false;   // the source found the list identical to known_digest()
  std::string digest;       // the list's digest, if the source gave one
  std::string error;        // failed: one sentence
  int max_vanished_percent = 50;
  bool dry_run = false;     // compute everything, write nothing
};

struct PollSummary {
  PollOutcome outcome = PollOutcome::kOk;
  std::int64_t poll_id = 0;  // 0 for a dry run
  std::size_t token_count = 0;
  std::size_t known = 0;     // known tokens not removed, before this poll
  std::size_t vanished = 0;
  bool confirmed_suspect = false;  // this poll confirmed an earlier suspect one
  bool needs_full_list = false;    // "unchanged" could not be used; fetch without known_digest
  std::string message;             // suspect/failed: one sentence
  EventCounts events{};            // events appended by this poll (including the hook's)
  // Tokens this poll recorded a change for (new, changed, vanished); `inventory_reloaded`: the
  // in-memory inventory was read again from the database (another writer), so any token may
  // have changed.
  std::vector<std::string> changed_tokens;
  bool inventory_reloaded = false;
};

class InventoryRecorder {
 public:
  using Hook = std::function<Status(WriteTxn& txn, const Inventory& after, PollSummary& summary)>;

  explicit InventoryRecorder(AuditStore& store) : store_(store) {}
  AuditStore& store() { return store_; }

  Result<PollSummary> record(PollInput in, const Hook& hook = {});

  // The digest of the cluster's last list recorded whole, if an identical list polled before
  // `horizon` would change nothing (no active token expires before then); else "".
  std::string known_digest(const std::string& cluster, Timestamp horizon);

 private:
  struct Cache {
    bool loaded = false;
    std::int64_t version = 0;  // id of the ok poll the inventory reflects
    Inventory tokens;
    std::string digest;        // of the list behind `version` ("" if unknown)
    std::size_t listed = 0;    // tokens in that list
    Timestamp next_expiry = Timestamp::max();
  };
  Cache& cache_for(const std::string& cluster);

  AuditStore& store_;
  std::mutex mu_;  // guards caches_ (the map, not the entries: one poll per cluster at a time)
  std::unordered_map<std::string, Cache> caches_;
};

}  // namespace tw::storage

#pragma once
// Records one poll of one cluster: the snapshot diff, its events, token rows and the poll row,
// in one transaction (SPEC §3).
//
// - A failed poll writes its poll row and a poll_failed event, and no token event.
// - A token missing from the list is removed only when a direct read confirms it (all vanished
//   tokens up to kRemovalSample, else a sample of that size): 404 → token_removed; shown revoked
//   → token_revoked; still active, or the read failed → the poll is `suspect`, nothing recorded.
//   A revoked or expired token left out of a list is hidden, not vanished. A removed token listed
//   again is token_reappeared.
// - If more than max_vanished_percent of the known tokens vanished, the poll is `suspect`: its
//   row and a poll_suspect event are written and nothing else, until a later poll sees the same
//   tokens vanish (same digest) and confirms it.
// - A poll that changes nothing writes only its poll row.
// The recorder keeps each cluster's inventory in memory and checks, inside the transaction, that
// no other process recorded a poll meanwhile (else it reloads), so events are never doubled.
// It also remembers the digest of the last list it recorded whole: a source told that digest
// (known_digest) may answer "unchanged" instead of a list, and then only the poll row is written
// — the steady state costs no decoding and no diff — plus, for the active tokens whose expiry
// has passed since, the same `active → expired` changes a full compare would record.
// Every successful poll also saves, in its transaction, a checkpoint of what it established
// (the list digest, when the clock alone could change an outcome, which evaluation the hook ran,
// the audit log's last seq): a new process (a one-shot `poll`) that opts in (saved_digest,
// PollInput::use_checkpoint) records an identical list from it without loading the inventory,
// and without the hook — unless another process recorded anything since, the time has come, or
// the evaluation differs, in which case the list is fetched and compared in full.
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

// A direct read of one token the list left out (REST GET …/tokens/{id}; influxctl token get).
struct DirectRead {
  bool ok = false;             // false: the read failed (error says why)
  std::optional<Token> token;  // with ok: nullopt when the cluster says the token does not exist
  std::string error;
};

// How many vanished tokens are read directly before their removal is recorded: all of them up
// to this number, else this many spread evenly over the sorted ids.
inline constexpr std::size_t kRemovalSample = 20;

// The vanished ids (sorted) whose direct reads confirm a removal.
std::vector<std::string> removal_sample(const std::vector<std::string>& sorted_vanished);

struct PollInput {
  std::string cluster;
  Timestamp started_at;
  Timestamp finished_at;
  std::optional<std::vector<Token>> tokens;  // nullopt: the poll failed (error says why)
  bool unchanged = false;  // the source found the list identical to known_digest()
  std::string digest;      // the list's digest, if the source gave one
  // The checkpoint may stand for the inventory (see above): an identical list is recorded
  // without loading it and without running the hook.
  bool use_checkpoint = false;
  // Identity of what the hook evaluates (policies, settings, version); saved with the
  // checkpoint, which stands only for the same evaluation. "" for none.
  std::string evaluation;
  std::string error;  // failed: one sentence
  int max_vanished_percent = 50;
  bool dry_run = false;  // compute everything, write nothing
  // Direct reads of the tokens the recorder asked about (PollSummary::to_confirm), by id.
  std::unordered_map<std::string, DirectRead> confirmations;
};

struct PollSummary {
  PollOutcome outcome = PollOutcome::kOk;
  std::int64_t poll_id = 0;  // 0 for a dry run
  std::size_t token_count = 0;
  std::size_t known = 0;  // known tokens not removed, before this poll
  std::size_t vanished = 0;
  bool confirmed_suspect = false;  // this poll confirmed an earlier suspect one
  bool needs_full_list = false;    // "unchanged" could not be used; fetch without known_digest
  // Tokens vanished from the list: nothing is recorded until these ids are read directly
  // (PollInput::confirmations) and the same input is recorded again.
  bool needs_confirmation = false;
  std::vector<std::string> to_confirm;
  std::vector<std::string> reappeared;  // listed again after token_removed
  Timestamp list_started_at;            // when the list this poll recorded was asked for
  std::string message;                  // suspect/failed: one sentence
  EventCounts events{};                 // events appended by this poll (including the hook's)
  // Tokens this poll recorded a change for (new, changed, vanished); `inventory_reloaded`: the
  // in-memory inventory was read again from the database (another writer), so any token may
  // have changed.
  std::vector<std::string> changed_tokens;
  bool inventory_reloaded = false;
  bool from_checkpoint = false;  // recorded from the saved checkpoint: no inventory, no hook
  // Set by the hook: until then, a poll that changes nothing gives the hook nothing to do.
  Timestamp hook_due = Timestamp::max();
};

class InventoryRecorder {
 public:
  using Hook = std::function<Status(WriteTxn& txn, const Inventory& after, PollSummary& summary)>;

  explicit InventoryRecorder(AuditStore& store) : store_(store) {}
  AuditStore& store() { return store_; }

  Result<PollSummary> record(PollInput in, const Hook& hook = {}) { return record_input(in, hook); }
  // The same; `in` keeps its tokens when the answer is needs_confirmation or needs_full_list.
  Result<PollSummary> record_input(PollInput& in, const Hook& hook = {});

  // The digest of the cluster's last list recorded whole, while the inventory in memory is
  // current; else "". An identical list then changes nothing but the expiries that have passed.
  std::string known_digest(const std::string& cluster);
  // The same from the checkpoint saved in the database (a new process): the digest if the
  // checkpoint is for `evaluation` and nothing it stands for can change before `horizon`; else
  // "" (also on a database error: the list is then compared in full).
  std::string saved_digest(const std::string& cluster, Timestamp horizon,
                           const std::string& evaluation);

 private:
  struct Cache {
    bool loaded = false;
    std::int64_t version = 0;  // id of the ok poll the inventory reflects
    Inventory tokens;
    std::string digest;      // of the list behind `version` ("" if unknown)
    std::size_t listed = 0;  // tokens in that list
    Timestamp next_expiry = Timestamp::max();
  };
  struct Step;  // one call's input, transaction and answer (recorder.cpp)
  Cache& cache_for(const std::string& cluster);
  // The steps of record_input, in order; each returns the answer when it ends the call.
  Result<PollSummary> record_failed(Step& s);
  Result<PollSummary> record_unchanged(Step& s, bool current);
  Result<PollSummary> record_expiries(Step& s);
  Result<PollSummary> record_from_checkpoint(Step& s);
  Result<PollSummary> record_list(Step& s, bool current);
  std::optional<Result<PollSummary>> hold_for_vanished(Step& s, ChangePlan& plan);
  Status write_changes(Step& s, const ChangePlan& plan);
  void update_cache(Step& s, const ChangePlan& plan, bool current);
  Result<PollSummary> hold_as_suspect(Step& s, std::string message, std::string detail);
  Result<PollSummary> finish(Step& s, std::size_t listed, bool intact);

  AuditStore& store_;
  std::mutex mu_;  // guards caches_ (the map, not the entries: one poll per cluster at a time)
  std::unordered_map<std::string, Cache> caches_;
};

}  // namespace tw::storage

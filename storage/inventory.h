#pragma once
// The recorded inventory of one cluster and the snapshot diff that turns a fresh token list into
// audit events (SPEC §3).
//
// plan_changes is a pure function: known state + fetched list + now -> the changes, each pointing
// into its inputs. change_events renders one change as its audit events, so a recorder can write
// a 100k-token first poll without holding 100k event details at once. diff_inventory does both
// and materializes the result (tests, previews). Order is stable: fetched tokens in list order,
// then vanished tokens by id.
//
// Thread safety: pure functions and value types.

#include <string>
#include <unordered_map>
#include <vector>

#include "core/audit_event.h"
#include "core/token.h"

namespace tw::storage {

struct KnownToken {
  Token token;
  TokenStatus status = TokenStatus::kActive;
  Timestamp first_seen;
  Timestamp last_seen;
};

using Inventory = std::unordered_map<std::string, KnownToken>;

struct Change {
  enum class Type { kNew, kChanged, kVanished };
  Type type = Type::kNew;
  const Token* token = nullptr;  // kNew/kChanged: the fetched token; kVanished: the known one
  const KnownToken* before =
      nullptr;  // kChanged, kVanished, and kNew when a removed token reappears
  TokenStatus status = TokenStatus::kActive;  // the status to record
  // kVanished: how its removal was confirmed ("direct_read", "sample"); empty: not said.
  std::string_view confirmed_by;
};

struct ChangePlan {
  std::vector<Change> changes;
  std::size_t known_present = 0;  // known tokens not already removed
  std::vector<std::string>
      vanished_ids;  // sorted; revoked tokens left out of a list are not vanished
};

ChangePlan plan_changes(const Inventory& known, const std::vector<Token>& fetched, Timestamp now);
// The changes the clock alone made since `known` was recorded, for a list whose bytes are the
// same: each active token whose expiry has passed at `now`, as the `active → expired` change
// plan_changes would find comparing that same list (in token id order).
ChangePlan plan_expiries(const Inventory& known, Timestamp now);

// The audit events of one change. `first_poll`: the cluster never had a successful poll, so new
// tokens are token_discovered rather than token_created.
std::vector<NewEvent> change_events(const std::string& cluster, const Change& change,
                                    bool first_poll);

// The inventory row after a change. `last_ok_poll`: when the cluster was last seen whole (the
// last_seen of a vanished token).
KnownToken change_row(const Change& change, Timestamp now, Timestamp last_ok_poll);

struct DiffResult {
  std::vector<NewEvent> events;
  std::vector<KnownToken> upserts;        // rows to write (new, changed, removed)
  std::vector<std::string> vanished_ids;  // sorted
  std::size_t known_present = 0;
};

DiffResult diff_inventory(const std::string& cluster, const Inventory& known,
                          const std::vector<Token>& fetched, Timestamp now, bool first_poll,
                          Timestamp last_ok_poll);

// Digest identifying a set of vanished tokens (confirms a suspect poll on the next one).
std::string vanished_digest(const std::vector<std::string>& sorted_ids);

// Applies upserts to an inventory (after they were committed).
void apply_upserts(Inventory& inventory, std::vector<KnownToken> upserts);

// The earliest expiry among active tokens (Timestamp::max() if none): until then, an unchanged
// token list means an unchanged inventory.
Timestamp next_expiry(const Inventory& inventory);

}  // namespace tw::storage

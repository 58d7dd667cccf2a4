#pragma once
// The recorded inventory of one cluster and the snapshot diff that turns a fresh token list into
// audit events (SPEC §3).
//
// diff_inventory is a pure function: known state + fetched list + now -> events and the rows to
// write. Events come in a stable order: fetched tokens in list order, then vanished tokens by id.
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

struct DiffResult {
  std::vector<NewEvent> events;
  std::vector<KnownToken> upserts;        // rows to write (new, changed, removed)
  std::vector<std::string> vanished_ids;  // known, not removed, missing from the list; sorted
  std::size_t known_present = 0;          // known tokens not already removed
};

// `first_poll`: the cluster never had a successful poll, so every token is token_discovered.
// `last_ok_poll`: when the cluster was last seen whole (last_seen of removed tokens).
DiffResult diff_inventory(const std::string& cluster, const Inventory& known,
                          const std::vector<Token>& fetched, Timestamp now, bool first_poll,
                          Timestamp last_ok_poll);

// Digest identifying a set of vanished tokens (confirms a suspect poll on the next one).
std::string vanished_digest(const std::vector<std::string>& sorted_ids);

// Applies upserts to an inventory (after they were committed).
void apply_upserts(Inventory& inventory, std::vector<KnownToken> upserts);

}  // namespace tw::storage

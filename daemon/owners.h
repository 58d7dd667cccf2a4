#pragma once
// Keeps one cluster's token owners current (issue 14, docs/owners.md): at every successful poll,
// inside its transaction, the tokens that changed — every token when the [[owners]] rules changed
// or the inventory was read again — are resolved with the rules, and each resolution that differs
// from the recorded one is written to token_owners. A known token whose owner, team or rule
// changed also gets an `owner_changed` event (cause "description_changed" or "rules_changed"); a
// new token's owner is recorded with it, without an event of its own. A token no rule matches has
// no row (the inventory shows NULL). Tokens whose ownership changed are added to the poll's
// changed_tokens, so the enforcer judges them again (the `orphaned` policy, alert labels).
//
// Thread safety: the poller's thread only (one poll per cluster at a time).
// Errors: kDatabase from the transaction; the cache is then read again at the next poll.

#include <memory>
#include <string>
#include <unordered_map>

#include "core/ownership.h"
#include "core/result.h"
#include "core/time.h"
#include "policy/owners.h"
#include "storage/audit_store.h"
#include "storage/recorder.h"

namespace tw::daemon {

// The configuration's [[owners]] rules compiled; null when there are none.
Result<std::shared_ptr<const policy::OwnerRules>> compile_owner_rules(
    const std::vector<policy::OwnerRuleSpec>& rules);

class OwnerTracker {
 public:
  explicit OwnerTracker(std::string cluster) : cluster_(std::move(cluster)) {}

  // New rules (start, reload); applied at the next poll. Null: no [[owners]] rules.
  void set_rules(std::shared_ptr<const policy::OwnerRules> rules) { rules_ = std::move(rules); }
  const policy::OwnerRules* rules() const { return rules_.get(); }
  // Identity of the rules for evaluation checkpoints ("" without rules).
  std::string identity() const { return rules_ ? rules_->identity() : std::string(); }

  // In the poll's transaction. `now`: the poll's time (a token first seen then is new).
  Status on_poll(storage::WriteTxn& txn, const storage::Inventory& inventory,
                 storage::PollSummary& s, Timestamp now);
  // After the transaction: a rolled-back poll leaves the cache to be read again.
  void after_commit(bool committed);

  // Whether the last poll changed any token's ownership (alerts carry owners: rebuild them).
  bool changed() const { return changed_; }
  // The token's owner as last resolved; an unmatched Ownership when no rule matched.
  const Ownership& of(const std::string& token_id) const;

 private:
  Status load(storage::WriteTxn& txn);
  Status update(storage::WriteTxn& txn, const std::string& id, const storage::KnownToken& k,
                bool token_changed, Timestamp now, storage::PollSummary& s);

  std::string cluster_;
  std::shared_ptr<const policy::OwnerRules> rules_;
  bool loaded_ = false;
  bool changed_ = false;
  std::string resolved_with_;  // identity of the rules the cache was resolved with
  std::unordered_map<std::string, Ownership> current_;  // owned tokens only
};

}  // namespace tw::daemon

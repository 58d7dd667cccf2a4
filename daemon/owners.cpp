#include "daemon/owners.h"

#include <algorithm>

#include "storage/owners.h"

namespace tw::daemon {
Result<std::shared_ptr<const policy::OwnerRules>> compile_owner_rules(
    const std::vector<policy::OwnerRuleSpec>& rules) {
  if (rules.empty()) return std::shared_ptr<const policy::OwnerRules>();
  return policy::OwnerRules::compile(rules);
}

const Ownership& OwnerTracker::of(const std::string& token_id) const {
  auto it = current_.find(token_id);
  return it == current_.end() ? kNoOwner : it->second;
}

Status OwnerTracker::load(storage::WriteTxn& txn) {
  auto rows = storage::load_owners(txn.db(), cluster_);
  if (!rows.ok()) return rows.take_error();
  current_ = std::move(*rows);
  std::erase_if(current_, [](const auto& kv) { return !kv.second.matched(); });
  // What is recorded was resolved with rules this process has not seen: resolve everything.
  resolved_with_.assign(1, '\n');
  loaded_ = true;
  return ok_status();
}

Status OwnerTracker::update(storage::WriteTxn& txn, const std::string& id,
                            const storage::KnownToken& k, bool token_changed, Timestamp now,
                            storage::PollSummary& s) {
  Ownership next = rules_ && k.status != TokenStatus::kRemoved ? rules_->resolve(cluster_, k.token)
                                                               : Ownership{};
  if (k.status == TokenStatus::kRemoved) next = of(id);  // a removed token keeps its last owner
  const Ownership& before = of(id);
  if (next == before) return ok_status();
  if (!storage::put_owner(txn, cluster_, id, next, now).ok()) {
    return make_error(ErrorCode::kDatabase, "could not record the owner of token " + id);
  }
  const bool is_new = k.first_seen >= now;
  if (!is_new) {
    auto e = storage::owner_changed_event(cluster_, id, before, next,
                                          token_changed ? "description_changed" : "rules_changed");
    auto seq = txn.append(e, now);
    if (!seq.ok()) return seq.take_error();
  }
  if (next.matched()) {
    current_[id] = std::move(next);
  } else {
    current_.erase(id);
  }
  if (!token_changed) s.changed_tokens.push_back(id);
  changed_ = true;
  return ok_status();
}

Status OwnerTracker::on_poll(storage::WriteTxn& txn, const storage::Inventory& inventory,
                             storage::PollSummary& s, Timestamp now) {
  changed_ = false;
  if (!loaded_ || s.inventory_reloaded) TW_RETURN_IF_ERROR(load(txn));
  const std::string identity = this->identity();
  if (identity.empty() && current_.empty()) {
    resolved_with_ = identity;  // no rules and nobody owned: nothing to resolve
    return ok_status();
  }
  std::vector<std::string> changed = s.changed_tokens;
  std::sort(changed.begin(), changed.end());
  if (resolved_with_ != identity) {
    for (const auto& [id, k] : inventory) {
      const bool token_changed = std::binary_search(changed.begin(), changed.end(), id);
      TW_RETURN_IF_ERROR(update(txn, id, k, token_changed, now, s));
    }
    resolved_with_ = identity;
    return ok_status();
  }
  for (const auto& id : changed) {
    auto it = inventory.find(id);
    if (it != inventory.end()) TW_RETURN_IF_ERROR(update(txn, id, it->second, true, now, s));
  }
  return ok_status();
}

void OwnerTracker::after_commit(bool committed) {
  if (!committed) {
    loaded_ = false;
    current_.clear();
  }
}

}  // namespace tw::daemon

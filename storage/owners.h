#pragma once
// The owner of each token and the expiry notices sent (issue 14): every SQL statement about
// the token_owners and expiry_notices tables, and the audit events that go with them.
//
// token_owners holds the latest resolution of every token a rule matched (docs/owners.md); a
// token no rule matched has no row. expiry_notices remembers which
// notify_before thresholds were announced for which expiry, so that a restarted daemon does not
// announce them again.
//
// Thread safety: use a Db / WriteTxn from one thread. Errors: kDatabase.

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/audit_event.h"
#include "core/ownership.h"
#include "core/result.h"
#include "core/time.h"

namespace tw::storage {

class Db;
class WriteTxn;

// The recorded resolution of every token of `cluster`, by token id.
Result<std::unordered_map<std::string, Ownership>> load_owners(Db& db, const std::string& cluster);

// Inserts or replaces one token's resolution; an unmatched one deletes the token's row.
Status put_owner(WriteTxn& txn, const std::string& cluster, const std::string& token_id,
                 const Ownership& ownership, Timestamp at);

// owner_changed: {"owner","team","owner_rule","contact","previous_owner","previous_team",
// "previous_owner_rule","cause"} (null for what is empty); cause is "description_changed" or
// "rules_changed".
NewEvent owner_changed_event(const std::string& cluster, const std::string& token_id,
                             const Ownership& before, const Ownership& after,
                             std::string_view cause);

struct SentNotice {
  std::string token_id;
  std::string policy;
  std::string expires_at;  // format_timestamp of the expiry the notice was about
  std::string threshold;   // as configured, e.g. "7d"
};

// The notices recorded for `cluster`.
Result<std::vector<SentNotice>> load_notices(Db& db, const std::string& cluster);

// Forgets the notices about expiries before `now` (their tokens have expired: no notice about
// that expiry can be due again). The notice_sent events stay in the audit log.
Status prune_notices(WriteTxn& txn, const std::string& cluster, Timestamp now);

// Appends a notice_sent event with `detail` and remembers the notice; returns the event's seq.
Result<std::int64_t> record_notice(WriteTxn& txn, const std::string& cluster,
                                   const SentNotice& notice, std::string detail, Timestamp at);

}  // namespace tw::storage

#pragma once
// Who a token belongs to, as the [[owners]] rules resolve it (policy/owners.h).
//
// InfluxDB tokens carry no owner field: tokenwarden attributes each token from its id, its
// description and its cluster. `rule` names the rule that matched; an empty rule means no rule
// matched (the token is orphaned). owner and team may each be empty when the rule assigns only
// the other. Values are single-line text of at most kMaxOwnerValue bytes (captures from a
// description are checked before they are used), so they are safe as alert and metric labels.
//
// Thread safety: a plain value type.

#include <cstddef>
#include <string>

namespace tw {

inline constexpr std::size_t kMaxOwnerValue = 128;

struct Ownership {
  std::string owner;
  std::string team;
  std::string contact;  // an address for notices (mail, chat handle, URL); may be empty
  std::string rule;     // the [[owners]] rule that matched; "": none (orphaned)
  bool matched() const { return !rule.empty(); }
  bool operator==(const Ownership&) const = default;
};

// Nobody: what an unresolved or orphaned token is owned by.
inline const Ownership kNoOwner{};

}  // namespace tw

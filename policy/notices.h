#pragma once
// The expiry notice ladder of an expires_soon policy (issue 14, `notify_before`): which
// threshold a token's remaining time has crossed, and when it crosses the next one.
//
// With thresholds 30d, 7d and 1d, a token with 12 days left is at "30d", with 5 days at "7d",
// with 20 hours at "1d". Only the current threshold is announced: a token first seen with 5 days
// left gets the "7d" notice, never the "30d" one. A notice is about one expiry: a new expires_at
// starts the ladder again (the caller keys what it sent by expires_at).
//
// Thread safety: pure functions. Errors: none.

#include <optional>
#include <span>
#include <string>

#include "core/time.h"

namespace tw::policy {

struct NoticeStep {
  // The smallest threshold not below the time left; nullopt: more time left than every
  // threshold, or already expired.
  std::optional<Duration> current;
  // When the time left falls to the next smaller threshold (max(): no further crossing).
  Timestamp next = Timestamp::max();
};

// `thresholds` in any order; they are durations before expires_at.
NoticeStep notice_step(std::span<const Duration> thresholds, Timestamp expires_at, Timestamp now);

// The threshold as it appears in labels, events and the expiry_notices table ("7d").
std::string threshold_label(Duration threshold);

}  // namespace tw::policy

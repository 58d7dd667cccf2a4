#pragma once
// Token timestamps that tokenwarden checks instead of trusting (issue 9; docs/sources.md).
//
// - A createdAt more than kFutureTolerance after the poll time is `created_in_future` (a skewed
//   or buggy cluster clock, or a forged value). The policy engine measures ages from the earlier
//   of createdAt and the token's first_seen, so such a token cannot escape age-based policies.
// - A "placeholder" timestamp (0001-01-01T00:00:00Z, Go's zero time, or 1970-01-01T00:00:00Z,
//   the zero protobuf Timestamp, as a string or a {seconds,nanos} object, or an empty string)
//   means *unset*. For expiresAt/revokedAt that is all it means; a placeholder createdAt is also
//   the anomaly `created_at_unset` (the token is then aged from its first_seen).
// Each anomaly is recorded once per token and reason, as a token_anomaly audit event with the
// detail {"reason","value","poll_time"}.
//
// Thread safety: constants, value types and pure functions.

#include <algorithm>
#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "core/time.h"
#include "core/token.h"

namespace tw {

// How far ahead of the poll time a createdAt may be before it is an anomaly: covers ordinary
// clock skew between the cluster and the admin host.
inline constexpr Duration kFutureTolerance = std::chrono::minutes(5);

inline constexpr std::string_view kCreatedInFuture = "created_in_future";
inline constexpr std::string_view kCreatedAtUnset = "created_at_unset";
inline constexpr std::array<std::string_view, 2> kAnomalyReasons = {kCreatedInFuture,
                                                                    kCreatedAtUnset};

struct TimeAnomaly {
  std::string token_id;
  std::string_view reason;  // one of kAnomalyReasons
  std::string value;        // the value seen: as the source sent it, or format_timestamp()
  bool operator==(const TimeAnomaly&) const = default;
};

// 0001-01-01T00:00:00Z or 1970-01-01T00:00:00Z exactly (whatever the notation was).
inline bool is_placeholder_time(Timestamp t) {
  constexpr auto kGoZero = std::chrono::sys_days(std::chrono::year(1) / 1 / 1);
  return t == Timestamp{} || t == Timestamp(kGoZero);
}

// created_in_future if the token's createdAt is more than kFutureTolerance after `poll_time`.
inline std::optional<TimeAnomaly> future_created_at(const Token& token, Timestamp poll_time) {
  if (!token.created_at || *token.created_at <= poll_time + kFutureTolerance) return std::nullopt;
  return TimeAnomaly{token.id, kCreatedInFuture, format_timestamp(*token.created_at)};
}

// The earlier of createdAt and first_seen: where the policy engine measures ages from.
inline Timestamp age_base(const std::optional<Timestamp>& created_at, Timestamp first_seen) {
  return created_at ? std::min(*created_at, first_seen) : first_seen;
}

}  // namespace tw

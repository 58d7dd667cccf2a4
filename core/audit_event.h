#pragma once
// The kinds of audit events (SPEC §3) and an event about to be appended to the audit log.
//
// Thread safety: plain value types.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tw {

enum class EventKind {
  kTokenDiscovered,
  kTokenCreated,
  kTokenUpdated,
  kTokenRevoked,
  kTokenExpired,
  kTokenRemoved,
  kTokenReappeared,
  kPollFailed,
  kPollSuspect,
  kViolationOpened,
  kViolationResolved,
  kActionPlanned,
  kActionApproved,
  kActionSucceeded,
  kActionFailed,
  kActionSkipped,
  kEnforcementHalted,
  kExemptionApplied,
  kConfigApplied,
  kDaemonStarted,
  kDaemonStopped,
  kTokenAnomaly,
  kConfigRejected,
  kCheckpointSigned,
  kLeadershipAcquired,
  kLeadershipLost,
  kActionObserved,
  kOwnerChanged,
  kNoticeSent,
};

inline constexpr int kEventKindCount = 29;

// Events appended, per kind (indexed by EventKind).
using EventCounts = std::array<std::int64_t, kEventKindCount>;

std::string_view to_string(EventKind kind);
std::optional<EventKind> parse_event_kind(std::string_view name);
// token_discovered … token_reappeared: events that change the recorded inventory.
bool is_token_event(EventKind kind);

struct NewEvent {
  EventKind kind;
  std::string cluster;   // empty: not about one cluster (daemon events)
  std::string token_id;  // empty: not about one token
  std::string detail;    // canonical JSON object; "{}" if nothing to say
};

}  // namespace tw

#include "core/audit_event.h"

#include <array>

namespace tw {
namespace {

constexpr std::array<std::string_view, kEventKindCount> kNames{
    "token_discovered",    "token_created",     "token_updated",      "token_revoked",
    "token_expired",       "token_removed",     "token_reappeared",   "poll_failed",
    "poll_suspect",        "violation_opened",  "violation_resolved", "action_planned",
    "action_approved",     "action_succeeded",  "action_failed",      "action_skipped",
    "enforcement_halted",  "exemption_applied", "config_applied",     "daemon_started",
    "daemon_stopped",      "token_anomaly",     "config_rejected",    "checkpoint_signed",
    "leadership_acquired", "leadership_lost",   "action_observed",    "owner_changed",
    "notice_sent",
};

}  // namespace

std::string_view to_string(EventKind kind) { return kNames[static_cast<std::size_t>(kind)]; }

std::optional<EventKind> parse_event_kind(std::string_view name) {
  for (std::size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == name) return static_cast<EventKind>(i);
  }
  return std::nullopt;
}

bool is_token_event(EventKind kind) {
  return kind >= EventKind::kTokenDiscovered && kind <= EventKind::kTokenReappeared;
}

}  // namespace tw

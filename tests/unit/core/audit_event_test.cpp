// Tests for core/audit_event.h: the 20 event names of SPEC §3, the three issue 9 added
// (token_reappeared, token_anomaly, config_rejected), issue 12's checkpoint_signed and issue 13's
// leadership_acquired, leadership_lost and action_observed.

#include "core/audit_event.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace tw {
namespace {

// SPEC §3 and docs/database.md, in the order of the enum.
constexpr const char* kSpecNames[] = {
    "token_discovered",    "token_created",     "token_updated",      "token_revoked",
    "token_expired",       "token_removed",     "token_reappeared",   "poll_failed",
    "poll_suspect",        "violation_opened",  "violation_resolved", "action_planned",
    "action_approved",     "action_succeeded",  "action_failed",      "action_skipped",
    "enforcement_halted",  "exemption_applied", "config_applied",     "daemon_started",
    "daemon_stopped",      "token_anomaly",     "config_rejected",    "checkpoint_signed",
    "leadership_acquired", "leadership_lost",   "action_observed",    "owner_changed",
    "notice_sent"};

TEST(AuditEvent, TwentyNineKinds) {
  static_assert(kEventKindCount == 29);
  EXPECT_EQ(std::size(kSpecNames), static_cast<std::size_t>(kEventKindCount));
}

TEST(AuditEvent, NamesMatchTheSpecAndRoundTrip) {
  std::set<std::string> seen;
  for (int i = 0; i < kEventKindCount; ++i) {
    auto kind = static_cast<EventKind>(i);
    std::string name(to_string(kind));
    EXPECT_EQ(name, kSpecNames[i]) << i;
    EXPECT_TRUE(seen.insert(name).second) << "duplicate " << name;
    auto back = parse_event_kind(name);
    ASSERT_TRUE(back.has_value()) << name;
    EXPECT_EQ(*back, kind) << name;
  }
}

TEST(AuditEvent, UnknownNames) {
  for (const char* bad :
       {"", "token", "TOKEN_CREATED", "token_created ", "daemon_restarted", "token-created"}) {
    EXPECT_FALSE(parse_event_kind(bad).has_value()) << bad;
  }
}

TEST(AuditEvent, TokenEventsAreTheFirstSeven) {
  for (int i = 0; i < kEventKindCount; ++i) {
    auto kind = static_cast<EventKind>(i);
    EXPECT_EQ(is_token_event(kind), i < 7) << to_string(kind);
  }
  EXPECT_TRUE(is_token_event(EventKind::kTokenReappeared));
  EXPECT_FALSE(is_token_event(EventKind::kTokenAnomaly));
  EXPECT_TRUE(is_token_event(EventKind::kTokenDiscovered));
  EXPECT_TRUE(is_token_event(EventKind::kTokenRemoved));
  EXPECT_FALSE(is_token_event(EventKind::kPollFailed));
}

}  // namespace
}  // namespace tw

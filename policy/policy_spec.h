#pragma once
// The policy and exemption model as configured (SPEC §2 "Policy kinds"): value types filled by
// the config loader and compiled by the policy engine.
//
// Thread safety: plain value types. Errors: the parse_* helpers return nullopt for unknown names.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/time.h"

namespace tw::policy {

enum class Kind {
  kMaxLifetime,
  kMaxAge,
  kForbiddenGrant,
  kAllDatabasesGrant,
  kMaxDatabases,
  kDescriptionPattern,
  kExpiresSoon,
  kOrphaned,
};
enum class Severity { kInfo, kWarning, kCritical };
enum class Action { kAlert, kRestrict, kRevoke };
enum class Mode { kEnforce, kMonitor };

std::string_view to_string(Kind k);
std::string_view to_string(Severity s);
std::string_view to_string(Action a);
std::string_view to_string(Mode m);
std::optional<Kind> parse_kind(std::string_view s);
std::optional<Severity> parse_severity(std::string_view s);
std::optional<Action> parse_action(std::string_view s);
std::optional<Mode> parse_mode(std::string_view s);

struct Scope {
  std::vector<std::string> clusters;          // globs; empty: every cluster
  std::string description;                    // regex (RE2); empty: every token
  std::map<std::string, std::string> labels;  // all must match the cluster's labels
};

struct PolicySpec {
  std::string name;
  Kind kind = Kind::kMaxLifetime;
  // Parameters (which ones apply depends on kind).
  std::optional<Duration> max_lifetime;
  bool require_expiry = true;
  std::optional<Duration> max_age;
  std::vector<std::string> actions;    // "read" / "write"
  std::vector<std::string> databases;  // globs
  std::optional<std::int64_t> max;
  std::string pattern;  // regex (RE2)
  std::optional<Duration> within;
  // expires_soon: the notice ladder (policy/notices.h), distinct, largest first; empty: none.
  std::vector<Duration> notify_before;
  // orphaned: owners a matched token may have; empty: any owner (only unmatched tokens violate).
  std::vector<std::string> known_owners;
  // Handling.
  Severity severity = Severity::kWarning;
  Action action = Action::kAlert;
  std::optional<Mode> mode;  // nullopt: the daemon's mode
  Duration grace_period = std::chrono::hours(72);
  Duration min_token_age{0};
  bool require_approval = false;
  Scope scope;
};

struct ExemptionSpec {
  std::string policy;       // a policy name or "*"
  std::string token_id;     // exactly one of token_id and description
  std::string description;  // regex (RE2)
  std::string cluster;      // empty: every cluster
  std::string reason;
  Timestamp expires;
};

// Checks that a user regex compiles under RE2 (linear-time matching, no backreferences).
Status validate_regex(std::string_view pattern);

}  // namespace tw::policy

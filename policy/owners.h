#pragma once
// Owner attribution: the [[owners]] rules, compiled once, resolve every token to an Ownership
// (issue 14). Pure: no I/O, no clock.
//
// A rule matches a token when every matcher it has matches: `token_id` (exact), `description_regex`
// (RE2, searched anywhere in the description), `description_glob` (the whole description) and
// `clusters` (globs on the cluster name). The first matching rule wins. It assigns `owner`, `team`,
// `contact` and `labels`; a description_regex with a named group `owner` or `team` captures that
// value from the description instead (the rule's own value is the fallback when the group did
// not take part). A captured value is trimmed; one that is empty, longer than kMaxOwnerValue bytes
// or holds a control character does not count, and when the rule is then left with neither an
// owner nor a team it does not match (the next rule is tried): a hostile description cannot put
// arbitrary text into an alert label.
//
// Thread safety: an OwnerRules is immutable after compile and may be shared.
// Errors: compile returns kInvalidArgument naming the rule (normally caught by check-config).

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/ownership.h"
#include "core/result.h"
#include "core/token.h"

namespace tw::policy {

struct OwnerRuleSpec {
  std::string name;  // unique; the config loader defaults it to "owners[N]"
  // Matchers (at least one).
  std::string token_id;
  std::string description_regex;  // RE2; named groups `owner` and `team` capture
  std::string description_glob;
  std::vector<std::string> clusters;  // globs; empty: every cluster
  // What a match assigns.
  std::string owner;
  std::string team;
  std::string contact;
  std::map<std::string, std::string> labels;  // extra alert labels (routing), never per token
};

class OwnerRules {
 public:
  static Result<std::shared_ptr<const OwnerRules>> compile(std::vector<OwnerRuleSpec> rules);
  ~OwnerRules();

  Ownership resolve(std::string_view cluster, const Token& token) const;

  const std::vector<OwnerRuleSpec>& specs() const { return specs_; }
  const OwnerRuleSpec* find(std::string_view name) const;
  // A digest of the rules: equal identities resolve every token the same way.
  const std::string& identity() const { return identity_; }

 private:
  struct Compiled;
  OwnerRules() = default;
  std::vector<OwnerRuleSpec> specs_;
  std::string identity_;
  std::unique_ptr<Compiled> compiled_;
};

// Whether a captured or configured owner/team value is usable: non-empty after trimming, at
// most kMaxOwnerValue bytes, no control characters (C0, DEL, C1), no line or paragraph separator
// and no bidirectional override or isolate.
bool valid_owner_value(std::string_view value);

// Whether a regex has a named group `owner` or `team` (any RE2 spelling); false if it does not
// compile.
bool captures_owner(const std::string& regex);

}  // namespace tw::policy

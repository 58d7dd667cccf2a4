#pragma once
// The policy engine: compiled policies and exemptions, and the pure evaluate() (SPEC §2).
//
// PolicySet::compile turns the configured specs into matchers once (RE2 regexes, globs, one
// RE2::Set for every description regex so a description is scanned once per token, not once per
// policy). evaluate() judges one cluster's tokens at `now` — no I/O, no clock — and returns a
// compact finding per (token, policy) violation, with the exemption that suppresses it if any,
// plus the earliest future time at which a verdict could change by the clock alone (ages,
// expiry windows, exemption expiry), so a caller can skip re-evaluating an unchanged inventory.
// Revoked and expired tokens are not judged; nor are tokens younger than min_token_age. Every age
// (min_token_age, max_age, max_lifetime's lifetime) is measured from the earlier of created_at and
// the token's first_seen (first_seen alone when the cluster does not say), so a created_at in the
// future cannot hide a token from age-based policies (core/time_anomaly.h).
//
// Thread safety: a PolicySet is immutable after compile and may be shared; evaluate is pure.
// Errors: compile returns kInvalidArgument naming the policy (normally caught by check-config).

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/ownership.h"
#include "core/result.h"
#include "core/token.h"
#include "policy/policy_spec.h"

namespace tw::policy {

struct ClusterInfo {
  std::string name;
  std::map<std::string, std::string> labels;
};

// A token as the engine sees it.
struct Subject {
  const Token* token = nullptr;
  Timestamp first_seen;  // when tokenwarden first listed it; ages run from min(created_at, this)
  const Ownership* ownership = nullptr;  // null: no rule matched (the `orphaned` policy)
};

struct Finding {
  std::uint32_t policy = 0;     // index into PolicySet::specs()
  std::uint32_t subject = 0;    // index into the subjects given to evaluate()
  std::int32_t exemption = -1;  // index into PolicySet::exemptions() if exempt, else -1
  bool exempt() const { return exemption >= 0; }
};

struct Evaluation {
  std::vector<Finding> findings;  // by subject, then policy
  Timestamp next_change = Timestamp::max();
  // Per subject: the earliest time its verdicts could change by the clock alone (max(): never).
  // Verdicts depend only on the token, its cluster, the policies and the time, so a caller may
  // re-evaluate just the subjects whose time has come.
  std::vector<Timestamp> subject_next_change;
  std::size_t judged = 0;                     // (token, policy) pairs judged
  std::vector<std::size_t> judged_by_policy;  // tokens judged, per policy (index into specs())
};

class PolicySet {
 public:
  static Result<std::shared_ptr<const PolicySet>> compile(std::vector<PolicySpec> policies,
                                                          std::vector<ExemptionSpec> exemptions);
  ~PolicySet();

  const std::vector<PolicySpec>& specs() const { return specs_; }
  const std::vector<ExemptionSpec>& exemptions() const { return exemptions_; }
  const PolicySpec* find(std::string_view name) const;
  std::optional<std::size_t> index_of(std::string_view name) const;
  // Whether the policy applies to tokens of this cluster at all (cluster globs and labels).
  bool applies_to(std::size_t policy, const ClusterInfo& cluster) const;

  // One sentence saying why a token violates a policy (for audit details and alerts); ages are
  // measured as evaluate() measures them (the earlier of created_at and first seen).
  std::string explain(std::size_t policy, const Subject& subject, Timestamp now) const;
  // The permissions that do not violate (what `restrict` leaves the token).
  std::vector<Permission> compliant_permissions(std::size_t policy, const Token& token) const;
  // A stable identity for an exemption across reloads (its fields hashed), for the audit log.
  std::string exemption_key(std::size_t exemption) const;

 private:
  friend Evaluation evaluate(const PolicySet&, const ClusterInfo&, std::span<const Subject>,
                             Timestamp);
  struct Compiled;
  PolicySet() = default;
  std::vector<PolicySpec> specs_;
  std::vector<ExemptionSpec> exemptions_;
  std::unique_ptr<Compiled> compiled_;
};

Evaluation evaluate(const PolicySet& set, const ClusterInfo& cluster,
                    std::span<const Subject> subjects, Timestamp now);

// Whether a policy's scope covers a cluster (its cluster globs and labels; the description regex
// is per token). check-config uses it too, to refuse actions a cluster's source cannot perform.
bool scope_covers(const Scope& scope, const ClusterInfo& cluster);

// Whether a grant is matched by a forbidden_grant/all_databases_grant policy (a grant on "*"
// matches every database pattern; a grant on a non-database resource matches none).
bool grant_matches(const PolicySpec& policy, const Permission& permission);

}  // namespace tw::policy

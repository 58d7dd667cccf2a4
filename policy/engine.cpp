#include "policy/engine.h"

#include <re2/re2.h>
#include <re2/set.h>

#include <algorithm>
#include <unordered_map>

#include "core/sha256.h"
#include "core/strings.h"
#include "core/time_anomaly.h"
#include "policy/notices.h"

namespace tw::policy {
namespace {

constexpr std::uint8_t kRead = 1;
constexpr std::uint8_t kWrite = 2;

std::uint8_t action_bit(std::string_view action) {
  if (action == "read") return kRead;
  if (action == "write") return kWrite;
  return 0;
}

// Ages run from the earlier of createdAt and first_seen: a createdAt in the future (a skewed or
// forged cluster clock) cannot make a token look younger than tokenwarden has known it.
Timestamp age_base(const Subject& s) { return tw::age_base(s.token->created_at, s.first_seen); }

}  // namespace

struct PolicySet::Compiled {
  struct Policy {
    int scope_regex = -1;    // index in `regexes` / the set
    int pattern_regex = -1;  // description_pattern
    std::uint8_t actions = 0;
  };
  struct Exemption {
    int regex = -1;
  };
  std::vector<std::unique_ptr<RE2>> regexes;
  std::unique_ptr<RE2::Set> set;  // the same regexes, matched in one pass
  std::vector<Policy> policies;
  std::vector<Exemption> exemptions;
  std::unordered_map<std::string, std::vector<int>> exemptions_by_token;
  std::vector<int> exemptions_by_regex;

  int add_regex(const std::string& pattern, std::string& error) {
    RE2::Options opts;
    opts.set_log_errors(false);
    auto re = std::make_unique<RE2>(pattern, opts);
    if (!re->ok()) {
      error = re->error();
      return -1;
    }
    regexes.push_back(std::move(re));
    return static_cast<int>(regexes.size() - 1);
  }

  // Indices of the regexes that match `text` (unanchored, as RE2::PartialMatch), into `hits`.
  void match(std::string_view text, std::vector<char>& hits, std::vector<int>& scratch) const {
    std::fill(hits.begin(), hits.end(), 0);
    if (regexes.empty()) return;
    scratch.clear();
    re2::StringPiece piece(text.data(), text.size());
    if (set) {
      RE2::Set::ErrorInfo info{RE2::Set::kNoError};
      bool any = set->Match(piece, &scratch, &info);
      if (any || info.kind == RE2::Set::kNoError) {
        for (int i : scratch) hits[static_cast<std::size_t>(i)] = 1;
        return;
      }
      // The set's DFA ran out of memory on this text: match one regex at a time instead.
    }
    for (std::size_t i = 0; i < regexes.size(); ++i) {
      hits[i] = RE2::PartialMatch(piece, *regexes[i]) ? 1 : 0;
    }
  }
};

PolicySet::~PolicySet() = default;

Result<std::shared_ptr<const PolicySet>> PolicySet::compile(std::vector<PolicySpec> policies,
                                                            std::vector<ExemptionSpec> exemptions) {
  std::shared_ptr<PolicySet> set(new PolicySet());
  set->specs_ = std::move(policies);
  set->exemptions_ = std::move(exemptions);
  set->compiled_ = std::make_unique<Compiled>();
  Compiled& c = *set->compiled_;
  std::string error;
  for (auto& p : set->specs_) {
    // The ladder largest first; `within` defaults to its largest threshold.
    std::sort(p.notify_before.begin(), p.notify_before.end(), std::greater<>());
    if (p.kind == Kind::kExpiresSoon && !p.within && !p.notify_before.empty())
      p.within = p.notify_before.front();
  }
  for (const auto& p : set->specs_) {
    Compiled::Policy cp;
    if (!p.scope.description.empty()) {
      cp.scope_regex = c.add_regex(p.scope.description, error);
      if (cp.scope_regex < 0) {
        return make_error(ErrorCode::kInvalidArgument,
                          "policy " + p.name + ": scope.description: " + error);
      }
    }
    if (p.kind == Kind::kDescriptionPattern) {
      cp.pattern_regex = c.add_regex(p.pattern, error);
      if (cp.pattern_regex < 0) {
        return make_error(ErrorCode::kInvalidArgument, "policy " + p.name + ": pattern: " + error);
      }
    }
    for (const auto& a : p.actions) cp.actions |= action_bit(a);
    c.policies.push_back(cp);
  }
  for (std::size_t i = 0; i < set->exemptions_.size(); ++i) {
    const auto& e = set->exemptions_[i];
    Compiled::Exemption ce;
    if (!e.description.empty()) {
      ce.regex = c.add_regex(e.description, error);
      if (ce.regex < 0) {
        return make_error(ErrorCode::kInvalidArgument,
                          "exemption #" + std::to_string(i) + ": " + error);
      }
      c.exemptions_by_regex.push_back(static_cast<int>(i));
    } else {
      c.exemptions_by_token[e.token_id].push_back(static_cast<int>(i));
    }
    c.exemptions.push_back(ce);
  }
  if (!c.regexes.empty()) {
    RE2::Options opts;
    opts.set_log_errors(false);
    opts.set_max_mem(64 << 20);
    c.set = std::make_unique<RE2::Set>(opts, RE2::UNANCHORED);
    bool ok = true;
    for (const auto& re : c.regexes) ok = ok && c.set->Add(re->pattern(), nullptr) >= 0;
    if (!ok || !c.set->Compile()) c.set.reset();  // fall back to one regex at a time
  }
  return std::shared_ptr<const PolicySet>(std::move(set));
}

const PolicySpec* PolicySet::find(std::string_view name) const {
  for (const auto& p : specs_) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

std::optional<std::size_t> PolicySet::index_of(std::string_view name) const {
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    if (specs_[i].name == name) return i;
  }
  return std::nullopt;
}

bool PolicySet::applies_to(std::size_t policy, const ClusterInfo& cluster) const {
  return scope_covers(specs_[policy].scope, cluster);
}

bool scope_covers(const Scope& scope, const ClusterInfo& cluster) {
  if (!scope.clusters.empty() &&
      std::none_of(scope.clusters.begin(), scope.clusters.end(),
                   [&](const std::string& g) { return glob_match(g, cluster.name); })) {
    return false;
  }
  for (const auto& [k, v] : scope.labels) {
    auto it = cluster.labels.find(k);
    if (it == cluster.labels.end() || it->second != v) return false;
  }
  return true;
}

bool grant_matches(const PolicySpec& policy, const Permission& permission) {
  if (std::find(policy.actions.begin(), policy.actions.end(), permission.action) ==
      policy.actions.end()) {
    return false;
  }
  if (!is_database_resource(permission.resource)) return false;
  if (permission.resource == kAllDatabases) return true;
  if (policy.kind == Kind::kAllDatabasesGrant) return false;
  return std::any_of(policy.databases.begin(), policy.databases.end(),
                     [&](const std::string& g) { return glob_match(g, permission.resource); });
}

std::vector<Permission> PolicySet::compliant_permissions(std::size_t policy,
                                                         const Token& token) const {
  std::vector<Permission> out;
  for (const auto& p : token.permissions) {
    if (!grant_matches(specs_[policy], p)) out.push_back(p);
  }
  return out;
}

std::string PolicySet::explain(std::size_t policy, const Subject& subject, Timestamp now) const {
  const PolicySpec& p = specs_[policy];
  const Token& t = *subject.token;
  const Timestamp created = age_base(subject);
  switch (p.kind) {
    case Kind::kMaxLifetime:
      if (!t.expires_at) return "the token never expires (require_expiry)";
      return "lifetime " +
             format_duration(std::chrono::floor<std::chrono::seconds>(*t.expires_at - created)) +
             " exceeds max_lifetime " + format_duration(*p.max_lifetime);
    case Kind::kMaxAge: {
      const std::string ago =
          format_duration(std::chrono::floor<std::chrono::hours>(now - created)) + " ago";
      std::string age;
      if (!t.created_at) {
        age = "first seen " + ago + " (the cluster gives no created_at)";
      } else if (*t.created_at > subject.first_seen) {
        age =
            "first seen " + ago + " (created_at " + format_timestamp(*t.created_at) + " is later)";
      } else {
        age = "created " + ago;
      }
      return age + ", more than max_age " + format_duration(*p.max_age);
    }
    case Kind::kForbiddenGrant:
    case Kind::kAllDatabasesGrant: {
      std::vector<std::string> grants;
      for (const auto& g : t.permissions) {
        if (grant_matches(p, g)) grants.push_back(g.action + " on " + g.resource);
      }
      std::string what =
          p.kind == Kind::kAllDatabasesGrant
              ? std::string("grants on all databases (*) are forbidden")
              : "forbidden: " + join(p.actions, "/") + " on " + join(p.databases, ", ");
      return "grants " + join(grants, ", ") + " (" + what + ")";
    }
    case Kind::kMaxDatabases: {
      std::vector<std::string> dbs;
      for (const auto& g : t.permissions) {
        if (is_database_resource(g.resource)) dbs.push_back(g.resource);
      }
      std::sort(dbs.begin(), dbs.end());
      dbs.erase(std::unique(dbs.begin(), dbs.end()), dbs.end());
      bool all = std::find(dbs.begin(), dbs.end(), std::string(kAllDatabases)) != dbs.end();
      return all ? "grants on all databases (*), more than max " + std::to_string(*p.max)
                 : "grants on " + std::to_string(dbs.size()) + " databases, more than max " +
                       std::to_string(*p.max);
    }
    case Kind::kDescriptionPattern:
      return "the description does not match " + p.pattern;
    case Kind::kExpiresSoon:
      return "expires at " + (t.expires_at ? format_timestamp(*t.expires_at) : std::string("?")) +
             ", within " + format_duration(*p.within);
    case Kind::kOrphaned:
      if (subject.ownership == nullptr || !subject.ownership->matched())
        return "no [[owners]] rule matches this token";
      return "its owner \"" + printable(subject.ownership->owner, 128) +
             "\" is not in known_owners";
  }
  return "violates " + p.name;
}

std::string PolicySet::exemption_key(std::size_t exemption) const {
  const auto& e = exemptions_[exemption];
  return sha256_hex(e.policy + "\n" + e.token_id + "\n" + e.description + "\n" + e.cluster + "\n" +
                    format_timestamp(e.expires))
      .substr(0, 16);
}

namespace {

// No [[owners]] rule matched, or (known_owners) the owner is not a known one.
bool orphaned(const PolicySpec& p, const Ownership* o) {
  if (o == nullptr || !o->matched()) return true;
  if (p.known_owners.empty()) return false;
  return std::find(p.known_owners.begin(), p.known_owners.end(), o->owner) == p.known_owners.end();
}

}  // namespace

Evaluation evaluate(const PolicySet& set, const ClusterInfo& cluster,
                    std::span<const Subject> subjects, Timestamp now) {
  Evaluation out;
  out.subject_next_change.assign(subjects.size(), Timestamp::max());
  out.judged_by_policy.assign(set.specs_.size(), 0);
  const auto& specs = set.specs_;
  const PolicySet::Compiled& c = *set.compiled_;
  std::vector<std::uint32_t> applicable;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    if (set.applies_to(i, cluster)) applicable.push_back(static_cast<std::uint32_t>(i));
  }
  if (applicable.empty()) return out;
  // Exemptions that can apply here at all: right cluster, not expired.
  std::vector<char> exemption_live(set.exemptions_.size(), 0);
  for (std::size_t i = 0; i < set.exemptions_.size(); ++i) {
    const auto& e = set.exemptions_[i];
    if ((e.cluster.empty() || e.cluster == cluster.name) && e.expires > now) exemption_live[i] = 1;
  }
  Timestamp* subject_next = nullptr;
  auto lower = [&](Timestamp t) {
    if (t <= now) return;
    if (t < out.next_change) out.next_change = t;
    if (subject_next != nullptr && t < *subject_next) *subject_next = t;
  };
  std::vector<char> hits(c.regexes.size(), 0);
  std::vector<int> scratch;
  std::vector<std::string_view> dbs;

  for (std::size_t si = 0; si < subjects.size(); ++si) {
    const Subject& s = subjects[si];
    const Token& t = *s.token;
    subject_next = &out.subject_next_change[si];
    if (t.revoked_at || (t.expires_at && *t.expires_at <= now)) continue;  // not judged
    if (t.expires_at) lower(*t.expires_at);  // it stops being judged then
    const Timestamp base = age_base(s);
    c.match(t.description, hits, scratch);

    for (std::uint32_t pi : applicable) {
      const PolicySpec& p = specs[pi];
      const auto& cp = c.policies[pi];
      if (p.min_token_age.count() > 0 && base + p.min_token_age > now) {
        lower(base + p.min_token_age);
        continue;
      }
      if (cp.scope_regex >= 0 && !hits[static_cast<std::size_t>(cp.scope_regex)]) continue;
      ++out.judged;
      ++out.judged_by_policy[pi];
      bool violated = false;
      switch (p.kind) {
        case Kind::kMaxLifetime:
          violated = t.expires_at ? (*t.expires_at - base > *p.max_lifetime) : p.require_expiry;
          break;
        case Kind::kMaxAge:
          violated = now - base > *p.max_age;
          if (!violated) lower(base + *p.max_age + Duration(1));
          break;
        case Kind::kForbiddenGrant:
          for (const auto& g : t.permissions) {
            if ((action_bit(g.action) & cp.actions) == 0) continue;
            if (grant_matches(p, g)) {
              violated = true;
              break;
            }
          }
          break;
        case Kind::kAllDatabasesGrant:
          for (const auto& g : t.permissions) {
            if (g.resource == kAllDatabases && (action_bit(g.action) & cp.actions) != 0) {
              violated = true;
              break;
            }
          }
          break;
        case Kind::kMaxDatabases: {
          dbs.clear();
          bool all = false;
          for (const auto& g : t.permissions) {
            if (!is_database_resource(g.resource)) continue;
            if (g.resource == kAllDatabases) all = true;
            dbs.push_back(g.resource);
          }
          std::sort(dbs.begin(), dbs.end());
          auto distinct =
              static_cast<std::int64_t>(std::unique(dbs.begin(), dbs.end()) - dbs.begin());
          violated = all || distinct > *p.max;
          break;
        }
        case Kind::kDescriptionPattern:
          violated = !hits[static_cast<std::size_t>(cp.pattern_regex)];
          break;
        case Kind::kExpiresSoon:
          if (t.expires_at) {
            violated = *t.expires_at - now <= *p.within;
            if (!violated) lower(*t.expires_at - *p.within);
            // Each step of the notice ladder is a change the caller must see.
            if (violated && !p.notify_before.empty())
              lower(notice_step(p.notify_before, *t.expires_at, now).next);
          }
          break;
        case Kind::kOrphaned:
          violated = orphaned(p, s.ownership);
          break;
      }
      if (!violated) continue;
      Finding f;
      f.policy = pi;
      f.subject = static_cast<std::uint32_t>(si);
      // The first live exemption, by configuration order, that covers this policy and token.
      auto consider = [&](int ei) {
        const auto& e = set.exemptions_[static_cast<std::size_t>(ei)];
        if (!exemption_live[static_cast<std::size_t>(ei)]) return;
        if (e.policy != "*" && e.policy != p.name) return;
        if (f.exemption < 0 || ei < f.exemption) f.exemption = ei;
      };
      if (auto it = c.exemptions_by_token.find(t.id); it != c.exemptions_by_token.end()) {
        for (int ei : it->second) consider(ei);
      }
      for (int ei : c.exemptions_by_regex) {
        if (hits[static_cast<std::size_t>(c.exemptions[static_cast<std::size_t>(ei)].regex)])
          consider(ei);
      }
      if (f.exempt()) lower(set.exemptions_[static_cast<std::size_t>(f.exemption)].expires);
      out.findings.push_back(f);
    }
  }
  return out;
}

}  // namespace tw::policy

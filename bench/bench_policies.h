#pragma once
// 50 policies of every kind with scopes, and 20 exemptions, over the vocabulary of the
// simulator's generated tokens: the policy set the benchmarks evaluate.
#include <string>
#include <vector>

#include "policy/policy_spec.h"

namespace tw::bench {

inline std::vector<policy::PolicySpec> fifty_policies() {
  using policy::Kind;
  std::vector<policy::PolicySpec> out;
  auto add = [&](std::string name, Kind kind, auto&& fill) {
    policy::PolicySpec p;
    p.name = std::move(name);
    p.kind = kind;
    p.action = policy::Action::kAlert;  // the benchmarks measure cycles that plan no action
    fill(p);
    out.push_back(std::move(p));
  };
  const char* scopes[] = {"",     "^telegraf",    "^grafana", "^svc-",
                          "^ci ", "(?i)pipeline", "ad-hoc$",  "exporter"};
  const char* dbs[] = {"prod_secrets", "finance_*", "billing_eu",    "hr",  "payroll", "vault_*",
                       "legal",        "pii_*",     "audit_archive", "keys"};
  for (int i = 0; i < 8; ++i) {
    add("lifetime-" + std::to_string(i), Kind::kMaxLifetime, [&](auto& p) {
      p.max_lifetime = std::chrono::hours(24 * (400 + 60 * i));
      p.require_expiry = i == 0;
      p.scope.description = scopes[(i % 7) + 1];
    });
  }
  for (int i = 0; i < 7; ++i) {
    add("age-" + std::to_string(i), Kind::kMaxAge, [&](auto& p) {
      p.max_age = std::chrono::hours(24 * (600 + 30 * i));
      p.scope.description = scopes[(i + 3) % 8];
      p.min_token_age = std::chrono::hours(1);
    });
  }
  for (int i = 0; i < 10; ++i) {
    add("forbidden-" + std::to_string(i), Kind::kForbiddenGrant, [&](auto& p) {
      p.actions = i % 3 == 0 ? std::vector<std::string>{"read", "write"}
                             : std::vector<std::string>{"write"};
      p.databases = {dbs[i], dbs[(i + 4) % 10]};
      p.scope.clusters = {i % 2 == 0 ? "bench*" : "*"};
      p.scope.description = scopes[(i % 7) + 1];
      p.scope.labels = i % 4 == 0 ? std::map<std::string, std::string>{{"env", "prod"}}
                                  : std::map<std::string, std::string>{};
    });
  }
  for (int i = 0; i < 5; ++i) {
    add("star-" + std::to_string(i), Kind::kAllDatabasesGrant, [&](auto& p) {
      p.actions = i % 2 == 0 ? std::vector<std::string>{"write"}
                             : std::vector<std::string>{"read", "write"};
      p.scope.description = scopes[(i + 1) % 8];
    });
  }
  for (int i = 0; i < 5; ++i) {
    add("max-dbs-" + std::to_string(i), Kind::kMaxDatabases, [&](auto& p) {
      p.max = 3 + i;
      p.scope.description = scopes[(i + 5) % 8];
    });
  }
  // Descriptions must be printable, reasonably short and name something; most tokens comply.
  const char* patterns[] = {"^.{3,120}$", "^[^<>\\x00-\\x1f]*$", "[a-z]",     "^\\S",
                            "\\S$",       "^(?i)[a-z0-9]",       "^[^;|`]*$", "^(?:.*[a-z]{3}.*)$"};
  for (int i = 0; i < 8; ++i) {
    add("pattern-" + std::to_string(i), Kind::kDescriptionPattern,
        [&](auto& p) { p.pattern = patterns[i]; });
  }
  for (int i = 0; i < 7; ++i) {
    add("expiring-" + std::to_string(i), Kind::kExpiresSoon,
        [&](auto& p) { p.within = std::chrono::hours(1 + 3 * i); });
  }
  return out;
}

// 10 exemptions by token id (from `ids`), 10 by description.
inline std::vector<policy::ExemptionSpec> twenty_exemptions(const std::vector<std::string>& ids,
                                                            Timestamp now) {
  std::vector<policy::ExemptionSpec> out;
  for (std::size_t i = 0; i < 10 && i < ids.size(); ++i) {
    out.push_back({i % 2 == 0 ? "*" : "lifetime-" + std::to_string(i % 8), ids[i * 97 % ids.size()],
                   "", "", "bench exemption", now + std::chrono::hours(24 * 30)});
  }
  const char* regexes[] = {"^grafana dashboards",
                           "backup exporter",
                           "^jane\\.doe",
                           "nightly$",
                           "^svc-ingest-1",
                           "kapacitor",
                           "^telegraf writer fleet",
                           "temporary access",
                           "legacy",
                           "iot gateway"};
  for (int i = 0; i < 10; ++i) {
    out.push_back({i % 3 == 0 ? "*" : "pattern-" + std::to_string(i % 8), "", regexes[i], "",
                   "bench exemption", now + std::chrono::hours(24 * 60)});
  }
  return out;
}

}  // namespace tw::bench

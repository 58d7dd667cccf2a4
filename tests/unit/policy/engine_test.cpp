// Tests for policy/engine.h: PolicySet::compile, the pure evaluate(), explain(),
// compliant_permissions(), exemption_key() and grant_matches() (SPEC §2 "Policy kinds").
//
// Table-driven: one table per kind, plus tables for scopes, exemptions and the tokens that are
// not judged. Every case uses the fixed kNow and hand-built Tokens/Subjects; nothing reads a clock.

#include "policy/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/strings.h"
#include "tests/unit/core/test_support.h"

namespace tw::policy {
namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using tw::testing::PrintTo;
using tw::testing::ts;

constexpr Duration kMs{1};
const Timestamp kNow = ts("2026-06-01T12:00:00Z");
const Timestamp kNever = Timestamp::max();
// Default first sighting: now (first listed at this evaluation). Ages run from the earlier of
// created_at and first_seen, so it never decides a case unless the case says so.
const Timestamp kSeenNow = kNow;

// ---- builders -------------------------------------------------------------------------------

class TokenBuilder {
 public:
  explicit TokenBuilder(std::string id = "tok-1") {
    t_.id = std::move(id);
    t_.description = "svc-default";
    t_.created_at = kNow - days(10);
  }
  TokenBuilder& desc(std::string d) {
    t_.description = std::move(d);
    return *this;
  }
  TokenBuilder& perm(std::string action, std::string resource) {
    t_.permissions.push_back(Permission{std::move(action), std::move(resource)});
    sort_permissions(t_.permissions);
    return *this;
  }
  TokenBuilder& created(Timestamp c) {
    t_.created_at = c;
    return *this;
  }
  TokenBuilder& no_created() {
    t_.created_at.reset();
    return *this;
  }
  TokenBuilder& expires(Timestamp e) {
    t_.expires_at = e;
    return *this;
  }
  TokenBuilder& revoked(Timestamp r) {
    t_.revoked_at = r;
    return *this;
  }
  Token build() const { return t_; }
  operator Token() const { return t_; }  // NOLINT implicit: reads well in the tables

 private:
  Token t_;
};

TokenBuilder tok(std::string id = "tok-1") { return TokenBuilder(std::move(id)); }

PolicySpec base_policy(std::string name, Kind kind) {
  PolicySpec p;
  p.name = std::move(name);
  p.kind = kind;
  p.min_token_age = Duration{0};
  p.grace_period = hours(1);
  return p;
}
PolicySpec max_lifetime(Duration d, bool require_expiry) {
  PolicySpec p = base_policy("max-lifetime", Kind::kMaxLifetime);
  p.max_lifetime = d;
  p.require_expiry = require_expiry;
  return p;
}
PolicySpec max_age(Duration d) {
  PolicySpec p = base_policy("max-age", Kind::kMaxAge);
  p.max_age = d;
  return p;
}
PolicySpec forbidden(std::vector<std::string> actions, std::vector<std::string> databases) {
  PolicySpec p = base_policy("forbidden-grant", Kind::kForbiddenGrant);
  p.actions = std::move(actions);
  p.databases = std::move(databases);
  return p;
}
// The config loader's default for all_databases_grant is both actions.
PolicySpec all_databases(std::vector<std::string> actions = {"read", "write"}) {
  PolicySpec p = base_policy("all-databases", Kind::kAllDatabasesGrant);
  p.actions = std::move(actions);
  return p;
}
PolicySpec max_databases(std::int64_t max) {
  PolicySpec p = base_policy("max-databases", Kind::kMaxDatabases);
  p.max = max;
  return p;
}
PolicySpec description_pattern(std::string pattern) {
  PolicySpec p = base_policy("description-pattern", Kind::kDescriptionPattern);
  p.pattern = std::move(pattern);
  return p;
}
PolicySpec expires_soon(Duration within) {
  PolicySpec p = base_policy("expires-soon", Kind::kExpiresSoon);
  p.within = within;
  return p;
}

ExemptionSpec exemption_for_token(std::string policy, std::string token_id, Timestamp expires,
                                  std::string cluster = "") {
  ExemptionSpec e;
  e.policy = std::move(policy);
  e.token_id = std::move(token_id);
  e.cluster = std::move(cluster);
  e.reason = "ticket OPS-1";
  e.expires = expires;
  return e;
}
ExemptionSpec exemption_for_description(std::string policy, std::string regex, Timestamp expires,
                                        std::string cluster = "") {
  ExemptionSpec e;
  e.policy = std::move(policy);
  e.description = std::move(regex);
  e.cluster = std::move(cluster);
  e.reason = "ticket OPS-2";
  e.expires = expires;
  return e;
}

ClusterInfo cluster(std::string name = "prod-eu", std::map<std::string, std::string> labels = {}) {
  ClusterInfo c;
  c.name = std::move(name);
  c.labels = std::move(labels);
  return c;
}

std::shared_ptr<const PolicySet> compile_ok(std::vector<PolicySpec> policies,
                                            std::vector<ExemptionSpec> exemptions = {}) {
  auto set = PolicySet::compile(std::move(policies), std::move(exemptions));
  EXPECT_TRUE(set.ok()) << (set.ok() ? "" : set.error().message);
  return set.ok() ? *set : nullptr;
}

// ---- one table per kind ---------------------------------------------------------------------

struct KindCase {
  std::string name;
  PolicySpec policy;
  Token token;
  Timestamp first_seen = kSeenNow;
  bool violated = false;
  Timestamp next_change = kNever;
};

KindCase kcase(std::string name, PolicySpec policy, Token token, bool violated,
               Timestamp next_change = kNever, Timestamp first_seen = kSeenNow) {
  KindCase c;
  c.name = std::move(name);
  c.policy = std::move(policy);
  c.token = std::move(token);
  c.violated = violated;
  c.next_change = next_change;
  c.first_seen = first_seen;
  return c;
}

class KindTest : public ::testing::TestWithParam<KindCase> {};

TEST_P(KindTest, Verdict) {
  const KindCase& c = GetParam();
  auto set = compile_ok({c.policy});
  ASSERT_NE(set, nullptr);
  std::vector<Subject> subjects{Subject{&c.token, c.first_seen}};
  Evaluation e = evaluate(*set, cluster(), subjects, kNow);
  EXPECT_EQ(e.judged, 1u);
  ASSERT_EQ(e.findings.size(), c.violated ? 1u : 0u) << "violated expected: " << c.violated;
  if (c.violated) {
    EXPECT_EQ(e.findings[0].policy, 0u);
    EXPECT_EQ(e.findings[0].subject, 0u);
    EXPECT_FALSE(e.findings[0].exempt());
    EXPECT_EQ(e.findings[0].exemption, -1);
  }
  EXPECT_EQ(e.next_change, c.next_change)
      << "expected " << (c.next_change == kNever ? "never" : format_timestamp(c.next_change))
      << ", got " << (e.next_change == kNever ? "never" : format_timestamp(e.next_change));
}

const Timestamp kCreated = kNow - days(10);

INSTANTIATE_TEST_SUITE_P(
    MaxLifetime, KindTest,
    ::testing::Values(
        kcase("no expiry, require_expiry", max_lifetime(days(90), true), tok(), true),
        kcase("no expiry, require_expiry false", max_lifetime(days(90), false), tok(), false),
        kcase("lifetime exactly at the limit", max_lifetime(days(90), true),
              tok().created(kCreated).expires(kCreated + days(90)), false, kCreated + days(90)),
        kcase("lifetime 1 ms over the limit", max_lifetime(days(90), true),
              tok().created(kCreated).expires(kCreated + days(90) + kMs), true,
              kCreated + days(90) + kMs),
        kcase("short lifetime", max_lifetime(days(90), true),
              tok().created(kCreated).expires(kCreated + days(30)), false, kCreated + days(30)),
        kcase("long lifetime without require_expiry is still judged", max_lifetime(days(90), false),
              tok().created(kCreated).expires(kCreated + days(365)), true, kCreated + days(365)),
        kcase("created unknown: first seen used, at the limit", max_lifetime(days(90), true),
              tok().no_created().expires(kNow - days(5) + days(90)), false,
              kNow - days(5) + days(90), kNow - days(5)),
        kcase("created unknown: first seen used, 1 ms over", max_lifetime(days(90), true),
              tok().no_created().expires(kNow - days(5) + days(90) + kMs), true,
              kNow - days(5) + days(90) + kMs, kNow - days(5)),
        kcase("created unknown, first seen long ago", max_lifetime(days(90), true),
              tok().no_created().expires(kNow + days(1)), true, kNow + days(1), kNow - days(100)),
        kcase("created known wins over first seen", max_lifetime(days(90), true),
              tok().created(kNow - days(100)).expires(kNow + days(1)), true, kNow + days(1),
              kNow - days(1))),
    tw::testing::CaseName());

INSTANTIATE_TEST_SUITE_P(
    MaxAge, KindTest,
    ::testing::Values(
        kcase("exactly at the limit", max_age(days(30)), tok().created(kNow - days(30)), false,
              kNow + kMs),
        kcase("1 ms over the limit", max_age(days(30)), tok().created(kNow - days(30) - kMs), true),
        kcase("young token: next change when it turns too old", max_age(days(30)),
              tok().created(kNow - days(1)), false, kNow - days(1) + days(30) + kMs),
        kcase("expiry before it turns too old", max_age(days(30)),
              tok().created(kNow - days(1)).expires(kNow + days(10)), false, kNow + days(10)),
        kcase("created unknown: first seen long ago", max_age(days(30)), tok().no_created(), true,
              kNever, kNow - days(31)),
        kcase("created unknown: first seen recently", max_age(days(30)), tok().no_created(), false,
              kNow - days(2) + days(30) + kMs, kNow - days(2))),
    tw::testing::CaseName());

INSTANTIATE_TEST_SUITE_P(
    ForbiddenGrant, KindTest,
    ::testing::Values(
        kcase("write on a matching database", forbidden({"write"}, {"metrics_*"}),
              tok().perm("write", "metrics_cpu"), true),
        kcase("read on a matching database, write forbidden", forbidden({"write"}, {"metrics_*"}),
              tok().perm("read", "metrics_cpu"), false),
        kcase("read forbidden, read grant", forbidden({"read"}, {"metrics_*"}),
              tok().perm("read", "metrics_cpu"), true),
        kcase("read forbidden, write grant", forbidden({"read"}, {"metrics_*"}),
              tok().perm("write", "metrics_cpu"), false),
        kcase("both forbidden", forbidden({"read", "write"}, {"metrics_*"}),
              tok().perm("read", "logs").perm("read", "metrics_x"), true),
        kcase("write on another database", forbidden({"write"}, {"metrics_*"}),
              tok().perm("write", "logs"), false),
        kcase("glob star matches the empty suffix", forbidden({"write"}, {"metrics_*"}),
              tok().perm("write", "metrics_"), true),
        kcase("glob is anchored", forbidden({"write"}, {"metrics_*"}),
              tok().perm("write", "xmetrics_cpu"), false),
        kcase("glob is case-sensitive", forbidden({"write"}, {"metrics_*"}),
              tok().perm("write", "Metrics_cpu"), false),
        kcase("question mark is one character", forbidden({"write"}, {"db?"}),
              tok().perm("write", "db10"), false),
        kcase("question mark matches", forbidden({"write"}, {"db?"}), tok().perm("write", "db1"),
              true),
        kcase("any of several globs", forbidden({"write"}, {"billing", "prod_*"}),
              tok().perm("write", "prod_eu"), true),
        kcase("exact database name", forbidden({"write"}, {"billing"}),
              tok().perm("write", "billing2"), false),
        kcase("a grant on * matches every pattern", forbidden({"write"}, {"metrics_*"}),
              tok().perm("write", "*"), true),
        kcase("a grant on * with another action", forbidden({"write"}, {"metrics_*"}),
              tok().perm("read", "*"), false),
        kcase("other action strings are ignored", forbidden({"read", "write"}, {"metrics_*"}),
              tok().perm("admin", "metrics_cpu").perm("Write", "metrics_cpu").perm("", "*"), false),
        kcase("empty permissions", forbidden({"read", "write"}, {"*"}), tok(), false)),
    tw::testing::CaseName());

INSTANTIATE_TEST_SUITE_P(
    AllDatabasesGrant, KindTest,
    ::testing::Values(
        kcase("default actions: write on *", all_databases(), tok().perm("write", "*"), true),
        kcase("default actions: read on *", all_databases(), tok().perm("read", "*"), true),
        kcase("default actions: named databases", all_databases(),
              tok().perm("read", "db1").perm("write", "db2"), false),
        kcase("write-only: read on *", all_databases({"write"}), tok().perm("read", "*"), false),
        kcase("write-only: write on *", all_databases({"write"}),
              tok().perm("read", "*").perm("write", "*"), true),
        kcase("a database named like a glob is not *", all_databases(), tok().perm("write", "db*"),
              false),
        kcase("other action on *", all_databases(), tok().perm("admin", "*"), false),
        kcase("empty permissions", all_databases(), tok(), false)),
    tw::testing::CaseName());

INSTANTIATE_TEST_SUITE_P(
    MaxDatabases, KindTest,
    ::testing::Values(
        kcase("at the limit", max_databases(2), tok().perm("read", "db1").perm("read", "db2"),
              false),
        kcase("over the limit", max_databases(2),
              tok().perm("read", "db1").perm("read", "db2").perm("write", "db3"), true),
        kcase(
            "read and write on one database count once", max_databases(2),
            tok().perm("read", "db1").perm("write", "db1").perm("read", "db2").perm("write", "db2"),
            false),
        kcase("* counts as unlimited", max_databases(100), tok().perm("read", "*"), true),
        kcase("max 0, no grants", max_databases(0), tok(), false),
        kcase("max 0, one grant", max_databases(0), tok().perm("read", "db1"), true),
        kcase("max 1, one database twice", max_databases(1),
              tok().perm("read", "db1").perm("write", "db1"), false)),
    tw::testing::CaseName());

INSTANTIATE_TEST_SUITE_P(
    DescriptionPattern, KindTest,
    ::testing::Values(
        kcase("match", description_pattern("^svc-[a-z]+$"), tok().desc("svc-billing"), false),
        kcase("no match", description_pattern("^svc-[a-z]+$"), tok().desc("billing"), true),
        kcase("case-sensitive", description_pattern("^svc-[a-z]+$"), tok().desc("svc-Billing"),
              true),
        kcase("partial match is enough", description_pattern("team"), tok().desc("my-team-token"),
              false),
        kcase("start anchor", description_pattern("^svc-"), tok().desc("my-svc-token"), true),
        kcase("end anchor", description_pattern("-prod$"), tok().desc("svc-prod-old"), true),
        kcase("end anchor match", description_pattern("-prod$"), tok().desc("svc-a-prod"), false),
        kcase("empty description", description_pattern("^svc-"), tok().desc(""), true),
        kcase("empty description, permissive pattern", description_pattern(".*"), tok().desc(""),
              false)),
    tw::testing::CaseName());

INSTANTIATE_TEST_SUITE_P(
    ExpiresSoon, KindTest,
    ::testing::Values(kcase("inside the window", expires_soon(days(7)),
                            tok().expires(kNow + days(3)), true, kNow + days(3)),
                      kcase("at the window's edge", expires_soon(days(7)),
                            tok().expires(kNow + days(7)), true, kNow + days(7)),
                      kcase("1 ms outside the window", expires_soon(days(7)),
                            tok().expires(kNow + days(7) + kMs), false, kNow + kMs),
                      kcase("outside: next change at the window start", expires_soon(days(7)),
                            tok().expires(kNow + days(30)), false, kNow + days(23)),
                      kcase("no expiry", expires_soon(days(7)), tok(), false)),
    tw::testing::CaseName());

// The instant next_change names really is when the verdict flips.
TEST(EngineTest, NextChangeIsTheInstantTheVerdictFlips) {
  struct Probe {
    PolicySpec policy;
    Token token;
  };
  std::vector<Probe> probes{{max_age(days(30)), tok().created(kNow - days(2))},
                            {expires_soon(days(7)), tok().expires(kNow + days(20))}};
  for (const auto& probe : probes) {
    auto set = compile_ok({probe.policy});
    ASSERT_NE(set, nullptr);
    std::vector<Subject> s{Subject{&probe.token, kSeenNow}};
    Evaluation now = evaluate(*set, cluster(), s, kNow);
    ASSERT_TRUE(now.findings.empty()) << probe.policy.name;
    ASSERT_NE(now.next_change, kNever);
    EXPECT_TRUE(evaluate(*set, cluster(), s, now.next_change - kMs).findings.empty())
        << probe.policy.name << ": still compliant 1 ms before";
    EXPECT_EQ(evaluate(*set, cluster(), s, now.next_change).findings.size(), 1u)
        << probe.policy.name << ": violated at next_change";
  }
}

// ---- tokens that are not judged ------------------------------------------------------------

struct JudgeCase {
  std::string name;
  Token token;
  Timestamp first_seen = kSeenNow;
  Duration min_token_age{0};
  bool judged = true;
  Timestamp next_change = kNever;
};

JudgeCase jcase(std::string name, Token token, bool judged, Timestamp next_change = kNever,
                Duration min_token_age = Duration{0}, Timestamp first_seen = kSeenNow) {
  JudgeCase c;
  c.name = std::move(name);
  c.token = std::move(token);
  c.judged = judged;
  c.next_change = next_change;
  c.min_token_age = min_token_age;
  c.first_seen = first_seen;
  return c;
}

class JudgeTest : public ::testing::TestWithParam<JudgeCase> {};

TEST_P(JudgeTest, OnlyActiveMatureTokensAreJudged) {
  const JudgeCase& c = GetParam();
  PolicySpec p = all_databases({"write"});
  p.min_token_age = c.min_token_age;
  auto set = compile_ok({p});
  ASSERT_NE(set, nullptr);
  std::vector<Subject> subjects{Subject{&c.token, c.first_seen}};
  Evaluation e = evaluate(*set, cluster(), subjects, kNow);
  EXPECT_EQ(e.judged, c.judged ? 1u : 0u);
  EXPECT_EQ(e.findings.size(), c.judged ? 1u : 0u) << "every token here has write on *";
  EXPECT_EQ(e.next_change, c.next_change)
      << "got " << (e.next_change == kNever ? "never" : format_timestamp(e.next_change));
}

INSTANTIATE_TEST_SUITE_P(
    NotJudged, JudgeTest,
    ::testing::Values(
        jcase("active", tok().perm("write", "*"), true),
        jcase("revoked", tok().perm("write", "*").revoked(kNow - hours(1)), false),
        jcase("revoked in the future still revoked",
              tok().perm("write", "*").revoked(kNow + hours(1)), false),
        jcase("expired exactly now", tok().perm("write", "*").expires(kNow), false),
        jcase("expired long ago", tok().perm("write", "*").expires(kNow - days(3)), false),
        jcase("expires 1 ms from now: judged until then",
              tok().perm("write", "*").expires(kNow + kMs), true, kNow + kMs),
        jcase("younger than min_token_age", tok().perm("write", "*").created(kNow - minutes(30)),
              false, kNow + minutes(30), hours(1)),
        jcase("exactly min_token_age old", tok().perm("write", "*").created(kNow - hours(1)), true,
              kNever, hours(1)),
        jcase("created unknown: first seen decides maturity", tok().perm("write", "*").no_created(),
              false, kNow + minutes(50), hours(1), kNow - minutes(10)),
        jcase("created unknown, seen long enough ago", tok().perm("write", "*").no_created(), true,
              kNever, hours(1), kNow - hours(2))),
    tw::testing::CaseName());

// ---- scope ---------------------------------------------------------------------------------

struct ScopeCase {
  std::string name;
  Scope scope;
  ClusterInfo cluster;
  std::string description = "svc-a";
  bool applies = true;  // the cluster part (applies_to)
  bool judged = true;   // and the description part
};

ScopeCase scase(std::string name, Scope scope, ClusterInfo c, bool applies, bool judged,
                std::string description = "svc-a") {
  ScopeCase s;
  s.name = std::move(name);
  s.scope = std::move(scope);
  s.cluster = std::move(c);
  s.applies = applies;
  s.judged = judged;
  s.description = std::move(description);
  return s;
}
Scope scope_clusters(std::vector<std::string> globs) {
  Scope s;
  s.clusters = std::move(globs);
  return s;
}
Scope scope_labels(std::map<std::string, std::string> labels) {
  Scope s;
  s.labels = std::move(labels);
  return s;
}
Scope scope_description(std::string regex) {
  Scope s;
  s.description = std::move(regex);
  return s;
}

class ScopeTest : public ::testing::TestWithParam<ScopeCase> {};

TEST_P(ScopeTest, Applies) {
  const ScopeCase& c = GetParam();
  PolicySpec p = all_databases({"write"});
  p.scope = c.scope;
  auto set = compile_ok({p});
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(set->applies_to(0, c.cluster), c.applies);
  Token t = tok().desc(c.description).perm("write", "*");
  std::vector<Subject> subjects{Subject{&t, kSeenNow}};
  Evaluation e = evaluate(*set, c.cluster, subjects, kNow);
  EXPECT_EQ(e.judged, c.judged ? 1u : 0u);
  EXPECT_EQ(e.findings.size(), c.judged ? 1u : 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Scopes, ScopeTest,
    ::testing::Values(
        scase("empty scope: everywhere", Scope{}, cluster("anything"), true, true),
        scase("cluster glob matches", scope_clusters({"prod-*"}), cluster("prod-eu"), true, true),
        scase("cluster glob does not match", scope_clusters({"prod-*"}), cluster("staging-eu"),
              false, false),
        scase("cluster glob is anchored", scope_clusters({"prod-*"}), cluster("xprod-eu"), false,
              false),
        scase("any of several globs", scope_clusters({"staging", "prod-?u"}), cluster("prod-eu"),
              true, true),
        scase("exact cluster name", scope_clusters({"prod"}), cluster("prod-eu"), false, false),
        scase("labels all match", scope_labels({{"env", "prod"}, {"tier", "1"}}),
              cluster("c", {{"env", "prod"}, {"tier", "1"}, {"team", "x"}}), true, true),
        scase("one label differs", scope_labels({{"env", "prod"}, {"tier", "1"}}),
              cluster("c", {{"env", "prod"}, {"tier", "2"}}), false, false),
        scase("label missing", scope_labels({{"env", "prod"}, {"tier", "1"}}),
              cluster("c", {{"env", "prod"}}), false, false),
        scase("cluster without labels", scope_labels({{"env", "prod"}}), cluster("c"), false,
              false),
        scase("label values are exact", scope_labels({{"env", "prod"}}),
              cluster("c", {{"env", "production"}}), false, false),
        scase("description regex matches", scope_description("^svc-"), cluster(), true, true,
              "svc-billing"),
        scase("description regex does not match", scope_description("^svc-"), cluster(), true,
              false, "user-alice"),
        scase("description regex is a partial match", scope_description("billing"), cluster(), true,
              true, "svc-billing-eu")),
    tw::testing::CaseName());

TEST(EngineTest, ScopeCombinesClustersLabelsAndDescription) {
  PolicySpec p = all_databases({"write"});
  p.scope.clusters = {"prod-*"};
  p.scope.labels = {{"env", "prod"}};
  p.scope.description = "^svc-";
  auto set = compile_ok({p});
  ASSERT_NE(set, nullptr);
  Token svc = tok("svc").desc("svc-a").perm("write", "*");
  Token user = tok("user").desc("alice").perm("write", "*");
  std::vector<Subject> s{Subject{&svc, kSeenNow}, Subject{&user, kSeenNow}};
  Evaluation in = evaluate(*set, cluster("prod-eu", {{"env", "prod"}}), s, kNow);
  ASSERT_EQ(in.findings.size(), 1u);
  EXPECT_EQ(in.findings[0].subject, 0u);
  EXPECT_TRUE(evaluate(*set, cluster("prod-eu", {{"env", "dev"}}), s, kNow).findings.empty());
  EXPECT_TRUE(evaluate(*set, cluster("dev-eu", {{"env", "prod"}}), s, kNow).findings.empty());
}

// ---- exemptions ----------------------------------------------------------------------------

// Two policies that the token "tok-1" ("vendor-x integration", write on *) violates:
// 0 "no-write-all" and 1 "max-dbs".
struct ExemptionCase {
  std::string name;
  std::vector<ExemptionSpec> exemptions;
  std::string cluster = "prod-eu";
  std::int32_t exemption_policy0 = -1;  // expected Finding::exemption per policy
  std::int32_t exemption_policy1 = -1;
  Timestamp next_change = kNever;
};

ExemptionCase ecase(std::string name, std::vector<ExemptionSpec> exemptions, std::int32_t e0,
                    std::int32_t e1, Timestamp next_change = kNever,
                    std::string cluster_name = "prod-eu") {
  ExemptionCase c;
  c.name = std::move(name);
  c.exemptions = std::move(exemptions);
  c.exemption_policy0 = e0;
  c.exemption_policy1 = e1;
  c.next_change = next_change;
  c.cluster = std::move(cluster_name);
  return c;
}

class ExemptionTest : public ::testing::TestWithParam<ExemptionCase> {};

TEST_P(ExemptionTest, Applies) {
  const ExemptionCase& c = GetParam();
  PolicySpec p0 = all_databases({"write"});
  p0.name = "no-write-all";
  PolicySpec p1 = max_databases(0);
  p1.name = "max-dbs";
  auto set = compile_ok({p0, p1}, c.exemptions);
  ASSERT_NE(set, nullptr);
  Token t = tok("tok-1").desc("vendor-x integration").perm("write", "*");
  std::vector<Subject> s{Subject{&t, kSeenNow}};
  Evaluation e = evaluate(*set, cluster(c.cluster), s, kNow);
  ASSERT_EQ(e.findings.size(), 2u) << "exempt violations are still reported, marked exempt";
  EXPECT_EQ(e.findings[0].policy, 0u);
  EXPECT_EQ(e.findings[1].policy, 1u);
  EXPECT_EQ(e.findings[0].exemption, c.exemption_policy0);
  EXPECT_EQ(e.findings[1].exemption, c.exemption_policy1);
  EXPECT_EQ(e.findings[0].exempt(), c.exemption_policy0 >= 0);
  EXPECT_EQ(e.next_change, c.next_change)
      << "got " << (e.next_change == kNever ? "never" : format_timestamp(e.next_change));
}

const Timestamp kIn5d = kNow + days(5);
const Timestamp kIn10d = kNow + days(10);

INSTANTIATE_TEST_SUITE_P(
    Exemptions, ExemptionTest,
    ::testing::Values(
        ecase("none", {}, -1, -1),
        ecase("by token id, one policy", {exemption_for_token("no-write-all", "tok-1", kIn5d)}, 0,
              -1, kIn5d),
        ecase("by token id, every policy", {exemption_for_token("*", "tok-1", kIn5d)}, 0, 0, kIn5d),
        ecase("another token id", {exemption_for_token("*", "tok-2", kIn5d)}, -1, -1),
        ecase("token id is exact", {exemption_for_token("*", "tok-", kIn5d)}, -1, -1),
        ecase("policy names are exact", {exemption_for_token("no-write", "tok-1", kIn5d)}, -1, -1),
        ecase("by description regex", {exemption_for_description("max-dbs", "^vendor-", kIn5d)}, -1,
              0, kIn5d),
        ecase("description regex partial match",
              {exemption_for_description("*", "integration", kIn5d)}, 0, 0, kIn5d),
        ecase("description regex does not match", {exemption_for_description("*", "^other", kIn5d)},
              -1, -1),
        ecase("for this cluster", {exemption_for_token("*", "tok-1", kIn5d, "prod-eu")}, 0, 0,
              kIn5d),
        ecase("for another cluster", {exemption_for_token("*", "tok-1", kIn5d, "prod-us")}, -1, -1),
        ecase("description exemption for another cluster",
              {exemption_for_description("*", "vendor", kIn5d, "prod-us")}, -1, -1),
        ecase("expired exactly now", {exemption_for_token("*", "tok-1", kNow)}, -1, -1),
        ecase("expired long ago", {exemption_for_token("*", "tok-1", kNow - days(3))}, -1, -1),
        ecase("expires 1 ms from now", {exemption_for_token("*", "tok-1", kNow + kMs)}, 0, 0,
              kNow + kMs),
        ecase("first by configuration order: regex before id",
              {exemption_for_description("*", "vendor", kIn10d),
               exemption_for_token("*", "tok-1", kIn5d)},
              0, 0, kIn10d),
        ecase("first by configuration order: id before regex",
              {exemption_for_token("*", "tok-1", kIn10d),
               exemption_for_description("*", "vendor", kIn5d)},
              0, 0, kIn10d),
        ecase("an expired first one is skipped",
              {exemption_for_token("*", "tok-1", kNow - days(1)),
               exemption_for_description("*", "vendor", kIn5d)},
              1, 1, kIn5d),
        ecase("per policy: the first that covers it",
              {exemption_for_token("max-dbs", "tok-1", kIn10d),
               exemption_for_token("*", "tok-1", kIn5d)},
              1, 0, kIn5d),
        ecase("other cluster's exemption skipped",
              {exemption_for_token("*", "tok-1", kIn10d, "prod-us"),
               exemption_for_token("*", "tok-1", kIn5d, "prod-eu")},
              1, 1, kIn5d)),
    tw::testing::CaseName());

TEST(EngineTest, ExemptionLapsesAtItsExpiry) {
  auto set = compile_ok({all_databases({"write"})}, {exemption_for_token("*", "tok-1", kIn5d)});
  ASSERT_NE(set, nullptr);
  Token t = tok("tok-1").perm("write", "*");
  std::vector<Subject> s{Subject{&t, kSeenNow}};
  Evaluation before = evaluate(*set, cluster(), s, kIn5d - kMs);
  ASSERT_EQ(before.findings.size(), 1u);
  EXPECT_TRUE(before.findings[0].exempt());
  EXPECT_EQ(before.next_change, kIn5d);
  Evaluation after = evaluate(*set, cluster(), s, kIn5d);
  ASSERT_EQ(after.findings.size(), 1u);
  EXPECT_FALSE(after.findings[0].exempt());
  EXPECT_EQ(after.next_change, kNever);
}

// ---- hostile descriptions and regexes --------------------------------------------------------

TEST(EngineTest, CatastrophicPatternsRunInLinearTime) {
  // Exponential for a backtracking engine; RE2 is linear. Asserts only that it finishes and
  // is right.
  const std::string hostile = std::string(100 * 1024, 'a') + "!";
  const std::string benign = std::string(100 * 1024, 'a');
  PolicySpec pattern = description_pattern("^(a+)+$");
  PolicySpec scoped = all_databases({"write"});
  scoped.name = "scoped";
  scoped.scope.description = "^(a|aa)*$";
  PolicySpec nested = description_pattern("^(a*)*b$");
  nested.name = "nested";
  auto set = compile_ok({pattern, scoped, nested},
                        {exemption_for_description("nested", "^(a|a?)+!$", kIn5d)});
  ASSERT_NE(set, nullptr);
  Token bad = tok("bad").desc(hostile).perm("write", "*");
  Token good = tok("good").desc(benign).perm("write", "*");
  std::vector<Subject> s{Subject{&bad, kSeenNow}, Subject{&good, kSeenNow}};
  Evaluation e = evaluate(*set, cluster(), s, kNow);
  // bad: pattern violated, out of the scoped policy's scope, nested violated but exempt.
  // good: pattern ok, scoped violated (write on *), nested violated (no trailing b), not exempt.
  ASSERT_EQ(e.findings.size(), 4u);
  EXPECT_EQ(e.findings[0].subject, 0u);
  EXPECT_EQ(e.findings[0].policy, 0u);
  EXPECT_EQ(e.findings[1].subject, 0u);
  EXPECT_EQ(e.findings[1].policy, 2u);
  EXPECT_EQ(e.findings[1].exemption, 0);
  EXPECT_EQ(e.findings[2].subject, 1u);
  EXPECT_EQ(e.findings[2].policy, 1u);
  EXPECT_EQ(e.findings[3].subject, 1u);
  EXPECT_EQ(e.findings[3].policy, 2u);
  EXPECT_FALSE(e.findings[3].exempt());
}

TEST(EngineTest, InvalidUtf8DescriptionsAreMatchedSafely) {
  PolicySpec prefix = description_pattern("^svc-");
  prefix.name = "prefix";
  PolicySpec strict = description_pattern("^[a-z-]+$");
  strict.name = "strict";
  auto set = compile_ok({prefix, strict}, {exemption_for_description("strict", "team-x", kIn5d)});
  ASSERT_NE(set, nullptr);
  Token a = tok("a").desc(std::string("svc-\xff\xfe\xc3", 7));
  Token b = tok("b").desc(std::string("\xc3(team-x\xed\xa0\x80", 11));
  std::vector<Subject> s{Subject{&a, kSeenNow}, Subject{&b, kSeenNow}};
  Evaluation e = evaluate(*set, cluster(), s, kNow);
  // a: matches the prefix; not all [a-z-] -> strict violated, no exemption.
  // b: no "svc-" prefix -> prefix violated; strict violated but exempt (contains team-x).
  ASSERT_EQ(e.findings.size(), 3u);
  EXPECT_EQ(e.findings[0].subject, 0u);
  EXPECT_EQ(e.findings[0].policy, 1u);
  EXPECT_FALSE(e.findings[0].exempt());
  EXPECT_EQ(e.findings[1].subject, 1u);
  EXPECT_EQ(e.findings[1].policy, 0u);
  EXPECT_EQ(e.findings[2].subject, 1u);
  EXPECT_EQ(e.findings[2].policy, 1u);
  EXPECT_EQ(e.findings[2].exemption, 0);
}

TEST(EngineTest, NewlinesDoNotSmuggleAMatch) {
  // RE2 defaults: ^ and $ are the text's ends (no multi-line), '.' does not match '\n'.
  struct Case {
    std::string pattern;
    std::string description;
    bool violated;
  };
  const std::vector<Case> cases{
      {"^svc-[a-z]+$", "svc-ok\nrm -rf /", true},
      {"^svc-", "evil\nsvc-ok", true},
      {"-ok$", "svc-ok\n", true},
      {"^svc-.*$", "svc-a\nb", true},
      {"^svc-(?s:.*)$", "svc-a\nb", false},
      {"svc-ok", "x\nsvc-ok\ny", false},
  };
  for (const auto& c : cases) {
    auto set = compile_ok({description_pattern(c.pattern)});
    ASSERT_NE(set, nullptr);
    Token t = tok().desc(c.description);
    std::vector<Subject> s{Subject{&t, kSeenNow}};
    EXPECT_EQ(evaluate(*set, cluster(), s, kNow).findings.size(), c.violated ? 1u : 0u)
        << c.pattern << " vs " << printable(c.description);
  }
}

struct BadRegexCase {
  std::string name;
  std::string regex;
};

class BadRegexTest : public ::testing::TestWithParam<BadRegexCase> {};

TEST_P(BadRegexTest, CompileRejects) {
  const std::string& re = GetParam().regex;
  {
    auto r = PolicySet::compile({description_pattern(re)}, {});
    ASSERT_FALSE(r.ok()) << "pattern " << re;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find("description-pattern"), std::string::npos)
        << r.error().message;
  }
  {
    PolicySpec p = all_databases();
    p.scope.description = re;
    auto r = PolicySet::compile({p}, {});
    ASSERT_FALSE(r.ok()) << "scope " << re;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find("all-databases"), std::string::npos) << r.error().message;
  }
  {
    auto r = PolicySet::compile({all_databases()}, {exemption_for_description("*", re, kIn5d)});
    ASSERT_FALSE(r.ok()) << "exemption " << re;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  }
  Status v = validate_regex(re);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, ErrorCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Regexes, BadRegexTest,
                         ::testing::Values(BadRegexCase{"backreference", "(a)\\1"},
                                           BadRegexCase{"lookahead", "svc-(?=x)"},
                                           BadRegexCase{"lookbehind", "(?<=svc)-x"},
                                           BadRegexCase{"unbalanced", "(svc"},
                                           BadRegexCase{"bad repetition", "a{2,1}"}),
                         tw::testing::CaseName());

TEST(EngineTest, ValidRegexesAreAccepted) {
  for (const char* re : {"^svc-[a-z]+$", "(a+)+$", "\\p{L}+", "(?i)svc", "a{2,5}"}) {
    EXPECT_TRUE(validate_regex(re).ok()) << re;
    auto r = PolicySet::compile({description_pattern(re)}, {});
    EXPECT_TRUE(r.ok()) << re;
  }
}

// ---- explain, compliant_permissions, exemption_key, grant_matches ------------------------------

struct ExplainCase {
  std::string name;
  PolicySpec policy;
  Token token;
  std::vector<std::string> mentions;
};

class ExplainTest : public ::testing::TestWithParam<ExplainCase> {};

TEST_P(ExplainTest, SentenceNamesTheParameter) {
  const ExplainCase& c = GetParam();
  auto set = compile_ok({c.policy});
  ASSERT_NE(set, nullptr);
  std::vector<Subject> s{Subject{&c.token, kSeenNow}};
  ASSERT_EQ(evaluate(*set, cluster(), s, kNow).findings.size(), 1u) << "the token must violate";
  std::string sentence = set->explain(0, s[0], kNow);
  EXPECT_FALSE(sentence.empty());
  for (const auto& m : c.mentions) {
    EXPECT_NE(sentence.find(m), std::string::npos)
        << "\"" << sentence << "\" lacks \"" << m << "\"";
  }
}

ExplainCase xcase(std::string name, PolicySpec p, Token t, std::vector<std::string> mentions) {
  ExplainCase c;
  c.name = std::move(name);
  c.policy = std::move(p);
  c.token = std::move(t);
  c.mentions = std::move(mentions);
  return c;
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, ExplainTest,
    ::testing::Values(
        xcase("max_lifetime never expires", max_lifetime(days(90), true), tok(), {"never expires"}),
        xcase("max_lifetime too long", max_lifetime(days(90), true),
              tok().created(kNow - days(10)).expires(kNow + days(100)), {"90d", "110d"}),
        xcase("max_age", max_age(days(30)), tok().created(kNow - days(45)), {"30d", "45d"}),
        xcase("forbidden_grant", forbidden({"write"}, {"metrics_*"}),
              tok().perm("write", "metrics_cpu").perm("read", "logs"),
              {"metrics_*", "write on metrics_cpu"}),
        xcase("all_databases_grant", all_databases({"write"}), tok().perm("write", "*"),
              {"write on *"}),
        xcase("max_databases", max_databases(2),
              tok().perm("read", "a").perm("read", "b").perm("read", "c"), {"3", "2"}),
        xcase("max_databases with *", max_databases(2), tok().perm("read", "*"), {"*", "2"}),
        xcase("description_pattern", description_pattern("^svc-[a-z]+$"), tok().desc("bob"),
              {"^svc-[a-z]+$"}),
        xcase("expires_soon", expires_soon(days(7)), tok().expires(kNow + days(2)),
              {"7d", format_timestamp(kNow + days(2))})),
    tw::testing::CaseName());

// evaluate() ages a token without created_at from its first sighting; the sentence explaining
// the verdict must not contradict it (it is stored in the violation and shown in alerts).
TEST(EngineTest, ExplainWithoutCreatedAtAgreesWithTheVerdict) {
  const Timestamp first_seen = kNow - days(100);
  {
    auto set = compile_ok({max_lifetime(days(90), true)});
    ASSERT_NE(set, nullptr);
    Token t = tok().no_created().expires(kNow + days(10));  // 110d since first seen
    std::vector<Subject> s{Subject{&t, first_seen}};
    ASSERT_EQ(evaluate(*set, cluster(), s, kNow).findings.size(), 1u);
    std::string sentence = set->explain(0, s[0], kNow);
    EXPECT_EQ(sentence.find("lifetime 10d"), std::string::npos)
        << "\"" << sentence << "\" claims a 10d lifetime, under the 90d limit it is said to exceed";
  }
  {
    auto set = compile_ok({max_age(days(30))});
    ASSERT_NE(set, nullptr);
    Token t = tok().no_created();
    std::vector<Subject> s{Subject{&t, first_seen}};
    ASSERT_EQ(evaluate(*set, cluster(), s, kNow).findings.size(), 1u);
    std::string sentence = set->explain(0, s[0], kNow);
    EXPECT_EQ(sentence.find("created 0s ago"), std::string::npos)
        << "\"" << sentence << "\" claims an age of 0s, under the 30d limit it is said to exceed";
  }
}

TEST(EngineTest, CompliantPermissionsForRestrict) {
  auto set = compile_ok({forbidden({"write"}, {"metrics_*"}), all_databases({"write"})});
  ASSERT_NE(set, nullptr);
  Token t = tok()
                .perm("read", "metrics_a")
                .perm("write", "metrics_a")
                .perm("write", "logs")
                .perm("write", "*")
                .perm("read", "*");
  std::vector<Permission> fg = set->compliant_permissions(0, t);
  std::vector<Permission> want_fg{{"read", "*"}, {"read", "metrics_a"}, {"write", "logs"}};
  EXPECT_EQ(permissions_json(fg), permissions_json(want_fg));
  std::vector<Permission> ad = set->compliant_permissions(1, t);
  std::vector<Permission> want_ad{
      {"read", "*"}, {"read", "metrics_a"}, {"write", "logs"}, {"write", "metrics_a"}};
  EXPECT_EQ(permissions_json(ad), permissions_json(want_ad));
  // The result complies.
  Token fixed = t;
  fixed.permissions = fg;
  std::vector<Subject> s{Subject{&fixed, kSeenNow}};
  auto only_fg = compile_ok({forbidden({"write"}, {"metrics_*"})});
  ASSERT_NE(only_fg, nullptr);
  EXPECT_TRUE(evaluate(*only_fg, cluster(), s, kNow).findings.empty());
  EXPECT_TRUE(set->compliant_permissions(0, tok()).empty());
}

TEST(EngineTest, GrantMatches) {
  PolicySpec fg = forbidden({"write"}, {"metrics_*", "logs"});
  EXPECT_TRUE(grant_matches(fg, Permission{"write", "metrics_x"}));
  EXPECT_TRUE(grant_matches(fg, Permission{"write", "logs"}));
  EXPECT_TRUE(grant_matches(fg, Permission{"write", "*"}));
  EXPECT_FALSE(grant_matches(fg, Permission{"read", "*"}));
  EXPECT_FALSE(grant_matches(fg, Permission{"write", "logs2"}));
  EXPECT_FALSE(grant_matches(fg, Permission{"admin", "logs"}));
  PolicySpec ad = all_databases({"read"});
  EXPECT_TRUE(grant_matches(ad, Permission{"read", "*"}));
  EXPECT_FALSE(grant_matches(ad, Permission{"write", "*"}));
  EXPECT_FALSE(grant_matches(ad, Permission{"read", "db1"}));
}

TEST(EngineTest, ExemptionKeyIsStableAndDistinct) {
  std::vector<ExemptionSpec> ex{
      exemption_for_token("p", "tok-1", kIn5d),
      exemption_for_token("*", "tok-1", kIn5d),
      exemption_for_token("p", "tok-2", kIn5d),
      exemption_for_token("p", "tok-1", kIn10d),
      exemption_for_token("p", "tok-1", kIn5d, "prod-eu"),
      exemption_for_description("p", "tok-1", kIn5d),
  };
  auto a = compile_ok({all_databases()}, ex);
  auto b = compile_ok({all_databases(), max_databases(3)}, ex);
  std::vector<ExemptionSpec> reversed(ex.rbegin(), ex.rend());
  auto c = compile_ok({max_databases(3)}, reversed);
  ASSERT_TRUE(a && b && c);
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < ex.size(); ++i) {
    std::string k = a->exemption_key(i);
    EXPECT_FALSE(k.empty());
    EXPECT_EQ(k, a->exemption_key(i)) << "deterministic";
    EXPECT_EQ(k, b->exemption_key(i)) << "same across compiles";
    EXPECT_EQ(k, c->exemption_key(ex.size() - 1 - i)) << "independent of position";
    keys.push_back(k);
  }
  std::vector<std::string> unique = keys;
  std::sort(unique.begin(), unique.end());
  EXPECT_EQ(std::unique(unique.begin(), unique.end()), unique.end())
      << "different exemptions have different keys";
}

TEST(EngineTest, LookupsByName) {
  auto set = compile_ok({all_databases(), max_databases(3)});
  ASSERT_NE(set, nullptr);
  ASSERT_NE(set->find("max-databases"), nullptr);
  EXPECT_EQ(set->find("max-databases")->kind, Kind::kMaxDatabases);
  EXPECT_EQ(set->find("nope"), nullptr);
  EXPECT_EQ(set->index_of("max-databases"), std::optional<std::size_t>(1));
  EXPECT_EQ(set->index_of("nope"), std::nullopt);
}

// ---- many subjects, many policies, many regexes ------------------------------------------------

TEST(EngineTest, FindingsAreOrderedBySubjectThenPolicy) {
  auto set = compile_ok({all_databases({"write"}), max_databases(0), description_pattern("^svc-")});
  ASSERT_NE(set, nullptr);
  Token a = tok("a").desc("x").perm("write", "*");
  Token b = tok("b").desc("svc-b");
  Token c = tok("c").desc("y").perm("read", "db");
  std::vector<Subject> s{Subject{&a, kSeenNow}, Subject{&b, kSeenNow}, Subject{&c, kSeenNow}};
  Evaluation e = evaluate(*set, cluster(), s, kNow);
  std::vector<std::pair<std::uint32_t, std::uint32_t>> got;
  for (const auto& f : e.findings) got.emplace_back(f.subject, f.policy);
  std::vector<std::pair<std::uint32_t, std::uint32_t>> want{{0, 0}, {0, 1}, {0, 2}, {2, 1}, {2, 2}};
  EXPECT_EQ(got, want);
  EXPECT_EQ(e.judged, 9u);
}

TEST(EngineTest, ManyDescriptionScopedPolicies) {
  // 200 description-scoped policies plus description patterns and regex exemptions: the RE2::Set
  // path must map every hit back to its own policy.
  constexpr int kPolicies = 200;
  std::vector<PolicySpec> policies;
  for (int i = 0; i < kPolicies; ++i) {
    PolicySpec p = all_databases({"write"});
    p.name = "team-" + std::to_string(i);
    p.scope.description = "^team-" + std::to_string(i) + "(-|$)";
    policies.push_back(std::move(p));
  }
  PolicySpec pattern = description_pattern("-owner-[a-z]+$");
  pattern.name = "owner";
  pattern.scope.description = "^team-1[0-9]-";
  policies.push_back(pattern);
  auto set = compile_ok(policies, {exemption_for_description("team-7", "-legacy$", kIn5d)});
  ASSERT_NE(set, nullptr);

  std::vector<Token> tokens;
  for (int i = 0; i < kPolicies; ++i) {
    tokens.push_back(tok("t" + std::to_string(i))
                         .desc("team-" + std::to_string(i) + (i == 7 ? "-legacy" : "-owner-bob"))
                         .perm("write", "*"));
  }
  tokens.push_back(tok("t-other").desc("nobody").perm("write", "*"));
  tokens.push_back(tok("t-12x").desc("team-12-no-owner").perm("write", "*"));
  std::vector<Subject> s;
  for (const auto& t : tokens) s.push_back(Subject{&t, kSeenNow});
  Evaluation e = evaluate(*set, cluster(), s, kNow);

  std::vector<std::pair<std::uint32_t, std::uint32_t>> got;
  for (const auto& f : e.findings) got.emplace_back(f.subject, f.policy);
  std::vector<std::pair<std::uint32_t, std::uint32_t>> want;
  for (std::uint32_t i = 0; i < kPolicies; ++i) want.emplace_back(i, i);
  want.emplace_back(kPolicies + 1, 12);         // team-12-no-owner: scoped by team-12
  want.emplace_back(kPolicies + 1, kPolicies);  // and violates the owner pattern
  EXPECT_EQ(got, want);
  for (const auto& f : e.findings) {
    EXPECT_EQ(f.exempt(), f.subject == 7) << "subject " << f.subject;
  }
  // 200 scoped judgements (one per team token), 1 for t-12x's team-12, and the owner pattern
  // for team-10..19 tokens (10) plus t-12x.
  EXPECT_EQ(e.judged, static_cast<std::size_t>(kPolicies + 1 + 10 + 1));
}

TEST(EngineTest, RegexesThatStrainTheSetDfaStillMatchCorrectly) {
  // [a-q][^u-z]{13}x has an exponential DFA: on a long text the shared RE2::Set may run out of
  // memory, and the engine then matches one regex at a time. Either way, the same answers.
  constexpr int kStrain = 8;
  std::string text;
  std::uint32_t x = 12345;
  for (int i = 0; i < 20'000; ++i) {
    x = x * 1103515245u + 12345u;
    text += static_cast<char>('a' + static_cast<char>((x >> 16) % 20));  // a..t: never 'x'
  }
  std::vector<PolicySpec> policies;
  for (int i = 0; i < kStrain; ++i) {
    PolicySpec p = all_databases({"write"});
    p.name = "strain-" + std::to_string(i);
    p.scope.description = "[a-q][^u-z]{" + std::to_string(10 + i) + "}x";
    policies.push_back(std::move(p));
  }
  PolicySpec head = all_databases({"write"});
  head.name = "head";
  head.scope.description = "^team-";
  policies.push_back(head);
  PolicySpec tail = description_pattern("-end$");
  tail.name = "tail";
  policies.push_back(tail);
  auto set = compile_ok(policies);
  ASSERT_NE(set, nullptr);
  Token long_team = tok("a").desc("team-" + text + "-end").perm("write", "*");
  Token long_other = tok("b").desc(text).perm("write", "*");
  Token hit =
      tok("c").desc("team-" + text.substr(0, 100) + "abcdefghijklmnopqrsx-end").perm("write", "*");
  std::vector<Subject> s{Subject{&long_team, kSeenNow}, Subject{&long_other, kSeenNow},
                         Subject{&hit, kSeenNow}};
  Evaluation e = evaluate(*set, cluster(), s, kNow);
  std::vector<std::pair<std::uint32_t, std::uint32_t>> got;
  for (const auto& f : e.findings) got.emplace_back(f.subject, f.policy);
  // a: head only. b: tail (no -end). c: head, and each strain-i whose window right before the
  // one 'x' fits (computed below).
  const std::uint32_t kHead = kStrain, kTail = kStrain + 1;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> want{{0, kHead}, {1, kTail}};
  const std::string before_x = "team-" + text.substr(0, 100) + "abcdefghijklmnopqrs";
  for (std::uint32_t i = 0; i < kStrain; ++i) {
    // strain-i matches iff some [a-q] is followed by exactly 10+i chars of [^u-z] and then 'x'.
    const std::size_t n = 10 + i;
    const std::size_t start = before_x.size() - n - 1;
    const char c0 = before_x[start];
    bool ok = c0 >= 'a' && c0 <= 'q';
    for (std::size_t k = start + 1; k < before_x.size(); ++k)
      ok = ok && !(before_x[k] >= 'u' && before_x[k] <= 'z');
    if (ok) want.emplace_back(2, i);
  }
  want.emplace_back(2, kHead);
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
}

TEST(EngineTest, NextChangePerSubject) {
  auto set = compile_ok({max_age(days(30)), expires_soon(days(7))},
                        {exemption_for_token("max-age", "exempt", kNow + days(2))});
  ASSERT_NE(set, nullptr);
  Token young = tok("young").created(kNow - days(29));  // too old in 1 d
  Token old = tok("old").created(kNow - days(40));      // violated already
  Token expiring =
      tok("expiring").created(kNow - days(1)).expires(kNow + days(10));  // window in 3 d
  Token revoked = tok("revoked").created(kNow - days(1)).revoked(kNow - hours(1));
  Token exempt = tok("exempt").created(kNow - days(40));  // exemption ends in 2 d
  std::vector<Subject> s{Subject{&young, kSeenNow}, Subject{&old, kSeenNow},
                         Subject{&expiring, kSeenNow}, Subject{&revoked, kSeenNow},
                         Subject{&exempt, kSeenNow}};
  Evaluation e = evaluate(*set, cluster(), s, kNow);
  ASSERT_EQ(e.subject_next_change.size(), s.size());
  EXPECT_EQ(e.subject_next_change[0], kNow + days(1) + kMs);
  EXPECT_EQ(e.subject_next_change[1], kNever);
  EXPECT_EQ(e.subject_next_change[2], kNow + days(3));
  EXPECT_EQ(e.subject_next_change[3], kNever);
  EXPECT_EQ(e.subject_next_change[4], kNow + days(2));
  EXPECT_EQ(e.next_change, kNow + days(1) + kMs) << "the earliest of them";
  EXPECT_EQ(evaluate(*set, cluster(), std::span<const Subject>(), kNow).subject_next_change.size(),
            0u);
}

TEST(EngineTest, EmptySetAndNoSubjects) {
  auto none = compile_ok({});
  ASSERT_NE(none, nullptr);
  Token t = tok().perm("write", "*");
  std::vector<Subject> s{Subject{&t, kSeenNow}};
  Evaluation e = evaluate(*none, cluster(), s, kNow);
  EXPECT_TRUE(e.findings.empty());
  EXPECT_EQ(e.judged, 0u);
  EXPECT_EQ(e.next_change, kNever);
  auto some = compile_ok({all_databases()});
  ASSERT_NE(some, nullptr);
  Evaluation empty = evaluate(*some, cluster(), std::span<const Subject>(), kNow);
  EXPECT_TRUE(empty.findings.empty());
  EXPECT_EQ(empty.next_change, kNever);
}

}  // namespace
}  // namespace tw::policy

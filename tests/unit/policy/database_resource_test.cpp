// Database-grant policies and InfluxDB 3 Core/Enterprise grants (core/token.h
// is_database_resource): an admin token (`*:*:*`) is an all-databases grant like any other;
// grants on non-database resources (`system:health`) are not database grants; scope_covers.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "policy/engine.h"
#include "tests/unit/core/test_support.h"

namespace tw::policy {
namespace {

using std::chrono::days;
using std::chrono::hours;
using tw::testing::ts;

const Timestamp kNow = ts("2026-06-01T12:00:00Z");

PolicySpec spec(std::string name, Kind kind, std::vector<std::string> actions = {},
                std::vector<std::string> databases = {}) {
  PolicySpec p;
  p.name = std::move(name);
  p.kind = kind;
  p.actions = std::move(actions);
  p.databases = std::move(databases);
  p.grace_period = hours(1);
  return p;
}

Token token(std::string id, std::vector<Permission> perms) {
  Token t;
  t.id = std::move(id);
  t.description = "t-" + t.id;
  t.created_at = kNow - days(3);
  t.permissions = std::move(perms);
  sort_permissions(t.permissions);
  return t;
}

// The policies (by name) each token violates.
std::vector<std::vector<std::string>> violations(std::vector<PolicySpec> policies,
                                                 const std::vector<Token>& tokens) {
  auto set = PolicySet::compile(std::move(policies), {});
  EXPECT_TRUE(set.ok()) << set.error().message;
  std::vector<Subject> subjects;
  for (const auto& t : tokens) subjects.push_back(Subject{&t, kNow - days(1)});
  auto ev = evaluate(**set, ClusterInfo{"core", {}}, subjects, kNow);
  std::vector<std::vector<std::string>> out(tokens.size());
  for (const auto& f : ev.findings) out[f.subject].push_back((*set)->specs()[f.policy].name);
  return out;
}

TEST(DatabaseResources, OnlyResourcesWithoutAColonAreDatabases) {
  EXPECT_TRUE(is_database_resource("*"));
  EXPECT_TRUE(is_database_resource("metrics_prod"));
  EXPECT_TRUE(is_database_resource("team/metrics-1"));
  EXPECT_FALSE(is_database_resource("system:health"));
  EXPECT_FALSE(is_database_resource("system:*"));
  EXPECT_FALSE(is_database_resource("token:*"));
}

TEST(DatabaseResources, AnAdminTokenIsAnAllDatabasesGrant) {
  const Token admin = token("0", {{"admin", "*"}, {"read", "*"}, {"write", "*"}});
  PolicySpec max2 = spec("max-2", Kind::kMaxDatabases);
  max2.max = 2;
  auto v = violations({spec("all-write", Kind::kAllDatabasesGrant, {"write"}),
                       spec("no-write-prod", Kind::kForbiddenGrant, {"write"}, {"prod*"}), max2},
                      {admin});
  EXPECT_EQ(v[0], (std::vector<std::string>{"all-write", "no-write-prod", "max-2"}));
}

TEST(DatabaseResources, SystemGrantsAreNotDatabaseGrants) {
  const Token health = token("1", {{"read", "system:health"}, {"read", "system:*"}});
  const Token mixed = token("2", {{"read", "system:health"}, {"read", "metrics"}});
  PolicySpec max1 = spec("max-1", Kind::kMaxDatabases);
  max1.max = 1;
  auto v = violations({spec("no-read-anywhere", Kind::kForbiddenGrant, {"read"}, {"*"}),
                       spec("all-read", Kind::kAllDatabasesGrant, {"read"}), max1},
                      {health, mixed});
  EXPECT_TRUE(v[0].empty()) << "system grants match no database pattern, not even \"*\"";
  EXPECT_EQ(v[1], (std::vector<std::string>{"no-read-anywhere"}))
      << "metrics counts, system:health does not";
}

TEST(DatabaseResources, CompliantPermissionsKeepNonDatabaseGrants) {
  auto set = PolicySet::compile({spec("no-read", Kind::kForbiddenGrant, {"read"}, {"*"})}, {});
  ASSERT_TRUE(set.ok());
  const Token t = token("3", {{"read", "system:health"}, {"read", "metrics"}});
  EXPECT_EQ((*set)->compliant_permissions(0, t),
            (std::vector<Permission>{{"read", "system:health"}}));
}

TEST(DatabaseResources, ScopeCoversClustersByGlobAndLabels) {
  Scope s;
  EXPECT_TRUE(scope_covers(s, ClusterInfo{"core-lab", {}}));
  s.clusters = {"core-*"};
  EXPECT_TRUE(scope_covers(s, ClusterInfo{"core-lab", {}}));
  EXPECT_FALSE(scope_covers(s, ClusterInfo{"prod-eu", {}}));
  s.labels = {{"env", "lab"}};
  EXPECT_TRUE(scope_covers(s, ClusterInfo{"core-lab", {{"env", "lab"}}}));
  EXPECT_FALSE(scope_covers(s, ClusterInfo{"core-lab", {{"env", "prod"}}}));
  EXPECT_FALSE(scope_covers(s, ClusterInfo{"core-lab", {}}));
}

}  // namespace
}  // namespace tw::policy

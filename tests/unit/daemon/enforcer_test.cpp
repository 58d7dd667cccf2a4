// Tests for daemon/enforcer.h: the violation lifecycle (SPEC §2 "Violation lifecycle", §3) driven
// through ClusterPoller::run_once with a manual clock, a real temp-file audit store and recorder,
// a fake cluster (lists tokens, counts revokes/restricts per token, fails on demand) and a fake
// alert sink (tests/support/fakes.h). Assertions read the audit_log, violations and
// enforcement_actions views through a second connection. Outside writers (`tokenwarden approve`)
// are simulated with their own AuditStore connection so that PRAGMA data_version changes as in
// production.

#include "daemon/enforcer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/sha256.h"
#include "daemon/poller.h"
#include "storage/audit_store.h"
#include "storage/enforcement.h"
#include "storage/recorder.h"
#include "storage/sqlite.h"
#include "tests/support/fakes.h"
#include "tests/unit/core/test_support.h"

namespace tw::daemon {
namespace {

using nlohmann::json;
using std::chrono::days;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using tw::testing::PrintTo;
using tw::testing::ts;

constexpr const char* kCluster = "prod-eu";
constexpr Duration kGrace = hours(1);
constexpr Duration kMs{1};

// ---- tokens the fake cluster (tests/support/fakes.h) lists
// ------------------------------------------------------------------------

Token make_token(std::string id, std::vector<Permission> perms,
                 std::string description = "svc-app") {
  Token t;
  t.id = std::move(id);
  t.description = std::move(description);
  t.permissions = std::move(perms);
  sort_permissions(t.permissions);
  t.created_at = ts("2025-12-01T00:00:00Z");
  return t;
}
Token good(std::string id) { return make_token(std::move(id), {{"read", "db1"}}); }
// Violates the all_databases_grant (write) policy below.
Token bad(std::string id) { return make_token(std::move(id), {{"read", "db1"}, {"write", "*"}}); }

using tw::testing::FakeAlertSink;
using tw::testing::FakeCluster;
using tw::testing::FakeClusterState;

// ---- policies ------------------------------------------------------------------------------

// A policy that acts after kGrace, on tokens of any age.
policy::PolicySpec make_policy(std::string name, policy::Kind kind, policy::Severity severity,
                               policy::Action action) {
  policy::PolicySpec p;
  p.name = std::move(name);
  p.kind = kind;
  p.severity = severity;
  p.action = action;
  p.grace_period = kGrace;
  p.min_token_age = Duration{0};
  return p;
}
policy::PolicySpec write_all_policy(policy::Action action = policy::Action::kRevoke,
                                    std::string name = "no-write-all") {
  auto p = make_policy(std::move(name), policy::Kind::kAllDatabasesGrant,
                       policy::Severity::kCritical, action);
  p.actions = {"write"};
  return p;
}
policy::PolicySpec metrics_write_policy() {
  auto p = make_policy("no-metrics-write", policy::Kind::kForbiddenGrant,
                       policy::Severity::kWarning, policy::Action::kRestrict);
  p.actions = {"write"};
  p.databases = {"metrics_*"};
  return p;
}
policy::PolicySpec secret_read_policy() {
  auto p = make_policy("no-secret-read", policy::Kind::kForbiddenGrant, policy::Severity::kCritical,
                       policy::Action::kRevoke);
  p.actions = {"read"};
  p.databases = {"secret_*"};
  return p;
}
policy::PolicySpec naming_policy() {  // alert only
  auto p = make_policy("naming", policy::Kind::kDescriptionPattern, policy::Severity::kInfo,
                       policy::Action::kAlert);
  p.pattern = "^svc-";
  return p;
}
policy::ExemptionSpec exempt_token(std::string token_id, Timestamp expires,
                                   std::string policy = "*") {
  policy::ExemptionSpec e;
  e.policy = std::move(policy);
  e.token_id = std::move(token_id);
  e.reason = "vendor integration, OPS-123";
  e.expires = expires;
  return e;
}
policy::ExemptionSpec exempt_description(std::string regex, Timestamp expires,
                                         std::string policy = "*") {
  policy::ExemptionSpec e;
  e.policy = std::move(policy);
  e.description = std::move(regex);
  e.reason = "legacy, OPS-124";
  e.expires = expires;
  return e;
}
EnforcementSettings settings(policy::Mode mode = policy::Mode::kEnforce, int per_cycle = 10,
                             int percent = 100) {
  EnforcementSettings s;
  s.mode = mode;
  s.max_actions_per_cycle = per_cycle;
  s.max_actions_percent = percent;
  return s;
}

// ---- the fixture ---------------------------------------------------------------------------

class EnforcerTest : public ::testing::Test {
 protected:
  EnforcerTest() : path_(dir_.file("audit.db")) { open_store(); }

  void open_store() {
    auto s = storage::AuditStore::open(path_, storage::AuditStore::Mode::kReadWrite);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    if (s.ok()) store_ = std::move(*s);
  }

  static ClusterConfig cluster_config() {
    ClusterConfig c;
    c.name = kCluster;
    c.source.cluster = kCluster;
    c.source.timeout = seconds(10);
    c.poll_interval = minutes(1);
    c.labels = {{"env", "prod"}};
    return c;
  }

  static std::shared_ptr<const policy::PolicySet> compile(
      std::vector<policy::PolicySpec> policies, std::vector<policy::ExemptionSpec> exemptions) {
    auto set = policy::PolicySet::compile(std::move(policies), std::move(exemptions));
    EXPECT_TRUE(set.ok()) << (set.ok() ? "" : set.error().message);
    return set.ok() ? *set : nullptr;
  }

  // The daemon as started: recorder, enforcer (configured), poller with the fake cluster.
  void start(std::vector<policy::PolicySpec> policies, EnforcementSettings s = settings(),
             std::vector<policy::ExemptionSpec> exemptions = {}) {
    ASSERT_NE(store_, nullptr);
    policies_ = std::move(policies);
    exemptions_ = std::move(exemptions);
    settings_ = s;
    recorder_ = std::make_unique<storage::InventoryRecorder>(*store_);
    auto enforcer =
        std::make_unique<Enforcer>(cluster_config(), clock_, Logger("enforcer", logs_), &alerts_);
    enforcer->configure(compile(policies_, exemptions_), settings_);
    poller_ = std::make_unique<ClusterPoller>(
        cluster_config(), std::make_unique<FakeCluster>(cluster_, clock_), *recorder_, clock_,
        Logger("poller", logs_), std::move(enforcer));
  }
  // A reload (SIGHUP): a freshly compiled set.
  void reconfigure(std::vector<policy::PolicySpec> policies, EnforcementSettings s,
                   std::vector<policy::ExemptionSpec> exemptions = {}) {
    policies_ = std::move(policies);
    exemptions_ = std::move(exemptions);
    settings_ = s;
    poller_->enforcer()->configure(compile(policies_, exemptions_), settings_);
  }
  // A reload that changes nothing (still makes the enforcer look again).
  void reload_same() { reconfigure(policies_, settings_, exemptions_); }
  // A daemon restart: every in-memory cache is gone.
  void restart() {
    poller_.reset();
    recorder_.reset();
    store_.reset();
    open_store();
    start(policies_, settings_, exemptions_);
  }

  CycleReport cycle() {
    RunOptions options;
    return poller_->run_once(options);
  }
  CycleReport cycle_after(Duration d) {
    clock_.advance(d);
    return cycle();
  }
  CycleReport cycle_at(Timestamp t) {
    clock_.set(t);
    return cycle();
  }

  // ---- reading the database (a second connection) ----
  std::unique_ptr<storage::Db> reader() {
    auto db = storage::Db::open(path_, storage::Db::Mode::kReadOnly);
    EXPECT_TRUE(db.ok()) << (db.ok() ? "" : db.error().message);
    return db.ok() ? std::move(*db) : nullptr;
  }
  std::int64_t count(const std::string& sql) {
    auto db = reader();
    if (!db) return -1;
    auto st = db->prepare(sql);
    EXPECT_TRUE(st.ok()) << sql << ": " << (st.ok() ? "" : st.error().message);
    if (!st.ok()) return -1;
    auto row = st->step();
    EXPECT_TRUE(row.ok() && *row) << sql;
    return st->int64(0);
  }
  // The first column of every row, as text ("<null>" for NULL).
  std::vector<std::string> column(const std::string& sql) {
    std::vector<std::string> out;
    auto db = reader();
    if (!db) return out;
    auto st = db->prepare(sql);
    EXPECT_TRUE(st.ok()) << sql << ": " << (st.ok() ? "" : st.error().message);
    if (!st.ok()) return out;
    while (true) {
      auto row = st->step();
      EXPECT_TRUE(row.ok()) << sql;
      if (!row.ok() || !*row) break;
      out.push_back(st->is_null(0) ? "<null>" : st->text(0));
    }
    return out;
  }
  std::string text(const std::string& sql) {
    auto c = column(sql);
    return c.empty() ? "<no row>" : c.front();
  }
  std::int64_t events(const std::string& kind) {
    return count("SELECT COUNT(*) FROM audit_log WHERE event = '" + kind + "'");
  }
  std::vector<json> details(const std::string& kind) {
    std::vector<json> out;
    for (const auto& d :
         column("SELECT detail FROM audit_log WHERE event = '" + kind + "' ORDER BY seq")) {
      out.push_back(json::parse(d, nullptr, false));
    }
    return out;
  }
  std::int64_t audit_rows() { return count("SELECT COUNT(*) FROM audit_log"); }
  std::int64_t poll_rows() { return count("SELECT COUNT(*) FROM polls"); }
  // Every event the enforcer writes.
  std::int64_t enforcement_events() {
    return count(
        "SELECT COUNT(*) FROM audit_log WHERE event IN ('violation_opened', 'violation_resolved', "
        "'action_planned', 'action_approved', 'action_succeeded', 'action_failed', "
        "'action_skipped', "
        "'enforcement_halted', 'exemption_applied')");
  }
  std::string violation_state(const std::string& token_id) {
    return text("SELECT state FROM violations WHERE token_id = '" + token_id +
                "' ORDER BY id DESC LIMIT 1");
  }
  std::string resolution(const std::string& token_id) {
    return text("SELECT resolution FROM violations WHERE token_id = '" + token_id +
                "' ORDER BY id DESC LIMIT 1");
  }
  std::string action_state(const std::string& token_id) {
    return text("SELECT state FROM enforcement_actions WHERE token_id = '" + token_id +
                "' ORDER BY id DESC LIMIT 1");
  }
  std::int64_t action_rows() { return count("SELECT COUNT(*) FROM enforcement_actions"); }
  bool halted() {
    auto db = reader();
    if (!db) return false;
    auto h = storage::cluster_halted(*db, kCluster);
    EXPECT_TRUE(h.ok());
    return h.ok() && *h;
  }

  // ---- outside writers ----
  // Another process (the CLI) writing through its own connection.
  void as_other_process(const std::function<void(storage::WriteTxn&)>& write) {
    auto other = storage::AuditStore::open(path_, storage::AuditStore::Mode::kReadWrite);
    ASSERT_TRUE(other.ok()) << other.error().message;
    auto txn = (*other)->begin();
    ASSERT_TRUE(txn.ok()) << txn.error().message;
    write(*txn);
    auto s = txn->commit();
    ASSERT_TRUE(s.ok()) << s.error().message;
  }
  // `tokenwarden approve --cluster prod-eu --all`: approves waiting actions, releases halts.
  void approve_all(const std::string& by = "alice") {
    as_other_process([&](storage::WriteTxn& txn) {
      const Timestamp now = clock_.now();
      auto pending = storage::pending_actions(txn.db(), kCluster);
      ASSERT_TRUE(pending.ok());
      for (const auto& a : *pending) {
        if (a.state != storage::ActionState::kAwaitingApproval) continue;
        ASSERT_TRUE(storage::approve_action(txn, a.id, by, now).ok());
        std::string d = "{\"action_id\":" + std::to_string(a.id) + ",\"by\":\"" + by +
                        "\",\"scope\":\"action\"}";
        ASSERT_TRUE(txn.append({EventKind::kActionApproved, kCluster, a.token_id, d}, now).ok());
      }
      auto open = storage::open_violations(txn.db(), kCluster);
      ASSERT_TRUE(open.ok());
      for (const auto& v : *open) {
        if (v.state != storage::ViolationState::kHalted || v.released) continue;
        ASSERT_TRUE(storage::release_violation(txn, v.id).ok());
        std::string d = "{\"violation_id\":" + std::to_string(v.id) + ",\"by\":\"" + by +
                        "\",\"scope\":\"halt\"}";
        ASSERT_TRUE(txn.append({EventKind::kActionApproved, kCluster, v.token_id, d}, now).ok());
      }
    });
  }

  // One poll whose transaction commits but whose actions never run: the process dies between
  // the commit and execute(). Returns the actions that were due.
  std::vector<storage::ActionRow> poll_then_crash() {
    storage::PollInput in;
    in.cluster = kCluster;
    in.started_at = clock_.now();
    in.finished_at = clock_.now();
    in.tokens = cluster_->list();
    EnforcementReport rep;
    Enforcer* enforcer = poller_->enforcer();
    const Timestamp now = clock_.now();
    auto s = recorder_->record(
        std::move(in),
        [&](storage::WriteTxn& txn, const storage::Inventory& inv, storage::PollSummary& summary) {
          return enforcer->on_poll(txn, inv, summary, now, rep);
        });
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    enforcer->after_commit(s.ok());
    std::vector<storage::ActionRow> out;
    for (auto& r : rep.to_run) out.push_back(r.action);
    return out;
  }
  // Claims an action as execute() does just before sending the request.
  void claim(const storage::ActionRow& a, std::int64_t pid) {
    auto txn = store_->begin();
    ASSERT_TRUE(txn.ok());
    auto claimed = storage::claim_action(*txn, a.id, clock_.now(), pid, a.attempt_started_at);
    ASSERT_TRUE(claimed.ok()) << claimed.error().message;
    ASSERT_TRUE(*claimed);
    ASSERT_TRUE(txn->commit().ok());
  }

  tw::testing::TempDir dir_;
  std::string path_;
  std::unique_ptr<storage::AuditStore> store_;
  ManualClock clock_{ts("2026-03-01T00:00:00Z")};
  std::shared_ptr<FakeClusterState> cluster_ = std::make_shared<FakeClusterState>();
  FakeAlertSink alerts_;
  std::shared_ptr<MemoryLogSink> logs_ = std::make_shared<MemoryLogSink>();
  std::unique_ptr<storage::InventoryRecorder> recorder_;
  std::unique_ptr<ClusterPoller> poller_;
  std::vector<policy::PolicySpec> policies_;
  std::vector<policy::ExemptionSpec> exemptions_;
  EnforcementSettings settings_;
};

// A cluster of `n` compliant tokens plus the given ones.
void populate(FakeClusterState& c, int n, std::vector<Token> extra = {}) {
  for (int i = 0; i < n; ++i) c.put(good("good-" + std::to_string(100 + i)));
  for (auto& t : extra) c.put(std::move(t));
}

// ---- the lifecycle ---------------------------------------------------------------------------

TEST_F(EnforcerTest, RevokeAfterGracePeriodThenResolvedRevoked) {
  populate(*cluster_, 5, {bad("bad-1")});
  start({write_all_policy()});
  const Timestamp t0 = clock_.now();

  auto r1 = cycle();
  ASSERT_TRUE(r1.recorded) << r1.error;
  EXPECT_TRUE(r1.enforcement.evaluated);
  EXPECT_EQ(r1.enforcement.opened, 1);
  ASSERT_EQ(events("violation_opened"), 1);
  json opened = details("violation_opened").at(0);
  EXPECT_EQ(opened.value("policy", ""), "no-write-all");
  EXPECT_EQ(opened.value("action", ""), "revoke");
  EXPECT_EQ(opened.value("severity", ""), "critical");
  EXPECT_EQ(opened.value("action_due_at", ""), format_timestamp(t0 + kGrace));
  EXPECT_EQ(opened.value("mode", ""), "enforce");
  EXPECT_FALSE(opened.value("reason", "").empty());
  EXPECT_EQ(text("SELECT token_id FROM audit_log WHERE event = 'violation_opened'"), "bad-1");
  EXPECT_EQ(text("SELECT cluster FROM audit_log WHERE event = 'violation_opened'"), kCluster);
  EXPECT_EQ(violation_state("bad-1"), "open");
  EXPECT_EQ(text("SELECT opened_at FROM violations"), format_timestamp(t0));
  EXPECT_EQ(alerts_.active_named("TokenPolicyViolation", kCluster), 1);

  // Within the grace period: nothing more, however often it polls.
  cycle_after(minutes(30));
  cycle_at(t0 + kGrace - kMs);
  EXPECT_EQ(events("violation_opened"), 1);
  EXPECT_EQ(events("action_planned"), 0);
  EXPECT_EQ(action_rows(), 0);
  EXPECT_EQ(cluster_->revoke_calls(), 0);

  // Due: planned (event + row) and run, once.
  auto due = cycle_at(t0 + kGrace);
  EXPECT_EQ(due.enforcement.planned, 1);
  EXPECT_EQ(due.enforcement.succeeded, 1);
  EXPECT_EQ(events("action_planned"), 1);
  EXPECT_EQ(events("action_succeeded"), 1);
  EXPECT_EQ(cluster_->revokes_of("bad-1"), 1);
  EXPECT_EQ(cluster_->revoke_calls(), 1);
  EXPECT_EQ(cluster_->restrict_calls(), 0);
  EXPECT_EQ(action_rows(), 1);
  EXPECT_EQ(action_state("bad-1"), "succeeded");
  EXPECT_EQ(text("SELECT attempts FROM enforcement_actions"), "1");
  EXPECT_EQ(text("SELECT action FROM enforcement_actions"), "revoke");
  EXPECT_EQ(violation_state("bad-1"), "enforced");
  EXPECT_EQ(details("action_succeeded").at(0).value("outcome", ""), "revoked");

  // The next poll sees the token revoked: resolved `revoked`, nothing sent again.
  auto next = cycle_after(minutes(1));
  EXPECT_EQ(events("token_revoked"), 1);
  EXPECT_EQ(events("violation_resolved"), 1);
  EXPECT_EQ(violation_state("bad-1"), "resolved");
  EXPECT_EQ(resolution("bad-1"), "revoked");
  EXPECT_EQ(details("violation_resolved").at(0).value("resolution", ""), "revoked");
  EXPECT_EQ(alerts_.active_named("TokenPolicyViolation", kCluster), 0);

  for (int i = 0; i < 5; ++i) cycle_after(hours(1));
  EXPECT_EQ(cluster_->revoke_calls(), 1);
  EXPECT_EQ(events("violation_opened"), 1);
  EXPECT_EQ(events("action_planned"), 1);
  EXPECT_EQ(events("violation_resolved"), 1);

  // The webhook saw each state change once, in order.
  std::vector<std::string> want{"violation_opened", "action_planned", "action_succeeded",
                                "violation_resolved"};
  EXPECT_EQ(alerts_.events(), want);
  ASSERT_EQ(alerts_.changes.size(), 4u);
  EXPECT_EQ(alerts_.changes[0].state, "open");
  EXPECT_EQ(alerts_.changes[0].token_id, "bad-1");
  EXPECT_EQ(alerts_.changes[0].policy, "no-write-all");
  EXPECT_EQ(alerts_.changes[0].cluster, kCluster);
  EXPECT_EQ(alerts_.changes[2].state, "enforced");
  EXPECT_EQ(alerts_.changes[3].state, "resolved");
  EXPECT_NE(alerts_.changes[0].violation_id, 0);
}

// [audit] require_export: while the export gate is closed the due action stays planned, nothing
// is sent, the hold is recorded once; the action runs in the first cycle after the gate opens.
TEST_F(EnforcerTest, ActionsWaitForTheAuditExportToCatchUp) {
  populate(*cluster_, 5, {bad("bad-1")});
  start({write_all_policy()});
  std::optional<std::string> lagging =
      "export sink remote has not delivered events recorded 6m ago";
  poller_->enforcer()->set_export_gate([&](Timestamp) { return lagging; });
  const Timestamp t0 = clock_.now();
  cycle();
  auto held = cycle_at(t0 + kGrace);
  EXPECT_EQ(held.enforcement.planned, 1);
  EXPECT_EQ(held.enforcement.export_held, 1);
  EXPECT_EQ(held.enforcement.succeeded, 0);
  EXPECT_EQ(cluster_->revoke_calls(), 0);
  EXPECT_EQ(action_state("bad-1"), "planned");
  ASSERT_EQ(events("enforcement_halted"), 1);
  json d = details("enforcement_halted").at(0);
  EXPECT_EQ(d.value("reason", ""), "export_lagging");
  EXPECT_EQ(d.value("planned", 0), 1);
  EXPECT_EQ(d["policies"].value("no-write-all", 0), 1);

  // Still lagging: still nothing sent, the hold is not recorded again.
  auto again = cycle_after(minutes(1));
  EXPECT_EQ(again.enforcement.export_held, 1);
  EXPECT_EQ(cluster_->revoke_calls(), 0);
  EXPECT_EQ(events("enforcement_halted"), 1);

  // Caught up: the planned action runs once, in the next cycle.
  lagging.reset();
  auto run = cycle_after(minutes(1));
  EXPECT_EQ(run.enforcement.succeeded, 1);
  EXPECT_EQ(cluster_->revokes_of("bad-1"), 1);
  EXPECT_EQ(action_state("bad-1"), "succeeded");
  EXPECT_EQ(events("action_planned"), 1);
}

TEST_F(EnforcerTest, RestrictPatchesTheCompliantPermissionsThenResolvedRestricted) {
  populate(
      *cluster_, 3,
      {make_token(
          "wide",
          {{"read", "metrics_a"}, {"write", "metrics_a"}, {"write", "logs"}, {"write", "*"}})});
  start({metrics_write_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  ASSERT_EQ(events("violation_opened"), 1);
  EXPECT_EQ(details("violation_opened").at(0).value("action", ""), "restrict");

  cycle_at(t0 + kGrace);
  EXPECT_EQ(cluster_->restricts["wide"], 1);
  EXPECT_EQ(cluster_->revoke_calls(), 0);
  std::vector<Permission> want{{"read", "metrics_a"}, {"write", "logs"}};
  EXPECT_EQ(permissions_json(cluster_->restrict_targets["wide"]), permissions_json(want));
  ASSERT_EQ(events("action_planned"), 1);
  json planned = details("action_planned").at(0);
  EXPECT_EQ(planned.value("action", ""), "restrict");
  EXPECT_EQ(planned["permissions"], json::parse(permissions_json(want)));
  EXPECT_EQ(action_state("wide"), "succeeded");
  EXPECT_EQ(details("action_succeeded").at(0).value("outcome", ""), "restricted");

  cycle_after(minutes(1));
  EXPECT_EQ(events("token_updated"), 1);
  EXPECT_EQ(events("violation_resolved"), 1);
  EXPECT_EQ(resolution("wide"), "restricted");
  cycle_after(hours(2));
  EXPECT_EQ(cluster_->restrict_calls(), 1);
  EXPECT_EQ(events("violation_opened"), 1);
}

TEST_F(EnforcerTest, AlertOnlyPolicyOpensAndNeverActs) {
  populate(*cluster_, 2, {make_token("oddly-named", {{"write", "*"}}, "bob's laptop")});
  start({naming_policy()});
  cycle();
  ASSERT_EQ(events("violation_opened"), 1);
  EXPECT_TRUE(details("violation_opened").at(0)["action_due_at"].is_null());
  EXPECT_EQ(alerts_.active_named("TokenPolicyViolation", kCluster), 1);
  for (int i = 0; i < 4; ++i) cycle_after(days(2));
  EXPECT_EQ(action_rows(), 0);
  EXPECT_EQ(events("action_planned") + events("action_skipped"), 0);
  EXPECT_EQ(violation_state("oddly-named"), "open");
  EXPECT_EQ(cluster_->revoke_calls() + cluster_->restrict_calls(), 0);
}

// Changes are judged at the poll that records them, whether the enforcer re-judges the whole
// inventory (small clusters, many changes) or only the changed tokens (large clusters).
class ChangeDetectionTest : public EnforcerTest, public ::testing::WithParamInterface<int> {};

TEST_P(ChangeDetectionTest, TokenCreatedAtALaterPollOpensAViolation) {
  populate(*cluster_, GetParam());
  start({write_all_policy()});
  cycle();
  EXPECT_EQ(events("violation_opened"), 0);
  cluster_->put(bad("late"));
  auto r = cycle_after(minutes(1));
  EXPECT_EQ(events("token_created"), 1);
  EXPECT_EQ(events("violation_opened"), 1)
      << "a new violating token is judged at the poll that sees it";
  EXPECT_TRUE(r.enforcement.evaluated);
  // Grace counts from that detection.
  const Timestamp detected = clock_.now();
  EXPECT_EQ(details("violation_opened").at(0).value("action_due_at", ""),
            format_timestamp(detected + kGrace));
  cycle_at(detected + kGrace - kMs);
  EXPECT_EQ(cluster_->revoke_calls(), 0);
  cycle_at(detected + kGrace);
  EXPECT_EQ(cluster_->revokes_of("late"), 1);
  cycle_after(minutes(1));
  EXPECT_EQ(resolution("late"), "revoked");
}

TEST_P(ChangeDetectionTest, TokenChangedIntoAViolationIsJudgedAtThatPoll) {
  populate(*cluster_, GetParam());
  start({write_all_policy()});
  cycle();
  cluster_->put(bad("good-100"));  // someone widened its grants
  cycle_after(minutes(1));
  EXPECT_EQ(events("token_updated"), 1);
  EXPECT_EQ(events("violation_opened"), 1);
  cluster_->put(good("good-100"));  // and took it back
  cycle_after(minutes(1));
  EXPECT_EQ(resolution("good-100"), "compliant");
  EXPECT_EQ(events("violation_resolved"), 1);
}

TEST_P(ChangeDetectionTest, SeveralChangesAtOnce) {
  populate(*cluster_, GetParam(), {bad("bad-1"), bad("bad-2")});
  start({write_all_policy()});
  cycle();
  ASSERT_EQ(events("violation_opened"), 2);
  cluster_->put(good("bad-1"));                         // fixed
  cluster_->tokens["bad-2"].revoked_at = clock_.now();  // revoked by hand
  cluster_->put(bad("new-1"));                          // a new offender
  cluster_->tokens.erase("good-101");                   // an unrelated one vanishes
  cycle_after(minutes(1));
  EXPECT_EQ(resolution("bad-1"), "compliant");
  EXPECT_EQ(resolution("bad-2"), "revoked");
  EXPECT_EQ(violation_state("new-1"), "open");
  EXPECT_EQ(events("violation_opened"), 3);
  EXPECT_EQ(events("violation_resolved"), 2);
}

TEST_P(ChangeDetectionTest, ClockDrivenVerdictsChangeOnTime) {
  // max_age 120 d: "old-a" turns too old 1 h after t0, "old-b" 2 h after (the other tokens are
  // 90 d old); "soon" (expires_soon 1 d) enters its window 3 h after t0 and expires 1 d later.
  const Timestamp t0 = clock_.now();
  populate(*cluster_, GetParam());
  Token a = good("old-a");
  a.created_at = t0 - days(120) + hours(1);
  Token b = good("old-b");
  b.created_at = t0 - days(120) + hours(2);
  Token soon = good("soon");
  soon.created_at = t0 - days(1);
  soon.expires_at = t0 + hours(3) + days(1);
  cluster_->put(a);
  cluster_->put(b);
  cluster_->put(soon);
  policy::PolicySpec age;
  age.name = "rotate";
  age.kind = policy::Kind::kMaxAge;
  age.max_age = days(120);
  age.action = policy::Action::kAlert;
  age.min_token_age = Duration{0};
  policy::PolicySpec expiring;
  expiring.name = "expires-soon";
  expiring.kind = policy::Kind::kExpiresSoon;
  expiring.within = days(1);
  expiring.action = policy::Action::kAlert;
  expiring.min_token_age = Duration{0};
  start({age, expiring});
  cycle();
  EXPECT_EQ(events("violation_opened"), 0);
  auto opened = [&] {
    return column("SELECT token_id || '/' || policy FROM violations ORDER BY id");
  };

  cycle_at(t0 + hours(1));
  EXPECT_TRUE(opened().empty()) << "exactly max_age old is still compliant";
  cycle_at(t0 + hours(1) + kMs);
  EXPECT_EQ(opened(), (std::vector<std::string>{"old-a/rotate"}));
  cycle_at(t0 + hours(2) + kMs);
  EXPECT_EQ(opened(), (std::vector<std::string>{"old-a/rotate", "old-b/rotate"}));
  cycle_at(t0 + hours(3) - kMs);
  EXPECT_EQ(opened().size(), 2u);
  cycle_at(t0 + hours(3));
  EXPECT_EQ(opened(),
            (std::vector<std::string>{"old-a/rotate", "old-b/rotate", "soon/expires-soon"}));
  // Nothing else happens until "soon" expires; then its notice resolves (it is no longer judged).
  const auto rows = audit_rows();
  cycle_at(t0 + hours(10));
  cycle_at(t0 + hours(20));
  EXPECT_EQ(audit_rows(), rows);
  cycle_at(t0 + hours(3) + days(1));
  EXPECT_EQ(resolution("soon"), "compliant");
  EXPECT_EQ(violation_state("old-a"), "open");
}

INSTANTIATE_TEST_SUITE_P(Inventories, ChangeDetectionTest, ::testing::Values(3, 60),
                         [](const ::testing::TestParamInfo<int>& p) {
                           return "Tokens" + std::to_string(p.param);
                         });

// ---- approvals ---------------------------------------------------------------------------------

TEST_F(EnforcerTest, RequireApprovalWaitsForTheOperator) {
  populate(*cluster_, 5, {bad("bad-1")});
  auto p = write_all_policy();
  p.require_approval = true;
  start({p});
  const Timestamp t0 = clock_.now();
  cycle();
  cycle_at(t0 + kGrace);
  EXPECT_EQ(cluster_->revoke_calls(), 0);
  ASSERT_EQ(events("action_planned"), 1);
  EXPECT_TRUE(details("action_planned").at(0).value("awaiting_approval", false));
  EXPECT_EQ(action_state("bad-1"), "awaiting_approval");
  EXPECT_EQ(violation_state("bad-1"), "awaiting_approval");

  // Nothing runs, nothing is planned twice, whatever makes it look again.
  cycle_after(minutes(10));
  reload_same();
  cycle_after(minutes(10));
  cycle_after(hours(3));
  EXPECT_EQ(cluster_->revoke_calls(), 0);
  EXPECT_EQ(action_rows(), 1);
  EXPECT_EQ(events("action_planned"), 1);

  approve_all();
  EXPECT_EQ(events("action_approved"), 1);
  auto r = cycle_after(minutes(1));
  EXPECT_EQ(cluster_->revokes_of("bad-1"), 1);
  EXPECT_EQ(r.enforcement.succeeded, 1);
  EXPECT_EQ(action_state("bad-1"), "succeeded");
  EXPECT_EQ(action_rows(), 1) << "the approved action runs; no second one is planned";
  EXPECT_EQ(events("action_succeeded"), 1);

  cycle_after(minutes(1));
  EXPECT_EQ(resolution("bad-1"), "revoked");
  cycle_after(hours(1));
  EXPECT_EQ(cluster_->revoke_calls(), 1);
}

TEST_F(EnforcerTest, WaitingActionIsSkippedWhenTheViolationEnds) {
  populate(*cluster_, 5, {bad("bad-1")});
  auto p = write_all_policy();
  p.require_approval = true;
  start({p});
  const Timestamp t0 = clock_.now();
  cycle();
  cycle_at(t0 + kGrace);
  ASSERT_EQ(action_state("bad-1"), "awaiting_approval");
  cluster_->put(good("bad-1"));  // fixed by its owner
  cycle_after(minutes(1));
  EXPECT_EQ(resolution("bad-1"), "compliant");
  EXPECT_EQ(action_state("bad-1"), "skipped");
  EXPECT_EQ(events("action_skipped"), 1);
  approve_all();  // too late: nothing awaits
  cycle_after(minutes(1));
  EXPECT_EQ(cluster_->revoke_calls(), 0);
}

// ---- retries -----------------------------------------------------------------------------------

TEST_F(EnforcerTest, FailedActionIsRetriedOnlyAfterTheBackOff) {
  populate(*cluster_, 5, {bad("bad-1")});
  start({write_all_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  cluster_->fail_next = 2;

  const Timestamp f1 = t0 + kGrace;
  auto r = cycle_at(f1);
  EXPECT_EQ(r.enforcement.failed, 1);
  EXPECT_EQ(cluster_->revoke_calls(), 1);
  ASSERT_EQ(events("action_failed"), 1);
  json d1 = details("action_failed").at(0);
  EXPECT_FALSE(d1.value("final", true));
  EXPECT_EQ(d1.value("attempt", 0), 1);
  EXPECT_EQ(d1.value("retry_at", ""), format_timestamp(f1 + seconds(30)));
  EXPECT_NE(d1.value("error", "").find("503"), std::string::npos);
  EXPECT_EQ(action_state("bad-1"), "planned");
  EXPECT_EQ(text("SELECT attempts FROM enforcement_actions"), "1");
  EXPECT_NE(text("SELECT error FROM enforcement_actions"), "<null>");
  EXPECT_EQ(violation_state("bad-1"), "enforcing");

  cycle_at(f1 + seconds(30) - kMs);
  EXPECT_EQ(cluster_->revoke_calls(), 1) << "not before the back-off";
  cycle_at(f1 + seconds(30));
  EXPECT_EQ(cluster_->revoke_calls(), 2);
  ASSERT_EQ(events("action_failed"), 2);
  const Timestamp f2 = f1 + seconds(30);
  EXPECT_EQ(details("action_failed").at(1).value("retry_at", ""),
            format_timestamp(f2 + minutes(1)));

  cycle_at(f2 + minutes(1) - kMs);
  EXPECT_EQ(cluster_->revoke_calls(), 2);
  cycle_at(f2 + minutes(1));
  EXPECT_EQ(cluster_->revoke_calls(), 3);
  EXPECT_EQ(events("action_succeeded"), 1);
  EXPECT_EQ(action_state("bad-1"), "succeeded");
  EXPECT_EQ(text("SELECT attempts FROM enforcement_actions"), "3");
  EXPECT_EQ(events("action_planned"), 1) << "retries are attempts of the one planned action";
  EXPECT_EQ(action_rows(), 1);
  EXPECT_EQ(details("action_succeeded").at(0).value("attempt", 0), 3);

  cycle_after(minutes(1));
  EXPECT_EQ(resolution("bad-1"), "revoked");
  EXPECT_EQ(cluster_->revoke_calls(), 3);
}

// ---- Retry-After (issue 10) -------------------------------------------------------------------

TEST_F(EnforcerTest, AnActionToldToWaitIsNotRetriedBeforeTheWait) {
  populate(*cluster_, 5, {bad("bad-1")});
  start({write_all_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  cluster_->fail_next = 1;
  cluster_->fail_retry_after = minutes(10);

  const Timestamp f1 = t0 + kGrace;
  auto r = cycle_at(f1);
  EXPECT_EQ(r.enforcement.failed, 1);
  EXPECT_EQ(r.enforcement.retry_after, std::optional<Duration>(minutes(10)));
  EXPECT_EQ(r.retry_after, std::optional<Duration>(minutes(10))) << "the next poll waits too";
  EXPECT_EQ(cluster_->revoke_calls(), 1);
  EXPECT_EQ(cluster_->reads["bad-1"], 0) << "told to wait: not even the read-back is sent";
  ASSERT_EQ(events("action_failed"), 1);
  EXPECT_EQ(details("action_failed").at(0).value("retry_at", ""),
            format_timestamp(f1 + minutes(10)));

  cycle_at(f1 + seconds(30));  // the back-off alone would retry now
  cycle_at(f1 + minutes(10) - kMs);
  EXPECT_EQ(cluster_->revoke_calls(), 1) << "not before the wait the cluster asked for";
  cycle_at(f1 + minutes(10));
  EXPECT_EQ(cluster_->revoke_calls(), 2);
  EXPECT_EQ(action_state("bad-1"), "succeeded");
}

TEST_F(EnforcerTest, AShorterWaitThanTheBackOffKeepsTheBackOff) {
  populate(*cluster_, 5, {make_token("bad-1", {{"read", "metrics_a"}, {"write", "metrics_a"}})});
  start({metrics_write_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  cluster_->fail_next = 1;
  cluster_->fail_retry_after = seconds(5);
  const Timestamp f1 = t0 + kGrace;
  auto r = cycle_at(f1);
  EXPECT_EQ(cluster_->restrict_calls(), 1);
  EXPECT_EQ(r.retry_after, std::optional<Duration>(seconds(5)));
  EXPECT_EQ(details("action_failed").at(0).value("retry_at", ""),
            format_timestamp(f1 + seconds(30)));
  cycle_at(f1 + seconds(30));
  EXPECT_EQ(cluster_->restrict_calls(), 2);
  EXPECT_EQ(action_state("bad-1"), "succeeded");
}

TEST_F(EnforcerTest, TheOtherActionsOfTheCycleWaitWhenTheClusterAsksToWait) {
  populate(*cluster_, 20, {bad("bad-1"), bad("bad-2"), bad("bad-3")});
  start({write_all_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  cluster_->fail_next = 1;
  cluster_->fail_retry_after = minutes(2);
  const Timestamp f1 = t0 + kGrace;
  auto r = cycle_at(f1);
  EXPECT_EQ(cluster_->revoke_calls(), 1) << "nothing more is sent after a 429/503";
  EXPECT_EQ(r.enforcement.failed, 1);
  EXPECT_EQ(r.enforcement.succeeded, 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM enforcement_actions WHERE state = 'planned'"), 3)
      << "the actions not started stay planned";
  cycle_at(f1 + minutes(2));
  EXPECT_EQ(cluster_->revoke_calls(), 4);
  EXPECT_EQ(count("SELECT COUNT(*) FROM enforcement_actions WHERE state = 'succeeded'"), 3);
}

TEST_F(EnforcerTest, ActionFailsForGoodAfterFiveAttempts) {
  populate(*cluster_, 5, {bad("bad-1")});
  start({write_all_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  cluster_->fail_next = 1000;

  // 30 s, 1 min, 2 min, 4 min between the five attempts.
  Timestamp at = t0 + kGrace;
  const std::vector<Duration> gaps{seconds(30), minutes(1), minutes(2), minutes(4)};
  cycle_at(at);
  for (std::size_t i = 0; i < gaps.size(); ++i) {
    cycle_at(at + gaps[i] - kMs);
    EXPECT_EQ(cluster_->revoke_calls(), static_cast<int>(i + 1))
        << "early retry before attempt " << i + 2;
    at += gaps[i];
    cycle_at(at);
    EXPECT_EQ(cluster_->revoke_calls(), static_cast<int>(i + 2)) << "attempt " << i + 2;
  }
  ASSERT_EQ(events("action_failed"), 5);
  auto failed = details("action_failed");
  for (int i = 0; i < 4; ++i)
    EXPECT_FALSE(failed[static_cast<std::size_t>(i)].value("final", true)) << i;
  EXPECT_TRUE(failed[4].value("final", false));
  EXPECT_TRUE(failed[4]["retry_at"].is_null());
  EXPECT_EQ(failed[4].value("attempt", 0), 5);
  EXPECT_EQ(action_state("bad-1"), "failed");
  EXPECT_EQ(text("SELECT attempts FROM enforcement_actions"), "5");
  EXPECT_EQ(violation_state("bad-1"), "failed");
  EXPECT_EQ(alerts_.active_named("TokenActionFailed", kCluster), 1);
  EXPECT_EQ(alerts_.active_named("TokenPolicyViolation", kCluster), 1);
  ASSERT_FALSE(alerts_.changes.empty());
  EXPECT_EQ(alerts_.changes.back().event, "action_failed");
  EXPECT_EQ(alerts_.changes.back().state, "failed");

  // Failed for good: never tried again, whatever makes it look again.
  cycle_after(hours(1));
  reload_same();
  cycle_after(minutes(1));
  cycle_after(days(1));
  EXPECT_EQ(cluster_->revoke_calls(), 5);
  EXPECT_EQ(action_rows(), 1);
  EXPECT_EQ(events("action_planned"), 1);
}

TEST_F(EnforcerTest, ARevocationIsBelievedOnlyWhenTheReadBackShowsIt) {
  populate(*cluster_, 5, {bad("bad-1")});
  start({write_all_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  cluster_->already_gone = true;  // answers 404 and leaves the token active
  cycle_at(t0 + kGrace);
  EXPECT_EQ(cluster_->revoke_calls(), 1);
  EXPECT_EQ(cluster_->reads["bad-1"], 1);
  EXPECT_EQ(events("action_succeeded"), 0);
  ASSERT_EQ(events("action_failed"), 1);
  auto failed = details("action_failed").at(0);
  EXPECT_NE(failed.value("error", "").find("still active"), std::string::npos) << failed.dump();
  EXPECT_FALSE(failed.value("final", true));
  EXPECT_EQ(action_state("bad-1"), "planned") << "retried with the back-off";
  cluster_->already_gone = false;
  cycle_at(t0 + kGrace + seconds(31));
  EXPECT_EQ(cluster_->revoke_calls(), 2);
  ASSERT_EQ(events("action_succeeded"), 1);
  EXPECT_EQ(details("action_succeeded").at(0).value("outcome", ""), "revoked");
}

TEST_F(EnforcerTest, ARevocationReadBackAsGoneIsRecordedAsGone) {
  populate(*cluster_, 5, {bad("bad-1")});
  start({write_all_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  cluster_->already_gone = true;
  cluster_->vanish_on_revoke = true;  // 404, and the read-back finds no such token
  cycle_at(t0 + kGrace);
  ASSERT_EQ(events("action_succeeded"), 1);
  EXPECT_EQ(details("action_succeeded").at(0).value("outcome", ""), "gone");
  EXPECT_EQ(violation_state("bad-1"), "enforced");
  cycle_after(minutes(1));
  cycle_after(minutes(1));
  EXPECT_EQ(cluster_->revoke_calls(), 1);
  EXPECT_EQ(resolution("bad-1"), "removed");
}

TEST_F(EnforcerTest, AnActionThatDidNotHoldIsPlannedAgainThenFails) {
  populate(*cluster_, 5, {bad("bad-1")});
  start({write_all_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  Duration at = kGrace;
  cycle_at(t0 + at);
  ASSERT_EQ(cluster_->revoke_calls(), 1);
  for (int round = 1; round <= Enforcer::kMaxReplans; ++round) {
    cluster_->tokens["bad-1"].revoked_at.reset();  // the cluster forgets the revocation
    at += minutes(1);
    cycle_at(t0 + at);  // sees it active: did not hold; planned again and run, until the last
    EXPECT_EQ(events("action_failed"), round);
    const int expected_calls = std::min(round + 1, Enforcer::kMaxReplans);
    ASSERT_EQ(cluster_->revoke_calls(), expected_calls) << round;
    ASSERT_EQ(events("action_succeeded"), expected_calls) << round;
  }
  auto unheld = details("action_failed");
  ASSERT_EQ(unheld.size(), static_cast<std::size_t>(Enforcer::kMaxReplans));
  for (std::size_t i = 0; i < unheld.size(); ++i) {
    EXPECT_EQ(unheld[i].value("outcome", ""), "did_not_hold");
    EXPECT_EQ(unheld[i].value("final", false), i + 1 == unheld.size()) << i;
  }
  EXPECT_EQ(violation_state("bad-1"), "failed");
  EXPECT_EQ(alerts_.active_named("TokenActionFailed", kCluster), 1);
  const int calls = cluster_->revoke_calls();
  cycle_at(t0 + at + hours(1));
  EXPECT_EQ(cluster_->revoke_calls(), calls) << "failed for good: nothing more is sent";
}

TEST_F(EnforcerTest, RetryIsNotSentWhenTheTokenWasRevokedMeanwhile) {
  populate(*cluster_, 5, {bad("bad-1")});
  start({write_all_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  cluster_->fail_next = 1;
  cycle_at(t0 + kGrace);
  ASSERT_EQ(events("action_failed"), 1);
  cluster_->tokens["bad-1"].revoked_at = clock_.now();  // an admin did it by hand
  cycle_at(t0 + kGrace + seconds(30));
  EXPECT_EQ(cluster_->revoke_calls(), 1);
  EXPECT_EQ(resolution("bad-1"), "revoked");
  EXPECT_NE(action_state("bad-1"), "planned");
  cycle_after(hours(1));
  EXPECT_EQ(cluster_->revoke_calls(), 1);
}

// ---- monitor mode --------------------------------------------------------------------------

TEST_F(EnforcerTest, DaemonMonitorModeSkipsOnceThenEnforceActs) {
  populate(*cluster_, 5, {bad("bad-1")});
  start({write_all_policy()}, settings(policy::Mode::kMonitor));
  const Timestamp t0 = clock_.now();
  cycle();
  EXPECT_EQ(details("violation_opened").at(0).value("mode", ""), "monitor");
  cycle_at(t0 + kGrace);
  ASSERT_EQ(events("action_skipped"), 1);
  EXPECT_EQ(details("action_skipped").at(0).value("reason", ""), "monitor");
  EXPECT_EQ(action_state("bad-1"), "skipped");
  EXPECT_EQ(violation_state("bad-1"), "skipped");
  EXPECT_EQ(events("action_planned"), 0);

  cycle_after(minutes(5));
  reload_same();
  cycle_after(minutes(5));
  cycle_after(days(1));
  EXPECT_EQ(events("action_skipped"), 1) << "recorded once, not every cycle";
  EXPECT_EQ(action_rows(), 1);
  EXPECT_EQ(cluster_->revoke_calls(), 0);

  reconfigure(policies_, settings(policy::Mode::kEnforce));
  cycle_after(minutes(1));
  EXPECT_EQ(events("action_planned"), 1);
  EXPECT_EQ(cluster_->revokes_of("bad-1"), 1);
  EXPECT_EQ(violation_state("bad-1"), "enforced");
}

TEST_F(EnforcerTest, PolicyMonitorModeOverridesTheDaemon) {
  populate(*cluster_, 5, {bad("bad-1"), make_token("bad-2", {{"read", "secret_keys"}})});
  auto watched = write_all_policy();
  watched.mode = policy::Mode::kMonitor;
  auto enforced = secret_read_policy();
  enforced.mode = policy::Mode::kEnforce;
  start({watched, enforced}, settings(policy::Mode::kEnforce));
  const Timestamp t0 = clock_.now();
  cycle();
  cycle_at(t0 + kGrace);
  EXPECT_EQ(cluster_->revokes_of("bad-1"), 0);
  EXPECT_EQ(events("action_skipped"), 1);
  EXPECT_EQ(action_state("bad-1"), "skipped");
  EXPECT_EQ(cluster_->revokes_of("bad-2"), 1) << "the other policy enforces";

  // Daemon in monitor, policy explicitly enforce: the policy wins.
  watched.mode = policy::Mode::kEnforce;
  reconfigure({watched, enforced}, settings(policy::Mode::kMonitor));
  cycle_after(minutes(1));
  EXPECT_EQ(cluster_->revokes_of("bad-1"), 1);
  EXPECT_EQ(events("action_skipped"), 1);
  EXPECT_EQ(cluster_->restrict_calls(), 0);
}

TEST_F(EnforcerTest, SwitchingToMonitorStopsAPendingRetry) {
  populate(*cluster_, 5, {bad("bad-1")});
  start({write_all_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  cluster_->fail_next = 1;
  cycle_at(t0 + kGrace);
  ASSERT_EQ(cluster_->revoke_calls(), 1);
  ASSERT_EQ(action_state("bad-1"), "planned") << "a retry is pending";

  // The operator switches the daemon to monitor: "never changes a token".
  reconfigure(policies_, settings(policy::Mode::kMonitor));
  cycle_at(t0 + kGrace + seconds(30));
  cycle_after(minutes(5));
  cycle_after(hours(1));
  EXPECT_EQ(cluster_->revoke_calls(), 1) << "no request in monitor mode, not even a retry";
  EXPECT_TRUE(cluster_->tokens["bad-1"].revoked_at == std::nullopt);
}

TEST_F(EnforcerTest, SwitchingToMonitorStopsAnApprovedAction) {
  populate(*cluster_, 5, {bad("bad-1")});
  auto p = write_all_policy();
  p.require_approval = true;
  start({p});
  const Timestamp t0 = clock_.now();
  cycle();
  cycle_at(t0 + kGrace);
  ASSERT_EQ(action_state("bad-1"), "awaiting_approval");
  reconfigure(policies_, settings(policy::Mode::kMonitor));
  cycle_after(minutes(1));
  approve_all();
  cycle_after(minutes(1));
  cycle_after(minutes(1));
  EXPECT_EQ(cluster_->revoke_calls(), 0) << "no request in monitor mode, approved or not";
}

TEST_F(EnforcerTest, ApprovedRestrictDoesNotRegrantPermissionsRemovedMeanwhile) {
  populate(*cluster_, 5,
           {make_token("wide", {{"read", "x"}, {"write", "logs"}, {"write", "metrics_a"}})});
  auto p = metrics_write_policy();
  p.require_approval = true;
  start({p});
  const Timestamp t0 = clock_.now();
  cycle();
  cycle_at(t0 + kGrace);
  ASSERT_EQ(action_state("wide"), "awaiting_approval");
  // While it waits, an admin takes `write logs` away by hand; the token still violates.
  cluster_->put(make_token("wide", {{"read", "x"}, {"write", "metrics_a"}}));
  cycle_after(minutes(1));
  ASSERT_EQ(events("token_updated"), 1);
  ASSERT_EQ(violation_state("wide"), "awaiting_approval");

  approve_all();
  cycle_after(minutes(1));
  ASSERT_EQ(cluster_->restricts["wide"], 1);
  std::vector<Permission> want{{"read", "x"}};
  EXPECT_EQ(permissions_json(cluster_->restrict_targets["wide"]), permissions_json(want))
      << "the PATCH must leave the token's current compliant grants, not re-grant `write logs`";
}

TEST_F(EnforcerTest, RetriedRestrictDoesNotRegrantPermissionsRemovedMeanwhile) {
  populate(*cluster_, 5,
           {make_token("wide", {{"read", "x"}, {"write", "logs"}, {"write", "metrics_a"}})});
  start({metrics_write_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  cluster_->fail_next = 1;
  cycle_at(t0 + kGrace);
  ASSERT_EQ(cluster_->restricts["wide"], 1);
  cluster_->put(make_token("wide", {{"read", "x"}, {"write", "metrics_a"}}));
  cycle_at(t0 + kGrace + seconds(30));
  ASSERT_EQ(cluster_->restricts["wide"], 2);
  std::vector<Permission> want{{"read", "x"}};
  EXPECT_EQ(permissions_json(cluster_->restrict_targets["wide"]), permissions_json(want))
      << "the retry must not re-grant `write logs`, removed since the first attempt";
}

// ---- reloads that change a policy's handling ---------------------------------------------------

TEST_F(EnforcerTest, LongerGraceAfterAReloadStillActsWhenItElapses) {
  populate(*cluster_, 5, {bad("bad-1")});
  start({write_all_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  auto p = write_all_policy();
  p.grace_period = hours(2);
  reconfigure({p}, settings());
  cycle_at(t0 + minutes(30));
  cycle_at(t0 + hours(1));
  cycle_at(t0 + hours(2) - kMs);
  EXPECT_EQ(cluster_->revoke_calls(), 0) << "the new grace period applies";
  cycle_at(t0 + hours(2));
  cycle_at(t0 + hours(2) + minutes(1));
  EXPECT_EQ(cluster_->revokes_of("bad-1"), 1) << "planned once the new grace period elapsed";
}

TEST_F(EnforcerTest, ShorterGraceAfterAReloadActsWhenItElapses) {
  populate(*cluster_, 5, {bad("bad-1")});
  auto slow = write_all_policy();
  slow.grace_period = hours(72);
  start({slow});
  const Timestamp t0 = clock_.now();
  cycle();
  reconfigure({write_all_policy()}, settings());  // grace 1 h
  cycle_at(t0 + minutes(10));
  EXPECT_EQ(cluster_->revoke_calls(), 0);
  cycle_at(t0 + kGrace);
  cycle_at(t0 + kGrace + minutes(1));
  EXPECT_EQ(cluster_->revokes_of("bad-1"), 1) << "not 72 h after detection";
}

TEST_F(EnforcerTest, AlertPolicyTurnedIntoRevokeActsAfterTheGrace) {
  populate(*cluster_, 5, {bad("bad-1")});
  start({write_all_policy(policy::Action::kAlert)});
  const Timestamp t0 = clock_.now();
  cycle();
  ASSERT_EQ(events("violation_opened"), 1);
  reconfigure({write_all_policy(policy::Action::kRevoke)}, settings());
  cycle_at(t0 + minutes(10));
  EXPECT_EQ(cluster_->revoke_calls(), 0);
  cycle_at(t0 + kGrace);
  cycle_at(t0 + kGrace + minutes(1));
  cycle_at(t0 + kGrace + minutes(10));
  EXPECT_EQ(cluster_->revokes_of("bad-1"), 1);
}

TEST_F(EnforcerTest, ViolationReopensAfterItWasResolved) {
  populate(*cluster_, 5, {bad("bad-1")});
  start({write_all_policy()});
  cycle();
  cluster_->put(good("bad-1"));
  cycle_after(minutes(10));
  ASSERT_EQ(resolution("bad-1"), "compliant");
  cluster_->put(bad("bad-1"));  // and back
  cycle_after(minutes(10));
  EXPECT_EQ(events("violation_opened"), 2);
  EXPECT_EQ(count("SELECT COUNT(*) FROM violations WHERE token_id = 'bad-1'"), 2);
  EXPECT_EQ(violation_state("bad-1"), "open");
  const Timestamp reopened = clock_.now();
  EXPECT_EQ(details("violation_opened").at(1).value("action_due_at", ""),
            format_timestamp(reopened + kGrace));
  cycle_at(reopened + kGrace - kMs);
  EXPECT_EQ(cluster_->revoke_calls(), 0) << "the grace period starts again";
  cycle_at(reopened + kGrace);
  EXPECT_EQ(cluster_->revokes_of("bad-1"), 1);
}

TEST_F(EnforcerTest, MinTokenAgeDelaysJudgement) {
  Token young = bad("young");
  young.created_at = clock_.now() - minutes(10);
  populate(*cluster_, 5, {young});
  auto p = write_all_policy();
  p.min_token_age = hours(1);
  start({p});
  const Timestamp t0 = clock_.now();
  cycle();
  EXPECT_EQ(events("violation_opened"), 0);
  cycle_at(t0 + minutes(50) - kMs);
  EXPECT_EQ(events("violation_opened"), 0);
  cycle_at(t0 + minutes(50));
  EXPECT_EQ(events("violation_opened"), 1) << "judged once it is min_token_age old";
}

// ---- restarts, dry runs, several clusters, scopes
// -------------------------------------------------

TEST_F(EnforcerTest, RestartDoesNotRepeatEvents) {
  const Timestamp t0 = clock_.now();
  populate(
      *cluster_, 20,
      {bad("bad-1"), bad("bad-2"), bad("vendor-1"), make_token("oddly", {{"read", "db1"}}, "bob"),
       make_token("s-1", {{"read", "secret_a"}})});
  auto watched = secret_read_policy();
  watched.mode = policy::Mode::kMonitor;
  start({write_all_policy(), naming_policy(), watched},
        settings(policy::Mode::kEnforce, /*per_cycle=*/1),
        {exempt_token("vendor-1", t0 + days(30))});
  cycle();
  cycle_at(t0 + kGrace);
  cycle_after(minutes(1));
  ASSERT_EQ(events("enforcement_halted"), 1);
  ASSERT_EQ(events("action_skipped"), 1);
  ASSERT_EQ(events("exemption_applied"), 1);
  ASSERT_EQ(events("violation_opened"), 4);
  const auto rows = audit_rows();

  restart();
  cycle_after(minutes(1));
  cycle_after(minutes(1));
  reload_same();
  cycle_after(minutes(1));
  EXPECT_EQ(audit_rows(), rows) << "a restart re-reads the state; it records nothing twice";
  EXPECT_EQ(cluster_->revoke_calls(), 0);
  EXPECT_EQ(alerts_.active_named("TokenEnforcementHalted", kCluster), 1)
      << "the halt alert is restored";
  EXPECT_EQ(alerts_.active_named("TokenPolicyViolation", kCluster), 4);
}

TEST_F(EnforcerTest, DryRunChangesNothing) {
  populate(*cluster_, 5, {bad("bad-1")});
  start({write_all_policy()});
  const Timestamp t0 = clock_.now();
  RunOptions dry;
  dry.dry_run = true;
  poller_->run_once(dry);
  EXPECT_EQ(audit_rows(), 0);
  EXPECT_TRUE(alerts_.changes.empty()) << "nothing was committed, nothing is announced";

  cycle();
  ASSERT_EQ(events("violation_opened"), 1);
  clock_.set(t0 + kGrace);
  const auto rows = audit_rows();
  const auto changes = alerts_.changes.size();
  auto r = poller_->run_once(dry);
  EXPECT_EQ(r.enforcement.planned, 1) << "a dry run reports what it would do";
  EXPECT_EQ(audit_rows(), rows);
  EXPECT_EQ(action_rows(), 0);
  EXPECT_EQ(cluster_->revoke_calls(), 0);
  EXPECT_EQ(alerts_.changes.size(), changes);

  cycle_after(minutes(1));
  EXPECT_EQ(events("violation_opened"), 1);
  EXPECT_EQ(events("action_planned"), 1);
  EXPECT_EQ(cluster_->revokes_of("bad-1"), 1);
}

TEST_F(EnforcerTest, ClustersAreEnforcedIndependently) {
  const Timestamp t0 = clock_.now();
  populate(*cluster_, 5, {bad("shared")});
  policy::ExemptionSpec only_us = exempt_token("shared", t0 + days(30));
  only_us.cluster = "prod-us";
  start({write_all_policy()}, settings(), {only_us});

  auto us_state = std::make_shared<FakeClusterState>();
  populate(*us_state, 5, {bad("shared")});
  ClusterConfig us = cluster_config();
  us.name = "prod-us";
  us.source.cluster = "prod-us";
  auto us_enforcer = std::make_unique<Enforcer>(us, clock_, Logger("enforcer", logs_), &alerts_);
  us_enforcer->configure(compile(policies_, exemptions_), settings_);
  ClusterPoller us_poller(us, std::make_unique<FakeCluster>(us_state, clock_), *recorder_, clock_,
                          Logger("poller", logs_), std::move(us_enforcer));
  RunOptions options;

  cycle();
  us_poller.run_once(options);
  clock_.set(t0 + kGrace);
  cycle();
  us_poller.run_once(options);
  clock_.advance(minutes(1));
  cycle();
  us_poller.run_once(options);

  EXPECT_EQ(cluster_->revokes_of("shared"), 1);
  EXPECT_EQ(us_state->revoke_calls(), 0) << "exempt on prod-us only";
  EXPECT_EQ(count("SELECT COUNT(*) FROM violations WHERE cluster = 'prod-eu'"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM violations WHERE cluster = 'prod-us'"), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log WHERE event = 'exemption_applied' AND cluster = "
                  "'prod-us'"),
            1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log WHERE event = 'exemption_applied' AND cluster = "
                  "'prod-eu'"),
            0);
  EXPECT_EQ(alerts_.active_named("TokenPolicyViolation", "prod-us"), 0);
}

TEST_F(EnforcerTest, PolicyScopeUsesTheClusterNameAndLabels) {
  populate(*cluster_, 5, {bad("bad-1")});
  auto elsewhere = write_all_policy(policy::Action::kRevoke, "staging-only");
  elsewhere.scope.labels = {{"env", "staging"}};
  auto other_clusters = write_all_policy(policy::Action::kRevoke, "us-only");
  other_clusters.scope.clusters = {"prod-us*"};
  auto here = write_all_policy(policy::Action::kAlert, "prod-alert");
  here.scope.clusters = {"prod-*"};
  here.scope.labels = {{"env", "prod"}};
  start({elsewhere, other_clusters, here});
  const Timestamp t0 = clock_.now();
  cycle();
  EXPECT_EQ(column("SELECT policy FROM violations"), (std::vector<std::string>{"prod-alert"}));
  cycle_at(t0 + kGrace);
  EXPECT_EQ(cluster_->revoke_calls(), 0);
}

TEST_F(EnforcerTest, WorksWithoutAnAlertSink) {
  populate(*cluster_, 5, {bad("bad-1")});
  recorder_ = std::make_unique<storage::InventoryRecorder>(*store_);
  auto enforcer =
      std::make_unique<Enforcer>(cluster_config(), clock_, Logger("enforcer", logs_), nullptr);
  enforcer->configure(compile({write_all_policy()}, {}), settings());
  poller_ = std::make_unique<ClusterPoller>(
      cluster_config(), std::make_unique<FakeCluster>(cluster_, clock_), *recorder_, clock_,
      Logger("poller", logs_), std::move(enforcer));
  const Timestamp t0 = clock_.now();
  cycle();
  cycle_at(t0 + kGrace);
  cycle_after(minutes(1));
  EXPECT_EQ(cluster_->revokes_of("bad-1"), 1);
  EXPECT_EQ(resolution("bad-1"), "revoked");
}

// ---- safety limits -------------------------------------------------------------------------

TEST_F(EnforcerTest, MoreActionsThanPerCycleLimitHaltsAllOfThem) {
  populate(*cluster_, 30, {bad("bad-1"), bad("bad-2"), bad("bad-3")});
  start({write_all_policy()}, settings(policy::Mode::kEnforce, /*per_cycle=*/2, /*percent=*/100));
  const Timestamp t0 = clock_.now();
  cycle();
  ASSERT_EQ(events("violation_opened"), 3);

  auto r = cycle_at(t0 + kGrace);
  EXPECT_EQ(r.enforcement.halted, 3);
  EXPECT_EQ(cluster_->revoke_calls(), 0) << "none of them runs";
  EXPECT_EQ(events("action_planned"), 0);
  EXPECT_EQ(action_rows(), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM violations WHERE state = 'halted'"), 3);
  EXPECT_EQ(events("enforcement_halted"), 1);
  json d = details("enforcement_halted").at(0);
  EXPECT_EQ(d.value("planned", 0), 3);
  EXPECT_EQ(d.value("max_actions_per_cycle", 0), 2);
  EXPECT_TRUE(halted());
  EXPECT_EQ(alerts_.active_named("TokenEnforcementHalted", kCluster), 1);

  // One halt event, not one per cycle.
  cycle_after(minutes(1));
  reload_same();
  cycle_after(minutes(1));
  reload_same();
  cycle_after(hours(1));
  EXPECT_EQ(events("enforcement_halted"), 1);
  EXPECT_EQ(cluster_->revoke_calls(), 0);
  EXPECT_EQ(alerts_.active_named("TokenEnforcementHalted", kCluster), 1);

  // `approve --cluster prod-eu --all` releases them: they run at the next cycle.
  approve_all();
  EXPECT_EQ(events("action_approved"), 3);
  auto released = cycle_after(minutes(1));
  EXPECT_EQ(cluster_->revoke_calls(), 3);
  EXPECT_EQ(
      cluster_->revokes_of("bad-1") + cluster_->revokes_of("bad-2") + cluster_->revokes_of("bad-3"),
      3);
  EXPECT_EQ(events("action_planned"), 3);
  for (const auto& p : details("action_planned")) EXPECT_TRUE(p.value("released", false));
  EXPECT_EQ(released.enforcement.succeeded, 3);

  cycle_after(minutes(1));
  EXPECT_EQ(count("SELECT COUNT(*) FROM violations WHERE resolution = 'revoked'"), 3);
  EXPECT_FALSE(halted());
  EXPECT_EQ(alerts_.active_named("TokenEnforcementHalted", kCluster), 0);
  EXPECT_EQ(events("enforcement_halted"), 1);
}

TEST_F(EnforcerTest, PercentLimitCountsActiveTokens) {
  // 3 of 20 active tokens is 15% > 10%: halted. (A revoked token does not count as active.)
  populate(*cluster_, 17, {bad("bad-1"), bad("bad-2"), bad("bad-3")});
  Token revoked = good("old");
  revoked.revoked_at = ts("2026-01-01T00:00:00Z");
  cluster_->put(revoked);
  start({write_all_policy()}, settings(policy::Mode::kEnforce, /*per_cycle=*/10, /*percent=*/10));
  const Timestamp t0 = clock_.now();
  cycle();
  cycle_at(t0 + kGrace);
  EXPECT_EQ(cluster_->revoke_calls(), 0);
  EXPECT_EQ(events("enforcement_halted"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM violations WHERE state = 'halted'"), 3);
  json d = details("enforcement_halted").at(0);
  EXPECT_EQ(d.value("active_tokens", 0), 20);
  EXPECT_EQ(d.value("max_actions_percent", 0), 10);
  EXPECT_EQ(alerts_.active_named("TokenEnforcementHalted", kCluster), 1);
}

TEST_F(EnforcerTest, PlansExactlyAtTheLimitsRun) {
  // 2 due actions, per-cycle limit 2, and 2 of 20 active tokens = exactly 10%.
  populate(*cluster_, 18, {bad("bad-1"), bad("bad-2")});
  start({write_all_policy()}, settings(policy::Mode::kEnforce, /*per_cycle=*/2, /*percent=*/10));
  const Timestamp t0 = clock_.now();
  cycle();
  cycle_at(t0 + kGrace);
  EXPECT_EQ(cluster_->revoke_calls(), 2);
  EXPECT_EQ(events("enforcement_halted"), 0);
  EXPECT_FALSE(halted());
}

TEST_F(EnforcerTest, HaltClearsWhenThePlanShrinksWithinLimits) {
  populate(*cluster_, 30, {bad("bad-1"), bad("bad-2"), bad("bad-3")});
  start({write_all_policy()}, settings(policy::Mode::kEnforce, /*per_cycle=*/2, /*percent=*/100));
  const Timestamp t0 = clock_.now();
  cycle();
  cycle_at(t0 + kGrace);
  ASSERT_TRUE(halted());
  ASSERT_EQ(cluster_->revoke_calls(), 0);

  cluster_->put(good("bad-3"));  // its owner fixed it: two remain, within the limit
  auto r = cycle_after(minutes(1));
  EXPECT_EQ(resolution("bad-3"), "compliant");
  EXPECT_EQ(cluster_->revokes_of("bad-1"), 1);
  EXPECT_EQ(cluster_->revokes_of("bad-2"), 1);
  EXPECT_EQ(cluster_->revokes_of("bad-3"), 0);
  EXPECT_EQ(r.enforcement.halted, 0);
  EXPECT_FALSE(halted()) << "the plan runs, so the cluster is not halted";
  EXPECT_EQ(alerts_.active_named("TokenEnforcementHalted", kCluster), 0);
  EXPECT_EQ(events("enforcement_halted"), 1);
}

TEST_F(EnforcerTest, HaltClearsWhenTheLimitsAreRaised) {
  populate(*cluster_, 30, {bad("bad-1"), bad("bad-2"), bad("bad-3")});
  start({write_all_policy()}, settings(policy::Mode::kEnforce, /*per_cycle=*/2, /*percent=*/100));
  const Timestamp t0 = clock_.now();
  cycle();
  cycle_at(t0 + kGrace);
  ASSERT_TRUE(halted());

  reconfigure(policies_, settings(policy::Mode::kEnforce, /*per_cycle=*/5, /*percent=*/100));
  cycle_after(minutes(1));
  EXPECT_EQ(cluster_->revoke_calls(), 3);
  EXPECT_FALSE(halted()) << "the plan is within the new limits and ran";
  EXPECT_EQ(alerts_.active_named("TokenEnforcementHalted", kCluster), 0);
  cycle_after(minutes(1));
  EXPECT_FALSE(halted());
  EXPECT_EQ(events("enforcement_halted"), 1);
}

TEST_F(EnforcerTest, MonitorAndApprovalActionsDoNotCountTowardTheLimits) {
  populate(*cluster_, 30,
           {bad("bad-1"), bad("bad-2"), make_token("s-1", {{"read", "secret_a"}}),
            make_token("s-2", {{"read", "secret_b"}})});
  auto gated = secret_read_policy();
  gated.require_approval = true;
  start({write_all_policy(), gated},
        settings(policy::Mode::kEnforce, /*per_cycle=*/2, /*percent=*/100));
  const Timestamp t0 = clock_.now();
  cycle();
  cycle_at(t0 + kGrace);
  EXPECT_EQ(cluster_->revoke_calls(), 2);
  EXPECT_EQ(events("enforcement_halted"), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM enforcement_actions WHERE state = 'awaiting_approval'"), 2);
}

// ---- resolutions ---------------------------------------------------------------------------

struct ResolutionCase {
  std::string name;
  std::function<void(EnforcerTest&, FakeClusterState&)> change;
  std::string resolution;
};

class ResolutionTest : public EnforcerTest, public ::testing::WithParamInterface<ResolutionCase> {
 public:
  // For the cases (the fixture's helpers are protected).
  void do_reconfigure(std::vector<policy::PolicySpec> p, std::vector<policy::ExemptionSpec> e) {
    reconfigure(std::move(p), settings(), std::move(e));
  }
};

TEST_P(ResolutionTest, ResolvedOnceWithTheReason) {
  populate(*cluster_, 9, {bad("bad-1")});
  start({write_all_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  ASSERT_EQ(events("violation_opened"), 1);
  const auto alerts_before = alerts_.changes.size();

  GetParam().change(*this, *cluster_);
  auto r = cycle_after(minutes(1));
  EXPECT_EQ(events("violation_resolved"), 1);
  EXPECT_EQ(resolution("bad-1"), GetParam().resolution);
  EXPECT_EQ(violation_state("bad-1"), "resolved");
  EXPECT_NE(text("SELECT resolved_at FROM violations WHERE token_id = 'bad-1'"), "<null>");
  ASSERT_FALSE(details("violation_resolved").empty());
  EXPECT_EQ(details("violation_resolved").at(0).value("resolution", ""), GetParam().resolution);
  EXPECT_EQ(r.enforcement.resolved, 1);
  EXPECT_EQ(alerts_.active_named("TokenPolicyViolation", kCluster), 0);
  ASSERT_GT(alerts_.changes.size(), alerts_before);
  EXPECT_EQ(alerts_.changes.back().event, "violation_resolved");

  // Past the grace period nothing is planned and nothing resolves twice.
  cycle_at(t0 + kGrace);
  cycle_after(hours(1));
  EXPECT_EQ(events("violation_resolved"), 1);
  EXPECT_EQ(events("action_planned"), 0);
  EXPECT_EQ(cluster_->revoke_calls() + cluster_->restrict_calls(), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Resolutions, ResolutionTest,
    ::testing::Values(
        ResolutionCase{"compliant: fixed by someone else",
                       [](EnforcerTest&, FakeClusterState& c) { c.put(good("bad-1")); },
                       "compliant"},
        ResolutionCase{"compliant: it expired",
                       [](EnforcerTest&, FakeClusterState& c) {
                         c.tokens["bad-1"].expires_at = ts("2026-03-01T00:00:30Z");
                       },
                       "compliant"},
        ResolutionCase{"revoked by someone else",
                       [](EnforcerTest&, FakeClusterState& c) {
                         c.tokens["bad-1"].revoked_at = ts("2026-03-01T00:00:30Z");
                       },
                       "revoked"},
        ResolutionCase{"removed: no longer listed",
                       [](EnforcerTest&, FakeClusterState& c) { c.tokens.erase("bad-1"); },
                       "removed"},
        ResolutionCase{"exempted by a reload",
                       [](EnforcerTest& self, FakeClusterState&) {
                         static_cast<ResolutionTest&>(self).do_reconfigure(
                             {write_all_policy()},
                             {exempt_token("bad-1", ts("2026-06-01T00:00:00Z"))});
                       },
                       "exempted"},
        ResolutionCase{"policy removed by a reload",
                       [](EnforcerTest& self, FakeClusterState&) {
                         static_cast<ResolutionTest&>(self).do_reconfigure({naming_policy()}, {});
                       },
                       "policy_removed"},
        ResolutionCase{"every policy removed by a reload",
                       [](EnforcerTest& self, FakeClusterState&) {
                         static_cast<ResolutionTest&>(self).do_reconfigure({}, {});
                       },
                       "policy_removed"}),
    tw::testing::CaseName());

// ---- exemptions ----------------------------------------------------------------------------

TEST_F(EnforcerTest, ExemptionAppliedOncePerExemptionAndTokenThenLapses) {
  const Timestamp t0 = clock_.now();
  populate(*cluster_, 5,
           {bad("vendor-1"), make_token("legacy-1", {{"write", "*"}}, "legacy exporter")});
  start({write_all_policy()}, settings(),
        {exempt_token("vendor-1", t0 + hours(3)),
         exempt_description("^legacy ", t0 + days(30), "no-write-all")});
  cycle();
  EXPECT_EQ(events("violation_opened"), 0);
  ASSERT_EQ(events("exemption_applied"), 2);
  auto applied = details("exemption_applied");
  EXPECT_EQ(applied[0].value("policy", ""), "no-write-all");
  EXPECT_FALSE(applied[0].value("exemption", "").empty());
  EXPECT_NE(applied[0].value("exemption", ""), applied[1].value("exemption", ""));
  EXPECT_EQ(
      column("SELECT token_id FROM audit_log WHERE event = 'exemption_applied' ORDER BY token_id"),
      (std::vector<std::string>{"legacy-1", "vendor-1"}));

  // Not every cycle, not after a reload (the exemption keeps its identity).
  cycle_after(minutes(1));
  reload_same();
  cycle_after(minutes(1));
  reload_same();
  cycle_after(minutes(1));
  EXPECT_EQ(events("exemption_applied"), 2);
  EXPECT_EQ(events("violation_opened"), 0);
  EXPECT_EQ(alerts_.active_named("TokenPolicyViolation", kCluster), 0);

  // vendor-1's exemption lapses: its violation opens normally, grace from then.
  cycle_at(t0 + hours(3) - kMs);
  EXPECT_EQ(events("violation_opened"), 0);
  cycle_at(t0 + hours(3));
  ASSERT_EQ(events("violation_opened"), 1);
  EXPECT_EQ(text("SELECT token_id FROM violations"), "vendor-1");
  EXPECT_EQ(details("violation_opened").at(0).value("action_due_at", ""),
            format_timestamp(t0 + hours(3) + kGrace));
  cycle_at(t0 + hours(3) + kGrace);
  EXPECT_EQ(cluster_->revokes_of("vendor-1"), 1);
  EXPECT_EQ(cluster_->revokes_of("legacy-1"), 0);
  EXPECT_EQ(events("exemption_applied"), 2);
}

// ---- failed and suspect polls --------------------------------------------------------------

TEST_F(EnforcerTest, NoEnforcementOnFailedOrSuspectPolls) {
  populate(*cluster_, 3, {bad("bad-1")});
  start({write_all_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  ASSERT_EQ(events("violation_opened"), 1);
  const auto enforcement_before = enforcement_events();
  const auto changes_before = alerts_.changes.size();

  // Due, but the poll fails.
  cluster_->script.emplace_back(make_error(ErrorCode::kNetwork, "connection refused"));
  auto failed = cycle_at(t0 + kGrace);
  EXPECT_EQ(failed.summary.outcome, storage::PollOutcome::kFailed);
  EXPECT_FALSE(failed.enforcement.evaluated);
  EXPECT_TRUE(failed.enforcement.to_run.empty());
  // Then a poll lists nothing at all: suspect (every known token vanished).
  cluster_->script.emplace_back(influx::TokenList{});
  auto suspect = cycle_after(minutes(1));
  EXPECT_EQ(suspect.summary.outcome, storage::PollOutcome::kSuspect);
  EXPECT_FALSE(suspect.enforcement.evaluated);

  EXPECT_EQ(events("poll_failed"), 1);
  EXPECT_EQ(events("poll_suspect"), 1);
  EXPECT_EQ(enforcement_events(), enforcement_before) << "no violation or action event";
  EXPECT_EQ(action_rows(), 0);
  EXPECT_EQ(cluster_->revoke_calls() + cluster_->restrict_calls(), 0);
  EXPECT_EQ(alerts_.changes.size(), changes_before);
  EXPECT_EQ(violation_state("bad-1"), "open");

  // The next good poll acts.
  cycle_after(minutes(1));
  EXPECT_EQ(cluster_->revokes_of("bad-1"), 1);
}

// ---- crash safety --------------------------------------------------------------------------

TEST_F(EnforcerTest, ClaimedActionWhoseOutcomeWasLostIsReconciled) {
  populate(*cluster_, 5, {bad("bad-1")});
  start({write_all_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  clock_.set(t0 + kGrace);
  auto due = poll_then_crash();
  ASSERT_EQ(due.size(), 1u);
  ASSERT_EQ(action_state("bad-1"), "planned");
  claim(due[0], static_cast<std::int64_t>(::getpid()));
  EXPECT_NE(text("SELECT attempts FROM enforcement_actions"), "0");
  // The request reached the cluster, then the daemon died before recording the outcome.
  cluster_->tokens["bad-1"].revoked_at = clock_.now();

  restart();
  auto r = cycle_after(minutes(1));
  EXPECT_EQ(cluster_->revoke_calls(), 0) << "nothing is sent again";
  EXPECT_EQ(r.enforcement.reconciled, 1);
  ASSERT_EQ(events("action_succeeded"), 1);
  EXPECT_EQ(details("action_succeeded").at(0).value("outcome", ""), "reconciled");
  EXPECT_EQ(action_state("bad-1"), "succeeded");
  EXPECT_EQ(resolution("bad-1"), "revoked");
  cycle_after(hours(1));
  EXPECT_EQ(cluster_->revoke_calls(), 0);
  EXPECT_EQ(events("action_succeeded"), 1);
}

TEST_F(EnforcerTest, RestrictWhoseOutcomeWasLostIsReconciled) {
  populate(*cluster_, 5, {make_token("wide", {{"read", "metrics_a"}, {"write", "metrics_a"}})});
  start({metrics_write_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  clock_.set(t0 + kGrace);
  auto due = poll_then_crash();
  ASSERT_EQ(due.size(), 1u);
  claim(due[0], static_cast<std::int64_t>(::getpid()));
  cluster_->put(make_token("wide", {{"read", "metrics_a"}}));  // the PATCH took effect

  restart();
  cycle_after(minutes(1));
  EXPECT_EQ(cluster_->restrict_calls(), 0);
  EXPECT_EQ(action_state("wide"), "succeeded");
  EXPECT_EQ(resolution("wide"), "restricted");
  ASSERT_EQ(events("action_succeeded"), 1);
  EXPECT_EQ(details("action_succeeded").at(0).value("outcome", ""), "reconciled");
}

TEST_F(EnforcerTest, PlannedActionNeverRunBeforeACrashRunsAfterTheRestart) {
  populate(*cluster_, 5, {bad("bad-1")});
  start({write_all_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  clock_.set(t0 + kGrace);
  auto due = poll_then_crash();
  ASSERT_EQ(due.size(), 1u);
  restart();
  cycle_after(minutes(1));
  EXPECT_EQ(cluster_->revokes_of("bad-1"), 1);
  EXPECT_EQ(action_rows(), 1) << "the planned action runs; it is not planned twice";
  EXPECT_EQ(action_state("bad-1"), "succeeded");
}

TEST_F(EnforcerTest, ClaimWithoutOutcomeFromThisProcessIsRetriedAfterARestart) {
  populate(*cluster_, 5, {bad("bad-1")});
  start({write_all_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  clock_.set(t0 + kGrace);
  auto due = poll_then_crash();
  ASSERT_EQ(due.size(), 1u);
  claim(due[0], static_cast<std::int64_t>(::getpid()));  // the request never left

  restart();
  cycle_after(minutes(1));
  EXPECT_EQ(cluster_->revokes_of("bad-1"), 1);
  EXPECT_EQ(action_state("bad-1"), "succeeded");
  EXPECT_EQ(text("SELECT attempts FROM enforcement_actions"), "2");
  cycle_after(minutes(1));
  EXPECT_EQ(resolution("bad-1"), "revoked");
  EXPECT_EQ(cluster_->revoke_calls(), 1);
}

TEST_F(EnforcerTest, ClaimHeldByAnotherLiveProcessIsRetriedOnceStale) {
  // Another live process (a manual `tokenwarden poll`) claimed the action and never recorded an
  // outcome. It is left alone while it could still be running (2 × timeout + 1 min = 80 s), then
  // retried at the next poll.
  populate(*cluster_, 5, {bad("bad-1")});
  start({write_all_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  clock_.set(t0 + kGrace);
  auto due = poll_then_crash();
  ASSERT_EQ(due.size(), 1u);
  const Timestamp claimed_at = clock_.now();
  as_other_process([&](storage::WriteTxn& txn) {
    auto claimed =
        storage::claim_action(txn, due[0].id, claimed_at, static_cast<std::int64_t>(::getppid()),
                              due[0].attempt_started_at);
    ASSERT_TRUE(claimed.ok() && *claimed);
  });

  cycle_at(claimed_at + seconds(30));
  cycle_at(claimed_at + seconds(60));
  EXPECT_EQ(cluster_->revoke_calls(), 0) << "the other process may still be sending it";
  cycle_at(claimed_at + seconds(120));
  EXPECT_EQ(cluster_->revokes_of("bad-1"), 1) << "an abandoned claim is retried";
  cycle_at(claimed_at + seconds(180));
  EXPECT_EQ(cluster_->revoke_calls(), 1);
}

// ---- steady state --------------------------------------------------------------------------

class SteadyStateTest : public EnforcerTest, public ::testing::WithParamInterface<bool> {};

TEST_P(SteadyStateTest, CycleWithNothingChangedWritesOnlyThePollRow) {
  cluster_->use_digest = GetParam();
  const Timestamp t0 = clock_.now();
  auto slow = write_all_policy();
  slow.grace_period = hours(72);
  populate(*cluster_, 20,
           {bad("bad-1"), bad("vendor-1"), make_token("oddly-named", {{"read", "db1"}}, "bob")});
  start({slow, naming_policy()}, settings(), {exempt_token("vendor-1", t0 + days(30))});
  cycle();
  ASSERT_EQ(events("violation_opened"), 2);
  ASSERT_EQ(events("exemption_applied"), 1);
  cycle_after(minutes(1));  // settles (the first unchanged list, the first "unchanged" answer)

  const auto rows = audit_rows();
  const auto polls = poll_rows();
  const auto sink_calls = alerts_.set_active_calls;
  const auto sink_changes = alerts_.changes.size();
  for (int i = 0; i < 10; ++i) {
    auto r = cycle_after(minutes(1));
    EXPECT_TRUE(r.recorded);
    EXPECT_EQ(r.summary.outcome, storage::PollOutcome::kOk);
    EXPECT_FALSE(r.enforcement.evaluated) << "cycle " << i << ": nothing changed, nothing due";
  }
  EXPECT_EQ(audit_rows(), rows) << "no audit event in the steady state";
  EXPECT_EQ(poll_rows(), polls + 10);
  EXPECT_EQ(action_rows(), 0);
  EXPECT_EQ(alerts_.set_active_calls, sink_calls);
  EXPECT_EQ(alerts_.changes.size(), sink_changes);
  EXPECT_EQ(cluster_->revoke_calls(), 0);
}

INSTANTIATE_TEST_SUITE_P(ListModes, SteadyStateTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? std::string("UnchangedDigest")
                                          : std::string("FullList");
                         });

// ---- configuration glue --------------------------------------------------------------------

TEST(EnforcementConfigTest, SettingsAndPoliciesFromTheConfiguration) {
  Config c;
  c.daemon.mode = policy::Mode::kMonitor;
  c.safety.max_actions_per_cycle = 7;
  c.safety.max_actions_percent = 3;
  c.policies = {write_all_policy(), naming_policy()};
  c.exemptions = {exempt_token("t", ts("2026-06-01T00:00:00Z"))};
  EnforcementSettings s = enforcement_settings(c);
  EXPECT_EQ(s.mode, policy::Mode::kMonitor);
  EXPECT_EQ(s.max_actions_per_cycle, 7);
  EXPECT_EQ(s.max_actions_percent, 3);
  auto set = compile_policies(c);
  ASSERT_TRUE(set.ok());
  EXPECT_EQ((*set)->specs().size(), 2u);
  EXPECT_EQ((*set)->exemptions().size(), 1u);
  c.policies[1].pattern = "(a)\\1";
  auto bad_set = compile_policies(c);
  ASSERT_FALSE(bad_set.ok());
  EXPECT_EQ(bad_set.error().code, ErrorCode::kInvalidArgument);
}

// ---- what the alerts say (daemon/alert_sink.h: labels, annotations, start) ----------------------

// The active alerts of kCluster, one block each (labels, start, then annotations), sorted.
std::string alert_text(const FakeAlertSink& sink) {
  std::vector<std::string> blocks;
  auto it = sink.active.find(kCluster);
  if (it == sink.active.end()) return "";
  for (const auto& a : it->second) {
    std::string b;
    for (const auto& [k, v] : a.labels) b += k + "=" + v + " ";
    b += "@" + format_timestamp(a.starts_at) + "\n";
    for (const auto& [k, v] : a.annotations) b += "  " + k + ": " + v + "\n";
    blocks.push_back(std::move(b));
  }
  std::sort(blocks.begin(), blocks.end());
  std::string out;
  for (const auto& b : blocks) out += b;
  return out;
}

TEST_F(EnforcerTest, AlertsOfAViolationWhoseActionDidNotHoldThenFailed) {
  populate(*cluster_, 5, {bad("bad-1")});
  start({write_all_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  cycle_at(t0 + kGrace);
  cluster_->tokens["bad-1"].revoked_at.reset();  // the cluster forgets the revocation
  cluster_->fail_next = 1000;                    // and every revoke from now on fails
  cycle_at(t0 + kGrace + minutes(1));
  EXPECT_EQ(
      alert_text(alerts_),
      R"txt(alertname=TokenActionDidNotHold cluster=prod-eu policy=no-write-all severity=warning token_id=bad-1 @2026-03-01T01:01:00.000Z
  description: See `tokenwarden history --token bad-1`.
  summary: The revoke of token bad-1 on prod-eu succeeded but the cluster still lists the token active; it is planned again
alertname=TokenPolicyViolation cluster=prod-eu policy=no-write-all severity=critical token_id=bad-1 @2026-03-01T00:00:00.000Z
  action: revoke
  description: grants write on * (grants on all databases (*) are forbidden) (token description: "svc-app")
  planned_action_at: 2026-03-01T01:00:00.000Z
  state: enforcing
  summary: Token bad-1 on prod-eu violates policy no-write-all
)txt");
  for (int i = 1; i <= Enforcer::kMaxAttempts; ++i) cycle_at(t0 + kGrace + minutes(1 + 10 * i));
  EXPECT_EQ(
      alert_text(alerts_),
      R"txt(alertname=TokenActionFailed cluster=prod-eu policy=no-write-all severity=critical token_id=bad-1 @2026-03-01T01:41:00.000Z
  description: See `tokenwarden violations --cluster prod-eu` and the audit log.
  summary: The revoke of token bad-1 on prod-eu failed for good (5 failed attempts, or it did not hold 3 times)
alertname=TokenPolicyViolation cluster=prod-eu policy=no-write-all severity=critical token_id=bad-1 @2026-03-01T00:00:00.000Z
  action: revoke
  description: grants write on * (grants on all databases (*) are forbidden) (token description: "svc-app")
  planned_action_at: 2026-03-01T01:00:00.000Z
  state: failed
  summary: Token bad-1 on prod-eu violates policy no-write-all
)txt");
}

TEST_F(EnforcerTest, AlertsOfAHalt) {
  populate(*cluster_, 5, {bad("bad-1"), bad("bad-2"), bad("bad-3")});
  start({write_all_policy()}, settings(policy::Mode::kEnforce, /*per_cycle=*/2, /*percent=*/100));
  const Timestamp t0 = clock_.now();
  cycle();
  cycle_at(t0 + kGrace);
  EXPECT_EQ(
      alert_text(alerts_),
      R"txt(alertname=TokenEnforcementHalted cluster=prod-eu severity=critical @2026-03-01T01:00:00.000Z
  description: More actions were planned than [safety] allows; none runs. Review them with `tokenwarden violations --cluster prod-eu`, then release with `tokenwarden approve --cluster prod-eu --all`.
  summary: Enforcement on prod-eu is halted by the safety limits
alertname=TokenPolicyViolation cluster=prod-eu policy=no-write-all severity=critical token_id=bad-1 @2026-03-01T00:00:00.000Z
  action: revoke
  description: grants write on * (grants on all databases (*) are forbidden) (token description: "svc-app")
  planned_action_at: 2026-03-01T01:00:00.000Z
  state: halted
  summary: Token bad-1 on prod-eu violates policy no-write-all
alertname=TokenPolicyViolation cluster=prod-eu policy=no-write-all severity=critical token_id=bad-2 @2026-03-01T00:00:00.000Z
  action: revoke
  description: grants write on * (grants on all databases (*) are forbidden) (token description: "svc-app")
  planned_action_at: 2026-03-01T01:00:00.000Z
  state: halted
  summary: Token bad-2 on prod-eu violates policy no-write-all
alertname=TokenPolicyViolation cluster=prod-eu policy=no-write-all severity=critical token_id=bad-3 @2026-03-01T00:00:00.000Z
  action: revoke
  description: grants write on * (grants on all databases (*) are forbidden) (token description: "svc-app")
  planned_action_at: 2026-03-01T01:00:00.000Z
  state: halted
  summary: Token bad-3 on prod-eu violates policy no-write-all
)txt");
}

// ---- [ha]: actions through an ActionFence (daemon/action_fence.h) ------------------------------

// A fence whose answers the test sets: leading or not, the term, whether takeover reconciliation
// is done, whether begin() refuses and whether may_send() allows the request. Records each call.
class FakeFence final : public ActionFence {
 public:
  bool lead = true;
  std::int64_t current_term = 5;
  bool reconciled = true;
  bool refuse_begin = false;
  bool allow_send = true;
  bool lost_after_begin = false;  // holds() false once begin() ran: a pause during the attempt

  struct Begun {
    std::string cluster, token_id;
    Duration deadline;
  };
  struct Finished {
    std::string token_id, state, outcome, error;
    std::int64_t term;
  };
  int reconcile_calls = 0;
  std::vector<Begun> begun;
  std::vector<Duration> send_deadlines;
  std::vector<Finished> finished;

  bool leading() const override { return lead; }
  std::int64_t term() const override { return current_term; }
  bool reconcile(const std::string&, influx::ClusterClient&, const influx::CallContext&) override {
    ++reconcile_calls;
    return reconciled;
  }
  Result<ActionTicket> begin(const std::string& cluster, const storage::ActionRow& a,
                             Duration deadline) override {
    begun.push_back({cluster, a.token_id, deadline});
    if (refuse_begin) return make_error(ErrorCode::kUnsupported, "this instance is not the leader");
    return ActionTicket{current_term, "/tw/actions/" + cluster + "/" + a.token_id + "/" + a.policy,
                        "{}"};
  }
  bool may_send(const ActionTicket&, Duration deadline) override {
    send_deadlines.push_back(deadline);
    return allow_send;
  }
  bool holds(const ActionTicket& ticket) const override {
    return !lost_after_begin && lead && ticket.term == current_term;
  }
  void finish(const ActionTicket& ticket, const std::string&, const storage::ActionRow& a,
              std::string_view state, std::string_view outcome, std::string_view error) override {
    finished.push_back(
        {a.token_id, std::string(state), std::string(outcome), std::string(error), ticket.term});
  }
};

class EnforcerFenceTest : public EnforcerTest {
 protected:
  void start_fenced(std::vector<policy::PolicySpec> policies) {
    start(std::move(policies));
    poller_->enforcer()->set_fence(&fence_);
  }
  std::int64_t attempts(const std::string& token_id) {
    return count("SELECT attempts FROM enforcement_actions WHERE token_id = '" + token_id + "'");
  }
  // One violating token ("bad-1") among five, the fence set, the first poll done; returns its
  // time (the action comes due at + kGrace).
  Timestamp one_violation_polled() {
    populate(*cluster_, 5, {bad("bad-1")});
    start_fenced({write_all_policy()});
    const Timestamp t0 = clock_.now();
    cycle();
    return t0;
  }
  // The next poll still lists the tokens as they are now, but `id` is revoked on the cluster at
  // `at` (by another instance) before the action runs: only a read finds it.
  void revoked_behind_the_next_poll(const std::string& id, Timestamp at) {
    influx::TokenList listed;
    listed.tokens = cluster_->list();
    cluster_->script.push_back(listed);
    cluster_->tokens[id].revoked_at = at;
  }
  FakeFence fence_;
};

TEST_F(EnforcerFenceTest, StandbyRunsNoActionAndKeepsItPlanned) {
  populate(*cluster_, 5, {bad("bad-1")});
  fence_.lead = false;
  fence_.current_term = 4;  // the leader's, as a standby sees it
  start_fenced({write_all_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  auto due = cycle_at(t0 + kGrace);
  EXPECT_EQ(due.enforcement.planned, 1);
  EXPECT_EQ(due.enforcement.succeeded, 0);
  EXPECT_EQ(cluster_->revoke_calls(), 0);
  EXPECT_EQ(cluster_->reads["bad-1"], 0);
  EXPECT_EQ(action_state("bad-1"), "planned");
  EXPECT_EQ(attempts("bad-1"), 0);
  EXPECT_TRUE(fence_.begun.empty());
  EXPECT_EQ(fence_.reconcile_calls, 0) << "a standby reconciles nothing";
  cycle_after(minutes(1));
  cycle_after(minutes(1));
  EXPECT_EQ(cluster_->revoke_calls(), 0);
  EXPECT_EQ(action_state("bad-1"), "planned");
  EXPECT_EQ(events("action_succeeded") + events("action_failed"), 0);

  // Leadership acquired: the planned action runs at the next poll, once.
  fence_.lead = true;
  fence_.current_term = 9;
  auto run = cycle_after(minutes(1));
  EXPECT_EQ(run.enforcement.succeeded, 1);
  EXPECT_EQ(cluster_->revokes_of("bad-1"), 1);
  EXPECT_EQ(action_state("bad-1"), "succeeded");
  EXPECT_GE(fence_.reconcile_calls, 1);
  ASSERT_EQ(fence_.begun.size(), 1u);
  EXPECT_EQ(fence_.begun[0].cluster, kCluster);
  EXPECT_EQ(fence_.begun[0].token_id, "bad-1");
  EXPECT_EQ(fence_.begun[0].deadline, seconds(10)) << "the cluster's timeout";
  ASSERT_EQ(fence_.send_deadlines.size(), 1u);
  EXPECT_EQ(fence_.send_deadlines[0], seconds(10));
  ASSERT_EQ(fence_.finished.size(), 1u);
  EXPECT_EQ(fence_.finished[0].state, "succeeded");
  EXPECT_EQ(fence_.finished[0].outcome, "revoked");
  EXPECT_EQ(fence_.finished[0].term, 9);

  // Every action event carries the term it happened in.
  ASSERT_EQ(events("action_planned"), 1);
  EXPECT_EQ(details("action_planned").at(0).value("term", std::int64_t{-1}), 4);
  EXPECT_EQ(details("action_planned").at(0).value("policy", ""), "no-write-all");
  ASSERT_EQ(events("action_succeeded"), 1);
  EXPECT_EQ(details("action_succeeded").at(0).value("term", std::int64_t{-1}), 9);
  EXPECT_EQ(details("action_succeeded").at(0).value("outcome", ""), "revoked");
  // ...and only action events do.
  for (const auto& d : details("violation_opened")) EXPECT_FALSE(d.contains("term")) << d;
}

TEST_F(EnforcerFenceTest, StandbyLogsItsHoldOncePerStandbyPeriod) {
  populate(*cluster_, 5, {bad("bad-1")});
  fence_.lead = false;
  start_fenced({write_all_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  cycle_at(t0 + kGrace);
  cycle_after(minutes(1));
  cycle_after(minutes(1));
  auto held = [&] {
    int n = 0;
    for (const auto& l : logs_->lines()) {
      n += l.find("standby: planned actions are left to the leader") != std::string::npos ? 1 : 0;
    }
    return n;
  };
  EXPECT_EQ(held(), 1);
}

// `tokenwarden poll` with [ha]: a one-shot process never leads, so it never acts.
TEST_F(EnforcerFenceTest, OneShotPollWithHaNeverActs) {
  populate(*cluster_, 5, {bad("bad-1")});
  NoLeadership never;
  start({write_all_policy()});
  poller_->enforcer()->set_fence(&never);
  const Timestamp t0 = clock_.now();
  cycle();
  auto due = cycle_at(t0 + kGrace);
  EXPECT_EQ(due.enforcement.planned, 1);
  cycle_after(minutes(5));
  EXPECT_EQ(cluster_->revoke_calls(), 0);
  EXPECT_EQ(action_state("bad-1"), "planned");
  EXPECT_EQ(details("action_planned").at(0).value("term", std::int64_t{-1}), 0);
}

TEST_F(EnforcerFenceTest, WithoutAFenceActionEventsHaveNoTerm) {
  populate(*cluster_, 5, {bad("bad-1")});
  start({write_all_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  cycle_at(t0 + kGrace);
  ASSERT_EQ(events("action_succeeded"), 1);
  EXPECT_FALSE(details("action_planned").at(0).contains("term"));
  EXPECT_FALSE(details("action_succeeded").at(0).contains("term"));
}

TEST_F(EnforcerFenceTest, EveryAttemptReadsFirstAndARevokedTokenGetsNoDelete) {
  const Timestamp t0 = one_violation_polled();
  // The poll still lists bad-1 active, but another instance revoked it since: the read finds it.
  revoked_behind_the_next_poll("bad-1", t0 + kGrace - minutes(1));
  auto due = cycle_at(t0 + kGrace);
  EXPECT_EQ(due.enforcement.planned, 1);
  EXPECT_EQ(cluster_->revokes_of("bad-1"), 0) << "no DELETE for a token already revoked";
  EXPECT_GE(cluster_->reads["bad-1"], 1);
  EXPECT_TRUE(fence_.send_deadlines.empty()) << "nothing was about to be sent";
  ASSERT_EQ(fence_.finished.size(), 1u);
  EXPECT_EQ(fence_.finished[0].outcome, "already_revoked");
  EXPECT_EQ(fence_.finished[0].state, "succeeded");
  ASSERT_EQ(events("action_succeeded"), 1);
  EXPECT_EQ(details("action_succeeded").at(0).value("outcome", ""), "already_revoked");
  EXPECT_EQ(details("action_succeeded").at(0).value("term", std::int64_t{-1}), 5);
}

// With [ha], a token that cannot be read first is not touched: another instance may have acted.
TEST_F(EnforcerFenceTest, UnreadableTokenGetsNoRequest) {
  const Timestamp t0 = one_violation_polled();
  cluster_->read_error = make_error(ErrorCode::kNetwork, "connection reset while reading");
  cycle_at(t0 + kGrace);
  EXPECT_EQ(cluster_->revokes_of("bad-1"), 0) << "no DELETE without a read first";
  ASSERT_EQ(events("action_failed"), 1);
  const auto error = details("action_failed").at(0).value("error", "");
  EXPECT_NE(error.find("not sent: the token could not be read first"), std::string::npos) << error;
  ASSERT_EQ(fence_.finished.size(), 1u);
  EXPECT_EQ(fence_.finished[0].state, "retry");
  EXPECT_EQ(action_state("bad-1"), "planned");  // retried later
}

// A leader paused during its attempt resumes deposed: what its read found (the new leader's
// revocation) is not recorded as its own success in a term that has ended.
TEST_F(EnforcerFenceTest, ReadFindingsAfterLosingLeadershipAreNotRecordedAsSuccess) {
  const Timestamp t0 = one_violation_polled();
  revoked_behind_the_next_poll("bad-1", t0 + kGrace - minutes(1));  // the new leader's work
  fence_.lost_after_begin = true;
  cycle_at(t0 + kGrace);
  EXPECT_EQ(cluster_->revokes_of("bad-1"), 0);
  EXPECT_EQ(events("action_succeeded"), 0) << "no success in the ended term";
  ASSERT_EQ(events("action_failed"), 1);
  EXPECT_NE(details("action_failed").at(0).value("error", "").find("leadership was lost"),
            std::string::npos);
}

TEST_F(EnforcerFenceTest, FirstAttemptOfAnActiveTokenReadsThenRevokes) {
  const Timestamp t0 = one_violation_polled();
  const int reads_before = cluster_->reads["bad-1"];
  cycle_at(t0 + kGrace);
  // One read before the request (with [ha], even a first attempt), one read-back after it.
  EXPECT_EQ(cluster_->reads["bad-1"] - reads_before, 2);
  EXPECT_EQ(cluster_->revokes_of("bad-1"), 1);
  EXPECT_EQ(action_state("bad-1"), "succeeded");
}

TEST_F(EnforcerFenceTest, RefusedBeginLeavesTheActionPlannedWithNothingSent) {
  populate(*cluster_, 5, {bad("bad-1"), bad("bad-2")});
  fence_.refuse_begin = true;
  start_fenced({write_all_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  auto due = cycle_at(t0 + kGrace);
  EXPECT_EQ(due.enforcement.planned, 2);
  EXPECT_EQ(due.enforcement.succeeded, 0);
  EXPECT_EQ(cluster_->revoke_calls(), 0);
  EXPECT_EQ(cluster_->reads["bad-1"] + cluster_->reads["bad-2"], 0);
  EXPECT_EQ(fence_.begun.size(), 1u) << "the cycle stops at the first refusal";
  EXPECT_TRUE(fence_.finished.empty());
  EXPECT_EQ(action_state("bad-1"), "planned");
  EXPECT_EQ(action_state("bad-2"), "planned");
  EXPECT_EQ(attempts("bad-1") + attempts("bad-2"), 0) << "no attempt was claimed";
  EXPECT_EQ(events("action_failed"), 0);

  fence_.refuse_begin = false;
  cycle_after(minutes(1));
  EXPECT_EQ(cluster_->revokes_of("bad-1"), 1);
  EXPECT_EQ(cluster_->revokes_of("bad-2"), 1);
  EXPECT_EQ(action_state("bad-1"), "succeeded");
  EXPECT_EQ(action_state("bad-2"), "succeeded");
}

TEST_F(EnforcerFenceTest, MaySendFalseSendsNothingAndTheAttemptFails) {
  populate(*cluster_, 5, {bad("bad-1")});
  fence_.allow_send = false;
  start_fenced({write_all_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  auto due = cycle_at(t0 + kGrace);
  EXPECT_EQ(due.enforcement.succeeded, 0);
  EXPECT_EQ(cluster_->revoke_calls(), 0);
  ASSERT_EQ(fence_.send_deadlines.size(), 1u);
  ASSERT_EQ(fence_.finished.size(), 1u);
  EXPECT_EQ(fence_.finished[0].state, "retry");
  EXPECT_EQ(fence_.finished[0].error.rfind("not sent", 0), 0u) << fence_.finished[0].error;
  ASSERT_EQ(events("action_failed"), 1);
  json failed = details("action_failed").at(0);
  EXPECT_EQ(failed.value("error", "").rfind("not sent", 0), 0u) << failed;
  EXPECT_EQ(failed.value("term", std::int64_t{-1}), 5);
  EXPECT_FALSE(failed.value("final", true));
  EXPECT_EQ(action_state("bad-1"), "planned") << "retried later";
  EXPECT_EQ(attempts("bad-1"), 1);
}

TEST_F(EnforcerFenceTest, MaySendFalseSendsNoRestriction) {
  populate(*cluster_, 3,
           {make_token("wide", {{"read", "metrics_a"}, {"write", "metrics_a"}, {"write", "*"}})});
  fence_.allow_send = false;
  start_fenced({metrics_write_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  cycle_at(t0 + kGrace);
  EXPECT_EQ(cluster_->restrict_calls(), 0);
  EXPECT_GE(cluster_->reads["wide"], 1) << "read first";
  ASSERT_EQ(events("action_failed"), 1);
  EXPECT_EQ(details("action_failed").at(0).value("error", "").rfind("not sent", 0), 0u);
}

TEST_F(EnforcerFenceTest, NoActionUntilTakeoverReconciliationIsDone) {
  populate(*cluster_, 5, {bad("bad-1")});
  fence_.reconciled = false;
  start_fenced({write_all_policy()});
  const Timestamp t0 = clock_.now();
  cycle();
  cycle_at(t0 + kGrace);
  EXPECT_GE(fence_.reconcile_calls, 1);
  EXPECT_EQ(cluster_->revoke_calls(), 0);
  EXPECT_TRUE(fence_.begun.empty());
  EXPECT_EQ(action_state("bad-1"), "planned");
  const int calls = fence_.reconcile_calls;
  cycle_after(minutes(1));
  EXPECT_GT(fence_.reconcile_calls, calls) << "tried again at every poll";
  fence_.reconciled = true;
  cycle_after(minutes(1));
  EXPECT_EQ(cluster_->revokes_of("bad-1"), 1);
  EXPECT_EQ(action_state("bad-1"), "succeeded");
}

}  // namespace
}  // namespace tw::daemon

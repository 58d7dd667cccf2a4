// Tests for the enforcer's owner-addressed alerts and expiry notice ladder (issue 14,
// daemon/enforcer.h): driven through ClusterPoller::run_once on a manual clock, with a real
// temp-file audit store, [[owners]] rules, a fake cluster and a fake alert sink
// (tests/support/fakes.h). Assertions read the audit log through a second connection.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "daemon/enforcer.h"
#include "daemon/poller.h"
#include "policy/owners.h"
#include "storage/audit_store.h"
#include "storage/recorder.h"
#include "storage/sqlite.h"
#include "tests/support/fakes.h"
#include "tests/unit/core/test_support.h"

namespace tw::daemon {
namespace {

using nlohmann::json;
using std::chrono::days;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using tw::testing::FakeCluster;
using tw::testing::FakeClusterState;
using tw::testing::ts;

constexpr const char* kCluster = "prod-eu";

Token token(std::string id, std::string description, std::optional<Timestamp> expires) {
  Token t;
  t.id = std::move(id);
  t.description = std::move(description);
  t.permissions = {{"read", "db1"}};
  t.created_at = ts("2026-01-01T00:00:00Z");
  t.expires_at = expires;
  return t;
}

policy::PolicySpec ladder_policy() {
  policy::PolicySpec p;
  p.name = "expiry";
  p.kind = policy::Kind::kExpiresSoon;
  p.severity = policy::Severity::kWarning;
  p.min_token_age = Duration{0};
  p.notify_before = {days(30), days(7), days(1)};
  return p;
}
policy::PolicySpec orphan_policy() {
  policy::PolicySpec p;
  p.name = "orphans";
  p.kind = policy::Kind::kOrphaned;
  p.severity = policy::Severity::kInfo;
  p.min_token_age = Duration{0};
  return p;
}

// Two rules: payments tokens by id prefix… by description capture, and a static one.
std::vector<policy::OwnerRuleSpec> owner_rules() {
  policy::OwnerRuleSpec captured;
  captured.name = "by-description";
  captured.description_regex = R"(\(owner: (?P<owner>[a-z]+)\))";
  captured.team = "platform";
  policy::OwnerRuleSpec payments;
  payments.name = "payments";
  payments.description_glob = "pay-*";
  payments.owner = "alice";
  payments.team = "payments";
  payments.contact = "alice@example.com";
  payments.labels = {{"tier", "gold"}};
  return {captured, payments};
}

class OwnerAlertsTest : public ::testing::Test {
 protected:
  OwnerAlertsTest() : path_(dir_.file("audit.db")) {}

  void start(std::vector<policy::PolicySpec> policies) {
    policies_ = std::move(policies);
    auto s = storage::AuditStore::open(path_, storage::AuditStore::Mode::kReadWrite);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(*s);
    recorder_ = std::make_unique<storage::InventoryRecorder>(*store_);
    ClusterConfig c;
    c.name = kCluster;
    c.source.cluster = kCluster;
    c.source.timeout = seconds(10);
    c.poll_interval = minutes(1);
    auto enforcer = std::make_unique<Enforcer>(c, clock_, Logger("enforcer", logs_), &alerts_);
    auto set = policy::PolicySet::compile(policies_, {});
    ASSERT_TRUE(set.ok()) << set.error().message;
    policy::EnforcementSettings es;
    es.mode = policy::Mode::kEnforce;
    enforcer->configure(*set, es);
    poller_ = std::make_unique<ClusterPoller>(c, std::make_unique<FakeCluster>(cluster_, clock_),
                                              *recorder_, clock_, Logger("poller", logs_),
                                              std::move(enforcer));
    auto rules = policy::OwnerRules::compile(owner_rules());
    ASSERT_TRUE(rules.ok()) << rules.error().message;
    poller_->set_owner_rules(*rules);
  }
  void restart() {
    poller_.reset();
    recorder_.reset();
    store_.reset();
    start(policies_);
  }
  CycleReport cycle() { return poller_->run_once(RunOptions{}); }
  CycleReport cycle_at(Timestamp t) {
    clock_.set(t);
    return cycle();
  }

  // (token, threshold, expires_at) of every notice_sent event, in order.
  std::vector<std::string> notices() {
    std::vector<std::string> out;
    auto db = storage::Db::open(path_, storage::Db::Mode::kReadOnly);
    EXPECT_TRUE(db.ok());
    if (!db.ok()) return out;
    auto st = (*db)->prepare(
        "SELECT token_id, detail FROM audit_log WHERE event = 'notice_sent' ORDER BY seq");
    EXPECT_TRUE(st.ok());
    while (st.ok()) {
      auto row = st->step();
      if (!row.ok() || !*row) break;
      auto d = json::parse(st->text(1));
      out.push_back(st->text(0) + " " + d["threshold"].get<std::string>() + " " +
                    d["expires_at"].get<std::string>());
      last_detail_ = d;
    }
    return out;
  }
  // The sink's active TokenPolicyViolation alert of a token, or null.
  const Alert* alert_of(const std::string& token_id) const {
    auto it = alerts_.active.find(kCluster);
    if (it == alerts_.active.end()) return nullptr;
    for (const auto& a : it->second) {
      if (a.labels.at("alertname") == "TokenPolicyViolation" && a.labels.at("token_id") == token_id)
        return &a;
    }
    return nullptr;
  }
  int webhook_notices() const {
    int n = 0;
    for (const auto& c : alerts_.changes) n += c.event == "notice_sent" ? 1 : 0;
    return n;
  }

  tw::testing::TempDir dir_;
  std::string path_;
  std::unique_ptr<storage::AuditStore> store_;
  ManualClock clock_{ts("2026-03-01T00:00:00Z")};
  std::shared_ptr<FakeClusterState> cluster_ = std::make_shared<FakeClusterState>();
  tw::testing::FakeAlertSink alerts_;
  std::shared_ptr<MemoryLogSink> logs_ = std::make_shared<MemoryLogSink>();
  std::unique_ptr<storage::InventoryRecorder> recorder_;
  std::unique_ptr<ClusterPoller> poller_;
  std::vector<policy::PolicySpec> policies_;
  json last_detail_;
};

TEST_F(OwnerAlertsTest, EachThresholdIsAnnouncedOnceAsTheClockAdvances) {
  const Timestamp t0 = clock_.now();
  const Timestamp expiry = t0 + days(31);
  const std::string at = format_timestamp(expiry);
  cluster_->put(token("pay-1", "pay-api", expiry));
  start({ladder_policy()});
  cycle();
  EXPECT_TRUE(notices().empty()) << "31 days left: outside every threshold";
  EXPECT_EQ(poller_->enforcer()->next_due(), t0 + days(1)) << "the poll hook runs at 30d";

  cycle_at(t0 + days(1));
  EXPECT_EQ(notices(), std::vector<std::string>{"pay-1 30d " + at});
  EXPECT_EQ(last_detail_,
            json::parse(R"({"policy":"expiry","threshold":"30d","expires_at":")" + at +
                        R"(","remaining":"30d","owner":"alice","team":"payments",)"
                        R"("contact":"alice@example.com"})"));
  EXPECT_EQ(poller_->enforcer()->next_due(), t0 + days(24)) << "the 7d crossing";
  ASSERT_NE(alert_of("pay-1"), nullptr);
  EXPECT_EQ(alert_of("pay-1")->labels.at("threshold"), "30d");
  for (int i = 1; i <= 3; ++i) cycle_at(t0 + days(1) + hours(i));
  cycle_at(t0 + days(20));
  EXPECT_EQ(notices().size(), 1u) << "later polls repeat nothing";

  cycle_at(t0 + days(24));
  cycle_at(t0 + days(24) + minutes(5));
  ASSERT_NE(alert_of("pay-1"), nullptr);
  EXPECT_EQ(alert_of("pay-1")->labels.at("threshold"), "7d")
      << "a new alert per threshold: the 30d one is no longer in the active set";
  EXPECT_EQ(alerts_.active_named("TokenPolicyViolation", kCluster), 1);
  cycle_at(t0 + days(30) + hours(1));
  cycle_at(t0 + days(30) + hours(2));
  EXPECT_EQ(notices(),
            (std::vector<std::string>{"pay-1 30d " + at, "pay-1 7d " + at, "pay-1 1d " + at}));
  EXPECT_EQ(webhook_notices(), 3) << "each notice reaches the webhook once";
  const auto& last = alerts_.changes.back();
  EXPECT_EQ(last.owner, "alice");
  EXPECT_EQ(last.team, "payments");
  EXPECT_EQ(last.contact, "alice@example.com");
}

TEST_F(OwnerAlertsTest, ATokenFirstSeenInsideTheLadderGetsOnlyTheCurrentThreshold) {
  cluster_->put(token("pay-1", "pay-api", clock_.now() + days(5)));
  start({ladder_policy()});
  cycle();
  cycle();
  const auto n = notices();
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0].substr(0, 9), "pay-1 7d ") << "5 days left: 7d only, never 30d";
  const Alert* a = alert_of("pay-1");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->labels.at("threshold"), "7d");
}

TEST_F(OwnerAlertsTest, ARestartDoesNotAnnounceAgain) {
  const Timestamp t0 = clock_.now();
  cluster_->put(token("pay-1", "pay-api", t0 + days(10)));
  start({ladder_policy()});
  cycle();
  ASSERT_EQ(notices().size(), 1u);
  restart();
  cycle_at(t0 + minutes(1));
  cycle_at(t0 + hours(1));
  EXPECT_EQ(notices().size(), 1u) << "the new enforcer loads the notices sent";
  EXPECT_EQ(webhook_notices(), 1);
  const Alert* a = alert_of("pay-1");
  ASSERT_NE(a, nullptr) << "the alert is restored, with its threshold";
  EXPECT_EQ(a->labels.at("threshold"), "30d");
  cycle_at(t0 + days(3) + minutes(1));
  EXPECT_EQ(notices().size(), 2u) << "the next threshold is still announced";
}

// [ha]: a standby's alerts are muted, so it records no notice it did not issue; once it leads,
// it issues the current threshold.
class StandbyFence final : public ActionFence {
 public:
  bool lead = false;
  bool leading() const override { return lead; }
  std::int64_t term() const override { return 1; }
  bool reconcile(const std::string&, influx::ClusterClient&, const influx::CallContext&) override {
    return true;
  }
  Result<ActionTicket> begin(const std::string&, const storage::ActionRow&, Duration) override {
    return make_error(ErrorCode::kUnsupported, "the test acts on nothing");
  }
  bool may_send(const ActionTicket&, Duration) override { return false; }
  void finish(const ActionTicket&, const std::string&, const storage::ActionRow&, std::string_view,
              std::string_view, std::string_view) override {}
};

TEST_F(OwnerAlertsTest, NoticesOfPassedExpiriesAreForgottenAtLoad) {
  const Timestamp t0 = clock_.now();
  cluster_->put(token("pay-1", "pay-api", t0 + days(2)));
  start({ladder_policy()});
  cycle();
  ASSERT_EQ(notices().size(), 1u);
  auto rows = [&] {
    auto db = storage::Db::open(path_, storage::Db::Mode::kReadOnly);
    EXPECT_TRUE(db.ok());
    auto st = (*db)->prepare("SELECT COUNT(*) FROM expiry_notices");
    EXPECT_TRUE(st.ok() && st->step().ok());
    return st->int64(0);
  };
  EXPECT_EQ(rows(), 1);
  clock_.set(t0 + days(3));  // expired
  restart();
  cycle();
  EXPECT_EQ(rows(), 0) << "an expiry that passed can never be announced again";
  EXPECT_EQ(notices().size(), 1u) << "the event stays in the log";
}

TEST_F(OwnerAlertsTest, AnOpenViolationsAlertFollowsItsTokensNewOwner) {
  cluster_->put(token("svc-1", "svc (owner: bob)", clock_.now() + days(20)));
  start({ladder_policy()});
  cycle();
  ASSERT_NE(alert_of("svc-1"), nullptr);
  EXPECT_EQ(alert_of("svc-1")->labels.at("owner"), "bob");
  cluster_->tokens["svc-1"].description = "svc (owner: carol)";  // the violation stays open
  cycle_at(clock_.now() + minutes(1));
  ASSERT_NE(alert_of("svc-1"), nullptr);
  EXPECT_EQ(alert_of("svc-1")->labels.at("owner"), "carol") << "the new owner is told";
  auto rules = policy::OwnerRules::compile({owner_rules()[1]});  // new rules: bob's rule gone
  ASSERT_TRUE(rules.ok());
  poller_->set_owner_rules(*rules);
  cycle_at(clock_.now() + minutes(2));
  ASSERT_NE(alert_of("svc-1"), nullptr);
  EXPECT_FALSE(alert_of("svc-1")->labels.contains("owner")) << "nobody owns it any more";
  EXPECT_FALSE(alert_of("svc-1")->labels.contains("team"));
}

TEST_F(OwnerAlertsTest, AStandbyIssuesNoNoticeUntilItLeads) {
  const Timestamp t0 = clock_.now();
  cluster_->put(token("pay-1", "pay-api", t0 + days(10)));
  start({ladder_policy()});
  StandbyFence fence;
  poller_->enforcer()->set_fence(&fence);
  cycle();
  cycle_at(t0 + minutes(1));
  EXPECT_TRUE(notices().empty());
  EXPECT_EQ(webhook_notices(), 0);
  fence.lead = true;
  cycle_at(t0 + minutes(2));  // nothing changed, nothing due: the held notice is issued
  ASSERT_EQ(notices().size(), 1u);
  EXPECT_EQ(notices()[0].substr(0, 10), "pay-1 30d ");
  EXPECT_EQ(webhook_notices(), 1);
  cycle_at(t0 + days(4));  // the 7d crossing
  EXPECT_EQ(notices().size(), 2u);
}

TEST_F(OwnerAlertsTest, RotationExtensionAndRevocationWithdrawTheNotice) {
  const Timestamp t0 = clock_.now();
  cluster_->put(token("pay-1", "pay-api", t0 + days(5)));
  cluster_->put(token("pay-2", "pay-db", t0 + days(5)));
  cluster_->put(token("pay-3", "pay-etl", t0 + days(5)));
  start({ladder_policy()});
  cycle();
  ASSERT_EQ(notices().size(), 3u);
  ASSERT_EQ(alerts_.active_named("TokenPolicyViolation", kCluster), 3);

  cluster_->tokens.erase("pay-1");                       // rotated: gone
  cluster_->tokens["pay-2"].expires_at = t0 + days(90);  // extended
  cluster_->tokens["pay-3"].revoked_at = t0 + hours(1);  // revoked
  cycle_at(t0 + hours(1));
  EXPECT_EQ(alerts_.active_named("TokenPolicyViolation", kCluster), 0)
      << "every expiry alert is resolved";
  EXPECT_EQ(notices().size(), 3u) << "and nothing new is announced";

  // pay-2's new expiry starts the ladder again when it comes close.
  cycle_at(t0 + days(60) + hours(1));
  const auto n = notices();
  ASSERT_EQ(n.size(), 4u);
  EXPECT_EQ(n[3], "pay-2 30d " + format_timestamp(t0 + days(90)));
}

TEST_F(OwnerAlertsTest, DryRunSendsNoNotice) {
  cluster_->put(token("pay-1", "pay-api", clock_.now() + days(5)));
  start({ladder_policy()});
  RunOptions dry;
  dry.dry_run = true;
  poller_->run_once(dry);
  EXPECT_TRUE(notices().empty());
  EXPECT_EQ(webhook_notices(), 0);
  cycle();
  EXPECT_EQ(notices().size(), 1u) << "the real poll announces it";
  EXPECT_EQ(webhook_notices(), 1);
}

TEST_F(OwnerAlertsTest, AlertsCarryOwnerTeamRuleLabelsAndContact) {
  cluster_->put(token("pay-1", "pay-api", std::nullopt));
  cluster_->put(token("svc-1", "svc (owner: bob)", std::nullopt));
  cluster_->put(token("x-1", "nobody's token", std::nullopt));
  start({orphan_policy()});
  cycle();
  EXPECT_EQ(alerts_.active_named("TokenPolicyViolation", kCluster), 1) << "only x-1 is orphaned";
  const Alert* orphan = alert_of("x-1");
  ASSERT_NE(orphan, nullptr);
  EXPECT_FALSE(orphan->labels.contains("owner"));
  EXPECT_FALSE(orphan->labels.contains("team"));
  EXPECT_FALSE(orphan->annotations.contains("contact"));
  EXPECT_NE(orphan->annotations.at("description").find("no [[owners]] rule matches this token"),
            std::string::npos);

  restart();
  policies_ = {ladder_policy()};
  cluster_->tokens["pay-1"].expires_at = clock_.now() + days(2);
  cluster_->tokens["svc-1"].expires_at = clock_.now() + days(20);
  restart();
  cycle();
  const Alert* pay = alert_of("pay-1");
  ASSERT_NE(pay, nullptr);
  EXPECT_EQ(pay->labels.at("owner"), "alice");
  EXPECT_EQ(pay->labels.at("team"), "payments");
  EXPECT_EQ(pay->labels.at("tier"), "gold") << "the rule's static labels";
  EXPECT_EQ(pay->labels.at("threshold"), "7d");
  EXPECT_EQ(pay->annotations.at("contact"), "alice@example.com");
  EXPECT_FALSE(pay->labels.contains("description"));
  const Alert* svc = alert_of("svc-1");
  ASSERT_NE(svc, nullptr);
  EXPECT_EQ(svc->labels.at("owner"), "bob") << "captured from the description";
  EXPECT_EQ(svc->labels.at("team"), "platform");
  EXPECT_EQ(svc->labels.at("threshold"), "30d");
  EXPECT_FALSE(svc->annotations.contains("contact")) << "the rule gives none";
  EXPECT_FALSE(svc->labels.contains("tier"));
  for (const auto& c : alerts_.changes) {
    if (c.token_id != "pay-1") continue;
    EXPECT_EQ(c.owner, "alice") << c.event;
    EXPECT_EQ(c.team, "payments") << c.event;
  }
}

}  // namespace
}  // namespace tw::daemon

// Tests for daemon/ha.h: the HaCoordinator driven step by step (no thread) against the in-memory
// etcd of tests/unit/ha/fake_coordination.h on a manual steady clock, with a real audit store on a
// temporary SQLite file. Covered: the leadership events, leading() only once the intents of
// earlier terms are loaded, the fenced intents of begin()/finish(), a leader key taken under us,
// a lease that ran out while the process was paused, takeover reconciliation of open intents, the
// action_observed mirror with its durable cursor, and stop().

#include "daemon/ha.h"

#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "daemon/alerts.h"
#include "ha/intent.h"
#include "metrics/metrics.h"
#include "storage/audit_store.h"
#include "storage/sqlite.h"
#include "tests/support/fakes.h"
#include "tests/unit/core/test_support.h"
#include "tests/unit/ha/fake_coordination.h"

namespace tw::daemon {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using tw::ha::testing::FakeCoordination;
using tw::testing::FakeCluster;
using tw::testing::FakeClusterState;
using tw::testing::ts;

constexpr const char* kPrefix = "/tw/";
constexpr const char* kLeaderKey = "/tw/leader";
constexpr const char* kCluster = "prod-eu";
constexpr Duration kTtl = 15s;

// The fake etcd, with some operations made to fail on demand (by the fake's operation names:
// grant, keepalive, revoke, campaign, put, txn, range, get). The test keeps the fake.
class FlakyCoordination final : public ha::Coordination {
 public:
  FlakyCoordination(FakeCoordination& fake, const std::set<std::string>& failing,
                    std::deque<bool>& range_plan)
      : fake_(fake), failing_(failing), range_plan_(range_plan) {}

  Result<ha::Lease> grant(Duration ttl) override {
    if (fails("grant")) return failure("grant");
    return fake_.grant(ttl);
  }
  Result<ha::Renewal> keep_alive(ha::LeaseId lease) override {
    if (fails("keepalive")) return failure("keepalive");
    return fake_.keep_alive(lease);
  }
  Status revoke(ha::LeaseId lease) override {
    if (fails("revoke")) return failure("revoke");
    return fake_.revoke(lease);
  }
  Result<ha::Campaign> campaign(const std::string& key, const std::string& value,
                                ha::LeaseId lease) override {
    if (fails("campaign")) return failure("campaign");
    return fake_.campaign(key, value, lease);
  }
  Status put(const std::string& key, const std::string& value, ha::LeaseId lease) override {
    if (fails("put")) return failure("put");
    return fake_.put(key, value, lease);
  }
  Result<ha::FencedWrite> put_fenced(const std::string& key, const std::string& value,
                                     const std::string& fence_key,
                                     std::int64_t fence_revision) override {
    if (fails("txn")) return failure("txn");
    return fake_.put_fenced(key, value, fence_key, fence_revision);
  }
  Result<ha::Range> range_prefix(const std::string& prefix, std::int64_t min_mod) override {
    if (fails("range")) return failure("range");
    if (!range_plan_.empty()) {
      const bool fail = range_plan_.front();
      range_plan_.pop_front();
      if (fail) return failure("range");
    }
    return fake_.range_prefix(prefix, min_mod);
  }
  Result<std::optional<ha::KeyValue>> get(const std::string& key) override {
    if (fails("get")) return failure("get");
    return fake_.get(key);
  }

 private:
  bool fails(const char* op) const { return failing_.count(op) != 0; }
  static Error failure(const char* op) {
    return make_error(ErrorCode::kTimeout, std::string("etcd timed out during ") + op);
  }
  FakeCoordination& fake_;
  const std::set<std::string>& failing_;
  std::deque<bool>& range_plan_;  // the next range calls: true fails one
};

// A cluster whose get_token fails for one token id (the others are read from the fake).
class FailingReads final : public influx::ClusterClient {
 public:
  FailingReads(FakeCluster& inner, std::string failing)
      : inner_(inner), failing_(std::move(failing)) {}
  Result<influx::TokenList> list_tokens(const influx::CallContext& ctx) override {
    return inner_.list_tokens(ctx);
  }
  Result<std::optional<Token>> get_token(const std::string& id,
                                         const influx::CallContext& ctx) override {
    if (id == failing_) return make_error(ErrorCode::kNetwork, "connection reset reading " + id);
    return inner_.get_token(id, ctx);
  }
  Result<influx::RevokeOutcome> revoke(const std::string& id,
                                       const influx::CallContext& ctx) override {
    return inner_.revoke(id, ctx);
  }
  Status restrict(const std::string& id, const std::vector<Permission>& permissions,
                  const influx::CallContext& ctx) override {
    return inner_.restrict(id, permissions, ctx);
  }
  std::string describe() const override { return "failing reads"; }
  Result<std::optional<influx::OwnCredential>> own_credential(
      const influx::CallContext& ctx) override {
    return inner_.own_credential(ctx);
  }

 private:
  FakeCluster& inner_;
  std::string failing_;
};

Token token(std::string id) {
  Token t;
  t.id = std::move(id);
  t.description = "svc-app";
  t.permissions = {{"read", "db1"}, {"write", "*"}};
  sort_permissions(t.permissions);
  t.created_at = ts("2025-12-01T00:00:00Z");
  return t;
}

class HaTest : public ::testing::Test {
 protected:
  HaTest() : path_(dir_.file("audit.db")) { open_store(); }
  ~HaTest() override { coordinator_.reset(); }

  void open_store() {
    auto s = storage::AuditStore::open(path_, storage::AuditStore::Mode::kReadWrite);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    if (s.ok()) store_ = std::move(*s);
  }

  static HaSection config(const std::string& instance) {
    HaSection c;
    c.enabled = true;
    c.endpoints = {"http://127.0.0.1:2379"};
    c.instance = instance;
    c.key_prefix = kPrefix;
    c.lease_ttl = kTtl;
    return c;
  }

  std::unique_ptr<HaCoordinator> make(const std::string& instance,
                                      metrics::Metrics* metrics = nullptr,
                                      AlertDispatcher* alerts = nullptr) {
    HaDeps deps;
    deps.clock = &clock_;
    deps.alerts = alerts;
    deps.sink = logs_;
    deps.metrics = metrics;
    deps.backend = std::make_unique<FlakyCoordination>(etcd_, failing_, range_plan_);
    deps.steady = &steady_;
    auto h = HaCoordinator::create(config(instance), *store_, std::move(deps));
    EXPECT_TRUE(h.ok()) << (h.ok() ? "" : h.error().message);
    return h.ok() ? std::move(*h) : nullptr;
  }
  // The usual case: instance "a" leading after one step.
  HaCoordinator& leader() {
    coordinator_ = make("a");
    coordinator_->step();
    EXPECT_TRUE(coordinator_->leading());
    return *coordinator_;
  }
  // Another instance ("x", a bare election) holds the leader key.
  void other_leads() {
    other_ =
        std::make_unique<ha::Election>(etcd_, steady_, ha::ElectionOptions{kPrefix, "x", kTtl});
    other_->tick();
    ASSERT_EQ(other_->role(), ha::Role::kLeader);
  }

  static storage::ActionRow action(const std::string& token_id, std::int64_t id = 7,
                                   const std::string& policy = "no-write-all") {
    storage::ActionRow a;
    a.id = id;
    a.cluster = kCluster;
    a.token_id = token_id;
    a.policy = policy;
    a.action = "revoke";
    a.planned_at = ts("2026-03-01T00:00:00Z");
    return a;
  }
  static std::string key(const std::string& token_id, const std::string& policy = "no-write-all",
                         const std::string& cluster = kCluster) {
    return ha::intent_key(kPrefix, cluster, token_id, policy);
  }
  // An intent as another instance (or an earlier term) wrote it.
  ha::Intent foreign(const std::string& token_id, const std::string& instance, std::int64_t term,
                     const std::string& state = "intent", const std::string& cluster = kCluster) {
    ha::Intent i;
    i.cluster = cluster;
    i.token_id = token_id;
    i.policy = "no-write-all";
    i.action = "revoke";
    i.state = state;
    i.term = term;
    i.instance = instance;
    i.action_id = 3;
    i.attempt = 1;
    i.planned_at = ts("2026-02-28T00:00:00Z");
    i.updated_at = ts("2026-02-28T00:01:00Z");
    return i;
  }
  void write(const ha::Intent& i) {
    etcd_.overwrite(key(i.token_id, i.policy, i.cluster), ha::encode_intent(i));
  }
  std::optional<ha::Intent> stored(const std::string& k) {
    auto it = etcd_.kv.find(k);
    if (it == etcd_.kv.end()) return std::nullopt;
    return ha::decode_intent(it->second.value);
  }
  int intent_keys() {
    int n = 0;
    for (const auto& [k, v] : etcd_.kv) n += k.rfind("/tw/actions/", 0) == 0 ? 1 : 0;
    return n;
  }

  // ---- the audit log, through a second connection ----
  std::vector<std::string> column(const std::string& sql) {
    std::vector<std::string> out;
    auto db = storage::Db::open(path_, storage::Db::Mode::kReadOnly);
    EXPECT_TRUE(db.ok());
    if (!db.ok()) return out;
    auto st = (*db)->prepare(sql);
    EXPECT_TRUE(st.ok()) << sql;
    if (!st.ok()) return out;
    while (true) {
      auto row = st->step();
      EXPECT_TRUE(row.ok()) << sql;
      if (!row.ok() || !*row) break;
      out.push_back(st->is_null(0) ? "<null>" : st->text(0));
    }
    return out;
  }
  std::vector<json> details(const std::string& kind) {
    std::vector<json> out;
    for (const auto& d :
         column("SELECT detail FROM audit_log WHERE event = '" + kind + "' ORDER BY seq")) {
      out.push_back(json::parse(d, nullptr, false));
    }
    return out;
  }
  std::vector<std::string> token_ids(const std::string& kind) {
    return column("SELECT token_id FROM audit_log WHERE event = '" + kind + "' ORDER BY seq");
  }
  std::size_t events(const std::string& kind) { return details(kind).size(); }

  tw::testing::TempDir dir_;
  std::string path_;
  std::unique_ptr<storage::AuditStore> store_;
  ManualClock clock_{ts("2026-03-01T00:00:00Z")};
  ha::ManualSteadyClock steady_;
  FakeCoordination etcd_{steady_};
  std::set<std::string> failing_;
  std::deque<bool> range_plan_;
  std::shared_ptr<MemoryLogSink> logs_ = std::make_shared<MemoryLogSink>();
  std::unique_ptr<ha::Election> other_;
  std::unique_ptr<HaCoordinator> coordinator_;
};

// ---- leadership ------------------------------------------------------------------------------

TEST_F(HaTest, AcquisitionIsRecordedAndLeadsOnlyOnceOpenIntentsAreLoaded) {
  failing_ = {"range"};  // the intents cannot be read yet
  auto h = make("a");
  h->step();
  ASSERT_EQ(etcd_.kv.count(kLeaderKey), 1u);
  const std::int64_t term = etcd_.kv.at(kLeaderKey).create_revision;
  EXPECT_EQ(etcd_.kv.at(kLeaderKey).value, "a");
  ASSERT_EQ(events("leadership_acquired"), 1u);
  json d = details("leadership_acquired").at(0);
  EXPECT_EQ(d.value("term", std::int64_t{0}), term);
  EXPECT_EQ(d.value("instance", ""), "a");
  EXPECT_EQ(h->term(), term);
  // The election won, but the intents of earlier terms are not read: no action may start.
  EXPECT_FALSE(h->leading());
  // (begin() in this state: BeginBeforeTheOpenIntentsAreLoadedIsRefused below.)

  failing_.clear();
  h->step();
  EXPECT_TRUE(h->leading());
  EXPECT_EQ(events("leadership_acquired"), 1u) << "one acquisition, one event";
  EXPECT_TRUE(h->begin(kCluster, action("tok-1"), 5s).ok());
}

// A leader whose open intents are not loaded yet (the range failed) refuses begin() — it once
// deadlocked there, refusing under its own lock.
TEST_F(HaTest, BeginBeforeTheOpenIntentsAreLoadedIsRefused) {
  failing_ = {"range"};
  auto h = make("a");
  h->step();
  ASSERT_EQ(etcd_.kv.count(kLeaderKey), 1u);
  ASSERT_FALSE(h->leading());
  auto t = h->begin(kCluster, action("tok-1"), 5s);
  EXPECT_FALSE(t.ok());
  EXPECT_EQ(intent_keys(), 0);
}

TEST_F(HaTest, StandbyBeginIsRefusedAndCounted) {
  other_leads();
  metrics::Metrics m("test");
  auto h = make("a", &m);
  h->step();
  EXPECT_FALSE(h->leading());
  EXPECT_EQ(h->term(), other_->term()) << "a standby reports the leader's term";
  EXPECT_EQ(events("leadership_acquired"), 0u);
  auto t = h->begin(kCluster, action("tok-1"), 5s);
  ASSERT_FALSE(t.ok());
  EXPECT_FALSE(t.error().message.empty());
  EXPECT_EQ(intent_keys(), 0);
  const std::string text = m.render();
  EXPECT_NE(text.find("\ntokenwarden_ha_fence_refusals_total 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\ntokenwarden_ha_leader 0\n"), std::string::npos) << text;
}

TEST_F(HaTest, LeaderBeginWritesTheIntentAndFinishItsOutcome) {
  HaCoordinator& h = leader();
  const std::int64_t term = h.term();
  storage::ActionRow a = action("tok-1");
  a.attempts = 1;  // the second attempt
  auto t = h.begin(kCluster, a, 5s);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->term, term);
  EXPECT_EQ(t->key, "/tw/actions/prod-eu/tok-1/no-write-all");
  ASSERT_EQ(etcd_.kv.count(t->key), 1u);
  EXPECT_EQ(etcd_.kv.at(t->key).lease, 0) << "an intent outlives the lease";
  auto i = stored(t->key);
  ASSERT_TRUE(i.has_value());
  EXPECT_EQ(i->state, "intent");
  EXPECT_EQ(i->term, term);
  EXPECT_EQ(i->instance, "a");
  EXPECT_EQ(i->cluster, kCluster);
  EXPECT_EQ(i->token_id, "tok-1");
  EXPECT_EQ(i->policy, "no-write-all");
  EXPECT_EQ(i->action, "revoke");
  EXPECT_EQ(i->action_id, 7);
  EXPECT_EQ(i->attempt, 2);
  EXPECT_TRUE(i->outcome.empty());
  const std::int64_t written = etcd_.kv.at(t->key).mod_revision;

  EXPECT_TRUE(h.may_send(*t, 5s));
  h.finish(*t, kCluster, a, "succeeded", "revoked", "");
  i = stored(t->key);
  ASSERT_TRUE(i.has_value());
  EXPECT_EQ(i->state, "succeeded");
  EXPECT_EQ(i->outcome, "revoked");
  EXPECT_EQ(i->term, term);
  EXPECT_EQ(i->instance, "a");
  EXPECT_GT(etcd_.kv.at(t->key).mod_revision, written);

  // A failed attempt's sentence goes with it.
  auto t2 = h.begin(kCluster, action("tok-2", 8), 5s);
  ASSERT_TRUE(t2.ok());
  h.finish(*t2, kCluster, action("tok-2", 8), "retry", "", "HTTP 503 from the cluster");
  i = stored(t2->key);
  ASSERT_TRUE(i.has_value());
  EXPECT_EQ(i->state, "retry");
  EXPECT_EQ(i->error, "HTTP 503 from the cluster");
}

TEST_F(HaTest, BeginAfterTheLeaderKeyWasTakenIsRefusedAndStepsDown) {
  HaCoordinator& h = leader();
  const std::int64_t term = h.term();
  // Another writer replaced the leader key (our lease expired on the server, someone else won).
  etcd_.erase(kLeaderKey);
  etcd_.overwrite(kLeaderKey, "intruder");
  ASSERT_NE(etcd_.kv.at(kLeaderKey).create_revision, term);

  auto t = h.begin(kCluster, action("tok-1"), 5s);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(intent_keys(), 0) << "the fenced write must not land";
  EXPECT_FALSE(h.leading());
  EXPECT_FALSE(h.begin(kCluster, action("tok-2"), 5s).ok());

  h.step();
  ASSERT_EQ(events("leadership_lost"), 1u);
  json d = details("leadership_lost").at(0);
  EXPECT_EQ(d.value("reason", ""), "leader_key_lost");
  EXPECT_EQ(d.value("term", std::int64_t{0}), term);
  EXPECT_EQ(d.value("instance", ""), "a");
  EXPECT_FALSE(h.leading());
}

TEST_F(HaTest, FinishAfterTheLeaderKeyWasTakenStepsDownAndLeavesTheIntent) {
  HaCoordinator& h = leader();
  const std::int64_t term = h.term();
  auto t = h.begin(kCluster, action("tok-1"), 5s);
  ASSERT_TRUE(t.ok());
  etcd_.erase(kLeaderKey);
  etcd_.overwrite(kLeaderKey, "intruder");
  h.finish(*t, kCluster, action("tok-1"), "succeeded", "revoked", "");
  auto i = stored(t->key);
  ASSERT_TRUE(i.has_value());
  EXPECT_EQ(i->state, "intent") << "the next leader reconciles it";
  EXPECT_FALSE(h.leading());
  h.step();
  ASSERT_EQ(events("leadership_lost"), 1u);
  EXPECT_EQ(details("leadership_lost").at(0).value("reason", ""), "leader_key_lost");
  EXPECT_EQ(details("leadership_lost").at(0).value("term", std::int64_t{0}), term);
}

TEST_F(HaTest, MaySendIsFalseOnceTheLeaseRanOutWhilePaused) {
  metrics::Metrics m("test");
  auto owned = make("a", &m);  // destroyed before m
  owned->step();
  ASSERT_TRUE(owned->leading());
  HaCoordinator& h = *owned;
  auto t = h.begin(kCluster, action("tok-1"), 5s);
  ASSERT_TRUE(t.ok());
  // The process is paused (SIGSTOP) past the lease: no step ran meanwhile.
  steady_.advance(kTtl + 1s);
  EXPECT_FALSE(h.may_send(*t, 5s));
  EXPECT_FALSE(h.leading());
  EXPECT_NE(m.render().find("\ntokenwarden_ha_fence_refusals_total 1\n"), std::string::npos)
      << m.render();
  h.step();
  ASSERT_EQ(events("leadership_lost"), 1u);
  // may_send asks etcd first: the lease expired there, so etcd itself says it is gone.
  EXPECT_EQ(details("leadership_lost").at(0).value("reason", ""), "lease_lost");
}

// A clock that stopped with the process (a suspended VM) cannot fool may_send: etcd's own
// expiry of the lease decides.
TEST_F(HaTest, MaySendAsksEtcdEvenWhenTheLocalClockStoodStill) {
  HaCoordinator& h = leader();
  auto t = h.begin(kCluster, action("tok-1"), 5s);
  ASSERT_TRUE(t.ok());
  // The lease is gone on the server (expired there while our clock stood still).
  ASSERT_TRUE(etcd_.revoke(etcd_.kv.at(kLeaderKey).lease).ok());
  EXPECT_FALSE(h.may_send(*t, 5s));
  EXPECT_FALSE(h.leading());
}

TEST_F(HaTest, MaySendRenewsWhenTheLeaseWouldNotLastTheDeadline) {
  HaCoordinator& h = leader();
  auto t = h.begin(kCluster, action("tok-1"), 5s);
  ASSERT_TRUE(t.ok());
  steady_.advance(kTtl - 3s);  // 3 s left, 5 s needed: one renewal, then it lasts
  const int renewals = etcd_.calls["keepalive"];
  EXPECT_TRUE(h.may_send(*t, 5s));
  EXPECT_EQ(etcd_.calls["keepalive"], renewals + 1);
  EXPECT_TRUE(h.leading());
}

TEST_F(HaTest, LeadershipUnmutesTheAlertsAndItsLossMutesThem) {
  AlertDispatcher alerts(AlertingOptions{}, clock_,
                         Logger("alerts", std::make_shared<MemoryLogSink>()));
  alerts.set_muted(true);  // as start() leaves it
  metrics::Metrics m("test");
  {
    auto h = make("a", &m, &alerts);
    h->step();
    ASSERT_TRUE(h->leading());
    EXPECT_FALSE(alerts.muted()) << "the leader alerts";
    const std::string text = m.render();
    EXPECT_NE(text.find("\ntokenwarden_ha_leader 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("\ntokenwarden_ha_term " + std::to_string(h->term()) + "\n"),
              std::string::npos)
        << text;
    h->stop();
    EXPECT_TRUE(alerts.muted()) << "a former leader is silent";
    EXPECT_NE(m.render().find("\ntokenwarden_ha_leader 0\n"), std::string::npos);
  }
}

TEST_F(HaTest, ALostTermReacquiredLoadsTheOpenIntentsAgain) {
  HaCoordinator& h = leader();
  const std::int64_t first = h.term();
  // Someone else's key: lost at the next re-read.
  etcd_.erase(kLeaderKey);
  etcd_.overwrite(kLeaderKey, "intruder");
  steady_.advance(kTtl / 3);
  h.step();
  ASSERT_FALSE(h.leading());
  ASSERT_EQ(events("leadership_lost"), 1u);
  EXPECT_EQ(details("leadership_lost").at(0).value("reason", ""), "leader_key_lost");

  // Meanwhile the intruder left an intent open, then its key went away.
  write(foreign("tok-9", "intruder", etcd_.kv.at(kLeaderKey).create_revision));
  etcd_.erase(kLeaderKey);
  auto cluster = std::make_shared<FakeClusterState>();
  cluster->put(token("tok-9"));
  FakeCluster client(cluster, clock_);
  EXPECT_FALSE(h.reconcile(kCluster, client, {})) << "a standby does not reconcile";
  steady_.advance(kTtl / 3);
  h.step();
  ASSERT_TRUE(h.leading());
  EXPECT_GT(h.term(), first);
  ASSERT_EQ(events("leadership_acquired"), 2u);
  EXPECT_EQ(details("leadership_acquired").at(1).value("term", std::int64_t{0}), h.term());
  EXPECT_TRUE(h.reconcile(kCluster, client, {}));
  ASSERT_TRUE(stored(key("tok-9")).has_value());
  EXPECT_EQ(stored(key("tok-9"))->state, "reconciled");
  EXPECT_EQ(stored(key("tok-9"))->outcome, "not_done");
}

// ---- takeover --------------------------------------------------------------------------------

TEST_F(HaTest, TakeoverReconcilesIntentsEarlierTermsLeftOpen) {
  // A former leader "old" (term 2) began four actions on prod-eu and one elsewhere, and finished
  // one of them.
  write(foreign("tok-revoked", "old", 2));
  write(foreign("tok-active", "old", 2));
  write(foreign("tok-absent", "old", 2));
  write(foreign("tok-done", "old", 2, "succeeded"));
  write(foreign("tok-elsewhere", "old", 2, "intent", "prod-us"));

  auto cluster = std::make_shared<FakeClusterState>();
  Token revoked = token("tok-revoked");
  revoked.revoked_at = ts("2026-02-28T00:00:30Z");
  cluster->put(revoked);
  cluster->put(token("tok-active"));
  cluster->put(token("tok-done"));
  FakeCluster client(cluster, clock_);

  HaCoordinator& h = leader();
  const std::int64_t term = h.term();
  const std::size_t mirrored = events("action_observed");  // the former leader's intents

  EXPECT_TRUE(h.reconcile(kCluster, client, {}));
  EXPECT_EQ(cluster->reads["tok-done"], 0) << "a finished intent is not open";
  EXPECT_EQ(cluster->revoke_calls(), 0) << "reconciliation only reads";
  const std::map<std::string, std::string> want{
      {"tok-revoked", "revoked"}, {"tok-active", "not_done"}, {"tok-absent", "gone"}};
  for (const auto& [id, outcome] : want) {
    auto i = stored(key(id));
    ASSERT_TRUE(i.has_value()) << id;
    EXPECT_EQ(i->state, "reconciled") << id;
    EXPECT_EQ(i->outcome, outcome) << id;
    EXPECT_EQ(i->from_term, 2) << id;
    EXPECT_EQ(i->term, term) << id;
    EXPECT_EQ(i->instance, "a") << id;
    EXPECT_EQ(cluster->reads[id], 1) << id;
  }
  EXPECT_EQ(stored(key("tok-done"))->state, "succeeded");
  EXPECT_EQ(stored(key("tok-elsewhere", "no-write-all", "prod-us"))->state, "intent")
      << "another cluster's intents wait for that cluster";

  auto observed = details("action_observed");
  auto ids = token_ids("action_observed");
  ASSERT_EQ(observed.size(), mirrored + 3);
  std::map<std::string, std::string> found;
  for (std::size_t n = mirrored; n < observed.size(); ++n) {
    EXPECT_EQ(observed[n].value("state", ""), "reconciled");
    EXPECT_EQ(observed[n].value("reconciled_by", ""), "a");
    EXPECT_EQ(observed[n].value("reconciled_in_term", std::int64_t{0}), term);
    EXPECT_EQ(observed[n].value("term", std::int64_t{0}), 2);
    EXPECT_EQ(observed[n].value("instance", ""), "old");
    found[ids[n]] = observed[n].value("outcome", "");
  }
  EXPECT_EQ(found, want);

  // Nothing is left open on prod-eu: no more reads.
  EXPECT_TRUE(h.reconcile(kCluster, client, {}));
  EXPECT_EQ(cluster->get_calls, 3);
  // Our own reconciliation writes are not mirrored back.
  steady_.advance(kTtl / 3);
  h.step();
  EXPECT_EQ(events("action_observed"), mirrored + 3);
}

TEST_F(HaTest, ReconcileReadsRestrictionsAgainstTheirTarget) {
  ha::Intent r = foreign("tok-r", "old", 2);
  r.action = "restrict";
  r.target = R"([{"action":"read","resource":"db1"}])";
  write(r);
  auto cluster = std::make_shared<FakeClusterState>();
  Token t = token("tok-r");
  t.permissions = {{"read", "db1"}};
  cluster->put(t);
  FakeCluster client(cluster, clock_);
  HaCoordinator& h = leader();
  EXPECT_TRUE(h.reconcile(kCluster, client, {}));
  ASSERT_TRUE(stored(key("tok-r")).has_value());
  EXPECT_EQ(stored(key("tok-r"))->outcome, "restricted");
}

TEST_F(HaTest, ReconcileStopsAtAFailedReadAndKeepsTheRestOpen) {
  write(foreign("tok-1", "old", 2));
  write(foreign("tok-2", "old", 2));
  write(foreign("tok-3", "old", 2));
  auto cluster = std::make_shared<FakeClusterState>();
  for (const char* id : {"tok-1", "tok-2", "tok-3"}) cluster->put(token(id));
  FakeCluster client(cluster, clock_);
  HaCoordinator& h = leader();

  // The cluster cannot be read at all: nothing reconciled, not done.
  cluster->read_error = make_error(ErrorCode::kNetwork, "connection refused");
  EXPECT_FALSE(h.reconcile(kCluster, client, {}));
  for (const char* id : {"tok-1", "tok-2", "tok-3"}) EXPECT_EQ(stored(key(id))->state, "intent");
  cluster->read_error.reset();

  // tok-2 cannot be read: tok-1 is reconciled, tok-2 and tok-3 stay open.
  FailingReads flaky(client, "tok-2");
  EXPECT_FALSE(h.reconcile(kCluster, flaky, {}));
  EXPECT_EQ(stored(key("tok-1"))->state, "reconciled");
  EXPECT_EQ(stored(key("tok-2"))->state, "intent");
  EXPECT_EQ(stored(key("tok-3"))->state, "intent");
  EXPECT_TRUE(h.leading()) << "a failed read-back does not cost the leadership";

  // Readable again: the rest is reconciled, tok-1 is not read again.
  const int tok1_reads = cluster->reads["tok-1"];
  EXPECT_TRUE(h.reconcile(kCluster, client, {}));
  EXPECT_EQ(stored(key("tok-2"))->state, "reconciled");
  EXPECT_EQ(stored(key("tok-3"))->state, "reconciled");
  EXPECT_EQ(cluster->reads["tok-1"], tok1_reads);
  std::size_t reconciled = 0;
  for (const auto& d : details("action_observed")) {
    if (d.value("state", "") == "reconciled") ++reconciled;
  }
  EXPECT_EQ(reconciled, 3u) << "one action_observed per reconciled intent";
}

TEST_F(HaTest, StandbyDoesNotReconcile) {
  write(foreign("tok-1", "old", 2));
  other_leads();
  auto cluster = std::make_shared<FakeClusterState>();
  cluster->put(token("tok-1"));
  FakeCluster client(cluster, clock_);
  coordinator_ = make("a");
  coordinator_->step();
  EXPECT_FALSE(coordinator_->reconcile(kCluster, client, {}));
  EXPECT_EQ(cluster->get_calls, 0);
  EXPECT_EQ(stored(key("tok-1"))->state, "intent");
}

// ---- the mirror ------------------------------------------------------------------------------

TEST_F(HaTest, MirrorRecordsOtherInstancesIntentsOnceAcrossRestarts) {
  other_leads();
  const std::int64_t term = other_->term();
  write(foreign("tok-1", "x", term));
  write(foreign("tok-2", "x", term, "succeeded"));
  write(foreign("tok-own", "a", term));  // written by this instance in an earlier life
  // Damaged or foreign values under the prefix.
  etcd_.overwrite("/tw/actions/prod-eu/tok-bad/p", "not json {");
  etcd_.overwrite("/tw/actions/prod-eu/tok-arr/p", "[1,2,3]");
  etcd_.overwrite("/tw/actions/prod-eu/tok-obj/p", R"({"hello":"world","term":"x"})");
  etcd_.overwrite("/tw/actions/prod-eu/tok-bin/p", std::string("\xff\xfe\0\x01", 4));

  coordinator_ = make("a");
  coordinator_->step();
  ASSERT_FALSE(coordinator_->leading());
  auto observed = details("action_observed");
  ASSERT_EQ(observed.size(), 2u);
  EXPECT_EQ(token_ids("action_observed"), (std::vector<std::string>{"tok-1", "tok-2"}));
  EXPECT_EQ(observed[0].value("instance", ""), "x");
  EXPECT_EQ(observed[0].value("state", ""), "intent");
  EXPECT_EQ(observed[0].value("term", std::int64_t{0}), term);
  EXPECT_EQ(observed[0].value("key_prefix", ""), kPrefix);
  EXPECT_EQ(observed[0].value("revision", std::int64_t{0}), etcd_.kv.at(key("tok-1")).mod_revision);
  EXPECT_EQ(observed[1].value("state", ""), "succeeded");
  EXPECT_EQ(column("SELECT cluster FROM audit_log WHERE event = 'action_observed'"),
            (std::vector<std::string>{kCluster, kCluster}));

  // Nothing new: nothing recorded again, however often it steps.
  for (int n = 0; n < 4; ++n) {
    steady_.advance(kTtl / 3);
    other_->tick();
    coordinator_->step();
  }
  EXPECT_EQ(events("action_observed"), 2u);

  // The leader finishes tok-1: the new value is one more event.
  write(foreign("tok-1", "x", term, "succeeded"));
  steady_.advance(kTtl / 3);
  other_->tick();
  coordinator_->step();
  ASSERT_EQ(events("action_observed"), 3u);
  EXPECT_EQ(details("action_observed").at(2).value("state", ""), "succeeded");

  // A restart (a new coordinator on the same database): nothing is recorded twice.
  coordinator_.reset();
  store_.reset();
  open_store();
  coordinator_ = make("a");
  coordinator_->step();
  steady_.advance(kTtl / 3);
  other_->tick();
  coordinator_->step();
  EXPECT_EQ(events("action_observed"), 3u);

  // ...and what was written while it was down or since is recorded once.
  write(foreign("tok-3", "x", term));
  steady_.advance(kTtl / 3);
  other_->tick();
  coordinator_->step();
  ASSERT_EQ(events("action_observed"), 4u);
  EXPECT_EQ(token_ids("action_observed").back(), "tok-3");
}

TEST_F(HaTest, MirrorCatchesUpAfterAFailedRange) {
  other_leads();
  write(foreign("tok-1", "x", other_->term()));
  failing_ = {"range"};
  coordinator_ = make("a");
  coordinator_->step();
  EXPECT_EQ(events("action_observed"), 0u);
  failing_.clear();
  coordinator_->step();  // nothing changed in the store, but the catch-up is pending
  EXPECT_EQ(events("action_observed"), 1u);
  coordinator_->step();
  EXPECT_EQ(events("action_observed"), 1u);
}

// A reconciliation's action_observed event must not advance the durable mirror cursor past
// intents of other instances not mirrored yet (the mirror's range failed at the acquisition, the
// daemon restarts before the next one succeeds).
TEST_F(HaTest, ReconciliationDoesNotMoveTheMirrorCursorPastUnmirroredIntents) {
  write(foreign("tok-done", "old", 2, "succeeded"));  // finished by the former leader
  write(foreign("tok-open", "old", 2));               // left open
  auto cluster = std::make_shared<FakeClusterState>();
  cluster->put(token("tok-open"));
  FakeCluster client(cluster, clock_);

  range_plan_ = {false, true};  // the open intents are read, the mirror's range fails
  coordinator_ = make("a");
  coordinator_->step();
  ASSERT_TRUE(coordinator_->leading());
  ASSERT_EQ(events("action_observed"), 0u);
  ASSERT_TRUE(coordinator_->reconcile(kCluster, client, {}));
  ASSERT_EQ(stored(key("tok-open"))->state, "reconciled");

  // Restart before the mirror caught up.
  coordinator_.reset();
  store_.reset();
  open_store();
  coordinator_ = make("a");
  coordinator_->step();
  std::size_t done = 0;
  auto ids = token_ids("action_observed");
  for (const auto& id : ids) done += id == "tok-done" ? 1u : 0u;
  EXPECT_EQ(done, 1u) << "the former leader's finished intent is recorded once";
}

// ---- stop ------------------------------------------------------------------------------------

TEST_F(HaTest, StopOnALeaderRevokesTheLeaseAndRecordsShutdown) {
  HaCoordinator& h = leader();
  const std::int64_t term = h.term();
  const ha::LeaseId lease = etcd_.kv.at(kLeaderKey).lease;
  h.stop();
  EXPECT_EQ(etcd_.kv.count(kLeaderKey), 0u) << "a successor need not wait for the lease";
  EXPECT_EQ(etcd_.kv.count("/tw/members/a"), 0u);
  EXPECT_FALSE(etcd_.lease_alive(lease));
  EXPECT_EQ(etcd_.calls["revoke"], 1);
  ASSERT_EQ(events("leadership_lost"), 1u);
  json d = details("leadership_lost").at(0);
  EXPECT_EQ(d.value("reason", ""), "shutdown");
  EXPECT_EQ(d.value("term", std::int64_t{0}), term);
  EXPECT_EQ(d.value("instance", ""), "a");
  EXPECT_FALSE(h.leading());
  h.stop();  // idempotent
  EXPECT_EQ(events("leadership_lost"), 1u);
  EXPECT_EQ(etcd_.calls["revoke"], 1);
}

TEST_F(HaTest, StopOnAStandbyRecordsNoLeadershipLoss) {
  other_leads();
  coordinator_ = make("a");
  coordinator_->step();
  coordinator_->stop();
  EXPECT_EQ(events("leadership_lost"), 0u);
  EXPECT_EQ(etcd_.kv.at(kLeaderKey).value, "x") << "the leader is untouched";
  EXPECT_EQ(etcd_.kv.count("/tw/members/a"), 0u);
}

}  // namespace
}  // namespace tw::daemon

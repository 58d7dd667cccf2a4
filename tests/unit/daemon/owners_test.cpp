// Owner tracking in the poll (daemon/owners.h) and the [[owners]] configuration: resolution at
// every poll, owner_changed only for known tokens, a restart that resolves nothing anew, dry runs
// that write nothing, and the config loader's checks.
#include "daemon/owners.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "daemon/poller.h"
#include "storage/audit_store.h"
#include "storage/owners.h"
#include "storage/recorder.h"
#include "storage/sqlite.h"
#include "tests/support/fakes.h"
#include "tests/unit/core/test_support.h"

namespace tw::daemon {
namespace {

using tw::testing::FakeCluster;
using FakeState = tw::testing::FakeClusterState;
using tw::testing::ts;

Token token(std::string id, std::string description) {
  Token t;
  t.id = std::move(id);
  t.description = std::move(description);
  t.permissions = {{"read", "db1"}};
  t.created_at = ts("2025-12-01T00:00:00Z");
  return t;
}

std::shared_ptr<const policy::OwnerRules> rules(const std::string& team = "data") {
  policy::OwnerRuleSpec r;
  r.name = "by-description";
  r.description_regex = R"(\(owner: (?P<owner>[^)]+)\))";
  r.team = team;
  return *policy::OwnerRules::compile({r});
}

class OwnerPollTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s =
        storage::AuditStore::open(dir_.file("audit.db"), storage::AuditStore::Mode::kReadWrite);
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
    recorder_ = std::make_unique<storage::InventoryRecorder>(*store_);
    restart();
  }
  // A new process: a new recorder and poller over the same database.
  void restart() {
    recorder_ = std::make_unique<storage::InventoryRecorder>(*store_);
    ClusterConfig cfg;
    cfg.name = "c1";
    cfg.source.cluster = "c1";
    poller_ = std::make_unique<ClusterPoller>(cfg, std::make_unique<FakeCluster>(fake_, clock_),
                                              *recorder_, clock_, Logger("poller", sink_));
    poller_->set_owner_rules(rules_);
  }
  CycleReport poll(std::vector<Token> list, bool dry_run = false) {
    influx::TokenList l;
    l.tokens = std::move(list);
    fake_->script.emplace_back(std::move(l));
    RunOptions o;
    o.dry_run = dry_run;
    auto rep = poller_->run_once(o);
    clock_.advance(std::chrono::minutes(1));
    return rep;
  }
  std::int64_t count(const std::string& sql) {
    auto st = store_->db().prepare(sql);
    EXPECT_TRUE(st.ok());
    auto r = st->step();
    EXPECT_TRUE(r.ok() && *r);
    return st->int64(0);
  }
  std::map<std::string, Ownership> owners() {
    auto o = storage::load_owners(store_->db(), "c1");
    EXPECT_TRUE(o.ok());
    return {o->begin(), o->end()};
  }

  tw::testing::TempDir dir_;
  ManualClock clock_{ts("2026-01-10T00:00:00Z")};
  std::shared_ptr<FakeState> fake_ = [] {
    auto s = std::make_shared<FakeState>();
    s->script_only = true;
    return s;
  }();
  std::shared_ptr<MemoryLogSink> sink_ = std::make_shared<MemoryLogSink>();
  std::unique_ptr<storage::AuditStore> store_;
  std::unique_ptr<storage::InventoryRecorder> recorder_;
  std::unique_ptr<ClusterPoller> poller_;
  std::shared_ptr<const policy::OwnerRules> rules_ = rules();
};

TEST_F(OwnerPollTest, NewTokensAreResolvedWithoutAnOwnerEvent) {
  ASSERT_TRUE(poll({token("a", "x (owner: alice)"), token("b", "nobody")}).recorded);
  auto o = owners();
  ASSERT_EQ(o.size(), 1U) << "only matched tokens have a row";
  EXPECT_EQ(o["a"].owner, "alice");
  EXPECT_EQ(o["a"].team, "data");
  EXPECT_EQ(poller_->owners().of("a").owner, "alice");
  EXPECT_FALSE(poller_->owners().of("b").matched());
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log WHERE event = 'owner_changed'"), 0);
}

TEST_F(OwnerPollTest, ADescriptionChangeIsOneOwnerChangedEvent) {
  poll({token("a", "x (owner: alice)")});
  poll({token("a", "x (owner: carol)")});
  poll({token("a", "x (owner: carol)")});
  EXPECT_EQ(owners()["a"].owner, "carol");
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log WHERE event = 'owner_changed' AND "
                  "json_extract(detail, '$.previous_owner') = 'alice' AND "
                  "json_extract(detail, '$.cause') = 'description_changed'"),
            1);
}

TEST_F(OwnerPollTest, ARestartResolvesAgainButRecordsNothingNew) {
  poll({token("a", "x (owner: alice)"), token("b", "nobody")});
  restart();
  poll({token("a", "x (owner: alice)"), token("b", "nobody")});
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log WHERE event = 'owner_changed'"), 0);
  EXPECT_EQ(poller_->owners().of("a").owner, "alice") << "read back from the database";
}

TEST_F(OwnerPollTest, NewRulesReassignKnownTokensAsRulesChanged) {
  poll({token("a", "x (owner: alice)")});
  rules_ = rules("ingest");
  poller_->set_owner_rules(rules_);
  poll({token("a", "x (owner: alice)")});
  EXPECT_EQ(owners()["a"].team, "ingest");
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log WHERE event = 'owner_changed' AND "
                  "json_extract(detail, '$.cause') = 'rules_changed' AND "
                  "json_extract(detail, '$.previous_team') = 'data'"),
            1);
  poller_->set_owner_rules(nullptr);
  poll({token("a", "x (owner: alice)")});
  EXPECT_TRUE(owners().empty()) << "no rules: nobody owns it any more";
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log WHERE event = 'owner_changed'"), 2);
}

TEST_F(OwnerPollTest, ADryRunWritesNoOwnerAndForgetsWhatItResolved) {
  poll({token("a", "x (owner: alice)")}, /*dry_run=*/true);
  EXPECT_TRUE(owners().empty());
  poll({token("a", "x (owner: alice)")});
  EXPECT_EQ(owners()["a"].owner, "alice");
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log WHERE event = 'owner_changed'"), 0);
}

TEST_F(OwnerPollTest, ARemovedTokenKeepsItsLastOwner) {
  poll({token("a", "x (owner: alice)"), token("b", "y (owner: bob)")});
  poll({token("b", "y (owner: bob)")});
  EXPECT_EQ(owners()["a"].owner, "alice");
}

// --- [[owners]] in the configuration -------------------------------------------------------

const char* kCluster = R"toml(
[[clusters]]
name = "c0"
type = "clustered"
url = "https://h0.example.com/api/v0"
token_file = "/etc/t0"
)toml";

ConfigLoad load(const std::string& owners) {
  return load_config_string(std::string(kCluster) + owners, "<string>", ts("2026-01-10T00:00:00Z"));
}

std::string errors_of(const ConfigLoad& l) {
  std::string out;
  for (const auto& e : l.errors) out += e + "\n";
  return out;
}

TEST(OwnersConfig, RulesAreReadInOrderWithDefaultNames) {
  auto l = load(R"toml(
[[owners]]
description_regex = "\\(owner: (?P<owner>[^)]+)\\)"
team = "data"
contact = "data@example.com"
labels = { pager = "data-oncall" }
[[owners]]
name = "ci"
description_glob = "ci-*"
clusters = ["prod-*"]
owner = "ci-bot"
)toml");
  ASSERT_TRUE(l.config) << errors_of(l);
  ASSERT_EQ(l.config->owners.size(), 2U);
  EXPECT_EQ(l.config->owners[0].name, "owners[0]");
  EXPECT_EQ(l.config->owners[0].labels.at("pager"), "data-oncall");
  EXPECT_EQ(l.config->owners[1].clusters, std::vector<std::string>{"prod-*"});
  const std::string printed = render_config(*l.config);
  EXPECT_NE(printed.find("[[owners]]\nname = \"ci\""), std::string::npos) << printed;
  auto again = load_config_string(printed, "<printed>", ts("2026-01-10T00:00:00Z"));
  ASSERT_TRUE(again.config) << errors_of(again);
  EXPECT_EQ(again.config->owners.size(), 2U);
  EXPECT_EQ(again.config->owners[0].description_regex, l.config->owners[0].description_regex);
}

TEST(OwnersConfig, BadRulesAreOneSentenceEachWithTheirPath) {
  const std::pair<const char*, const char*> cases[] = {
      {"description_regex = \"(?P<owner>[\"\nteam = \"x\"", "owners[0].description_regex"},
      {"team = \"x\"", "needs a matcher"},
      {"description_glob = \"*\"", "assigns nobody"},
      {"description_glob = \"*\"\nteam = \"x\"\nlabels = { severity = \"y\" }",
       "set by tokenwarden itself"},
      {"description_glob = \"*\"\nteam = \"x\"\nlabels = { \"bad-name\" = \"y\" }", "must match"},
      {"description_glob = \"*\"\nowner = \"a\\nb\"", "one line"},
      {"description_glob = \"*\"\nteam = \"x\"\nsurprise = 1", "surprise"},
  };
  for (const auto& [body, want] : cases) {
    auto l = load(std::string("[[owners]]\n") + body + "\n");
    EXPECT_FALSE(l.config) << body;
    EXPECT_NE(errors_of(l).find(want), std::string::npos) << body << "\n" << errors_of(l);
    for (const auto& e : l.errors) EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
  auto dup = load(
      "[[owners]]\nname = \"a\"\ntoken_id = \"t\"\nteam = \"x\"\n"
      "[[owners]]\nname = \"a\"\ntoken_id = \"u\"\nteam = \"y\"\n");
  EXPECT_NE(errors_of(dup).find("owners[1].name"), std::string::npos) << errors_of(dup);
}

}  // namespace
}  // namespace tw::daemon

// Tests for report/: collect() over a small recorded history (coverage and gaps, the inventory
// and its highlights, change counts, compliance figures, the series, integrity) and the four
// renderers (structure, escaping of hostile text, CSV quoting and formula guard).

#include "report/report.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/strings.h"
#include "report/text_util.h"
#include "storage/anomalies.h"
#include "storage/checkpoints.h"
#include "storage/read_txn.h"
#include "tests/unit/storage/store_fixture.h"

namespace tw::report {
namespace {

using storage::testing::make_token;
using tw::testing::ts;

using std::chrono::hours;
using std::chrono::minutes;

const Timestamp kStart = ts("2026-01-01T00:00:00Z");

// The inventory's entries, copied out of the visit.
struct Listed {
  storage::InventoryRow row;
  bool never_expires, all_databases, writes;
};
std::vector<Listed> tokens_of(const InventorySection& inv) {
  std::vector<Listed> out;
  inv.for_each_token([&](const InventoryEntry& e) {
    out.push_back({e.row, e.never_expires, e.all_databases, e.writes});
    return true;
  });
  return out;
}

class ReportTest : public storage::testing::HistoryStoreTest {
 protected:
  void violation(const std::string& token, const std::string& policy, Timestamp opened,
                 std::optional<Timestamp> resolved, const std::string& resolution = "compliant") {
    insert_violation({"prod", token, policy, "critical", "revoke", opened, resolved, resolution});
  }
  Request request(Timestamp from, Timestamp to) {
    Request r;
    r.from = from;
    r.to = to;
    r.at = to;
    r.generated_at = to;
    r.database = "audit.db";
    r.version = "test";
    r.samples = 5;
    return r;
  }
  ReportData collect_ok(const Request& r, const Context& ctx = {}) {
    auto txn = read();
    auto d = collect(txn, r, ctx);
    EXPECT_TRUE(d.ok()) << (d.ok() ? "" : d.error().message);
    return d.ok() ? std::move(*d) : ReportData{};
  }
  std::string render(const ReportData& d, Format f) {
    auto txn = read();
    std::string out;
    auto s = write_report(txn, d, f, [&](std::string_view chunk) { out += chunk; });
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return out;
  }
};

// Hourly polls of "prod" from kStart: a (read db1, expires in 30 days), b (write *, never
// expires) and c (read db2, never expires). At +2h d is created; at +3h a's description
// changes; at +4h c is revoked; polls fail at +5h and +6h; nothing between +7h and +20h
// (an outage); at +20h b vanishes.
class HistoryTest : public ReportTest {
 protected:
  void SetUp() override {
    ReportTest::SetUp();
    a_ = make_token("a", "svc a", {{"read", "db1"}}, kStart + hours(24 * 30));
    b_ = make_token("b", "svc b", {{"write", "*"}});
    c_ = make_token("c", "svc c", {{"read", "db2"}});
    d_ = make_token("d", "svc d", {{"read", "db1"}, {"write", "db1"}}, kStart + hours(24 * 2));
    std::vector<Token> t0{a_, b_, c_};
    poll_at(kStart, &t0);
    poll_at(kStart + hours(1), &t0);
    std::vector<Token> t2{a_, b_, c_, d_};
    poll_at(kStart + hours(2), &t2);
    a_.description = "svc a renamed";
    std::vector<Token> t3{a_, b_, c_, d_};
    poll_at(kStart + hours(3), &t3);
    c_.revoked_at = kStart + hours(4) - minutes(5);
    std::vector<Token> t4{a_, b_, c_, d_};
    poll_at(kStart + hours(4), &t4);
    poll_at(kStart + hours(5), nullptr);
    poll_at(kStart + hours(6), nullptr);
    std::vector<Token> t20{a_, c_, d_};
    poll_at(kStart + hours(20), &t20);
    poll_at(kStart + hours(21), &t20);
  }
  Token a_, b_, c_, d_;
};

TEST_F(HistoryTest, CoverageCountsPollsAndFindsTheOutage) {
  auto d = collect_ok(request(kStart, kStart + hours(21)));
  ASSERT_EQ(d.coverage.size(), 1u);
  const auto& c = d.coverage[0];
  EXPECT_EQ(c.cluster, "prod");
  EXPECT_EQ(c.polls_ok, 7);
  EXPECT_EQ(c.polls_failed, 2);
  EXPECT_EQ(c.polls_suspect, 0);
  EXPECT_EQ(c.interval_source, "observed");
  EXPECT_EQ(c.interval, hours(1));
  // Last ok poll at +4h, next at +20h: one gap of 16 h (more than 3 intervals).
  ASSERT_EQ(c.gaps.size(), 1u);
  EXPECT_EQ(c.gaps[0].from, kStart + hours(4));
  EXPECT_EQ(c.gaps[0].to, kStart + hours(20));
  EXPECT_EQ(c.gap_total, hours(16));
  EXPECT_EQ(c.last_successful_poll, kStart + hours(21));
}

TEST_F(HistoryTest, ConfiguredIntervalDecidesWhatIsAGap) {
  Context ctx;
  ctx.clusters["prod"].poll_interval = hours(6);  // 3 intervals = 18 h > the 16 h outage
  auto d = collect_ok(request(kStart, kStart + hours(21)), ctx);
  ASSERT_EQ(d.coverage.size(), 1u);
  EXPECT_EQ(d.coverage[0].interval_source, "config");
  EXPECT_TRUE(d.coverage[0].gaps.empty());
}

TEST_F(HistoryTest, AnOutageUpToTheEndOfThePeriodIsAGap) {
  auto d = collect_ok(request(kStart, kStart + hours(12)));
  ASSERT_EQ(d.coverage[0].gaps.size(), 1u);
  EXPECT_EQ(d.coverage[0].gaps[0].from, kStart + hours(4));
  EXPECT_EQ(d.coverage[0].gaps[0].to, kStart + hours(12));
}

TEST_F(HistoryTest, InventoryAtTheEndWithHighlights) {
  auto d = collect_ok(request(kStart, kStart + hours(21)));
  const auto& inv = d.inventory;
  ASSERT_EQ(tokens_of(inv).size(), 4u);
  EXPECT_EQ(inv.token_count, 4);
  EXPECT_EQ(inv.by_status[0], 2);  // a, d active
  EXPECT_EQ(inv.by_status[2], 1);  // c revoked
  EXPECT_EQ(inv.by_status[3], 1);  // b removed
  EXPECT_EQ(inv.never_expire, 0);  // b (never expires) is gone, c is revoked
  EXPECT_EQ(inv.writes, 1);        // d
  EXPECT_EQ(inv.all_databases, 0);
  for (const auto& e : tokens_of(inv)) {
    if (e.row.token.id == "a") {
      EXPECT_EQ(e.row.token.description, "svc a renamed");
    }
    if (e.row.token.id == "d") {
      EXPECT_TRUE(e.writes);
    }
    if (e.row.token.id == "b") {
      EXPECT_TRUE(e.all_databases);
    }
  }
}

TEST_F(HistoryTest, InventoryAtAnEarlierInstant) {
  auto r = request(kStart, kStart + hours(21));
  r.at = kStart + hours(2) + minutes(30);
  auto d = collect_ok(r);
  ASSERT_EQ(tokens_of(d.inventory).size(), 4u);
  EXPECT_EQ(d.inventory.by_status[0], 4);
  EXPECT_EQ(d.inventory.never_expire, 2);   // b, c
  EXPECT_EQ(d.inventory.all_databases, 1);  // b
  EXPECT_EQ(d.inventory.writes, 2);         // b, d
  for (const auto& e : tokens_of(d.inventory)) {
    if (e.row.token.id == "a") {
      EXPECT_EQ(e.row.token.description, "svc a");
    }
  }
}

TEST_F(HistoryTest, ChangeCountsInThePeriod) {
  auto d = collect_ok(request(kStart, kStart + hours(21)));
  EXPECT_EQ(d.changes.discovered, 3);
  EXPECT_EQ(d.changes.created, 1);
  EXPECT_EQ(d.changes.updated, 1);
  EXPECT_EQ(d.changes.revoked, 1);
  EXPECT_EQ(d.changes.removed, 1);
  // A period that starts after the creation does not count it.
  auto later = collect_ok(request(kStart + hours(3), kStart + hours(21)));
  EXPECT_EQ(later.changes.discovered, 0);
  EXPECT_EQ(later.changes.created, 0);
  EXPECT_EQ(later.changes.updated, 1);
}

TEST_F(HistoryTest, ChangesAreStreamedInOrderWithBeforeAndAfter) {
  auto d = collect_ok(request(kStart, kStart + hours(2) + minutes(30)));
  auto txn = read();
  std::vector<std::string> seen;
  ASSERT_TRUE(for_each_change(txn, d, [&](const ChangeEvent& e) {
                seen.push_back(e.event + ":" + e.token_id + ":" + e.description);
                return true;
              }).ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"token_created:d:svc d"}));
  // Descriptions are as of the end of the period: a's rename at +3h shows in a longer period.
  d = collect_ok(request(kStart, kStart + hours(21)));
  seen.clear();
  std::string before, after, a_description;
  auto s = for_each_change(txn, d, [&](const ChangeEvent& e) {
    if (e.token_id == "a") a_description = e.description;
    seen.push_back(e.event + ":" + e.token_id);
    if (e.event == "token_updated") {
      before = e.before;
      after = e.after;
    }
    return true;
  });
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"token_created:d", "token_updated:a", "token_revoked:c",
                                            "token_removed:b"}));
  EXPECT_EQ(a_description, "svc a renamed");
  EXPECT_NE(before.find("svc a"), std::string::npos);
  EXPECT_NE(after.find("svc a renamed"), std::string::npos);
}

TEST_F(HistoryTest, SeriesFollowsTheStatuses) {
  auto r = request(kStart, kStart + hours(20));
  r.samples = 5;  // 0, 5h, 10h, 15h, 20h
  auto d = collect_ok(r);
  ASSERT_EQ(d.series.size(), 5u);
  EXPECT_EQ(d.series[0].at, kStart);
  EXPECT_EQ(d.series[0].tokens[0], 3);
  EXPECT_EQ(d.series[1].tokens[0], 3);  // a, b, d active; c revoked
  EXPECT_EQ(d.series[1].tokens[2], 1);
  EXPECT_EQ(d.series[4].tokens[0], 2);
  EXPECT_EQ(d.series[4].tokens[3], 1);
}

TEST_F(HistoryTest, ClusterFilterAndUnknownCluster) {
  std::vector<Token> other{make_token("x", "other")};
  poll_at(kStart + hours(22), &other, "staging");
  auto r = request(kStart, kStart + hours(22));
  auto all = collect_ok(r);
  EXPECT_EQ(all.clusters, (std::vector<std::string>{"prod", "staging"}));
  EXPECT_EQ(tokens_of(all.inventory).size(), 5u);
  r.cluster = "staging";
  auto one = collect_ok(r);
  EXPECT_EQ(one.clusters, (std::vector<std::string>{"staging"}));
  ASSERT_EQ(tokens_of(one.inventory).size(), 1u);
  EXPECT_EQ(one.changes.discovered, 1);
  r.cluster = "nope";
  auto txn = read();
  auto bad = collect(txn, r, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.error().message.find("nope"), std::string::npos);
}

TEST_F(HistoryTest, PeriodEndingBeforeItStartsIsRefused) {
  auto txn = read();
  auto d = collect(txn, request(kStart + hours(2), kStart), {});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(HistoryTest, ComplianceFigures) {
  // Four violations of "no-write-star": resolved after 1 h (compliant) and 3 h (revoked), one
  // exempted (not a remediation), one still open; one of "max-life" opened before the period.
  violation("a", "no-write-star", kStart + hours(1), kStart + hours(2), "compliant");
  violation("b", "no-write-star", kStart + hours(1), kStart + hours(4), "revoked");
  violation("c", "no-write-star", kStart + hours(2), kStart + hours(3), "exempted");
  violation("d", "no-write-star", kStart + hours(3), std::nullopt);
  violation("a", "max-life", kStart - hours(10), std::nullopt);
  append(EventKind::kActionPlanned, "prod", "b", R"({"policy":"no-write-star"})",
         kStart + hours(3));
  append(EventKind::kActionFailed, "prod", "b", R"({"final":false,"policy":"no-write-star"})",
         kStart + hours(3));
  append(EventKind::kActionSucceeded, "prod", "b", R"({"policy":"no-write-star"})",
         kStart + hours(4));
  append(EventKind::kEnforcementHalted, "prod", "", R"({"planned":7,"policies":{"max-life":7}})",
         kStart + hours(5));
  auto d = collect_ok(request(kStart, kStart + hours(21)));
  ASSERT_EQ(d.policies.size(), 2u);
  const PolicyCompliance* nws = nullptr;
  const PolicyCompliance* ml = nullptr;
  for (const auto& p : d.policies) {
    if (p.policy == "no-write-star") nws = &p;
    if (p.policy == "max-life") ml = &p;
  }
  ASSERT_NE(nws, nullptr);
  ASSERT_NE(ml, nullptr);
  EXPECT_EQ(nws->opened, 4);
  EXPECT_EQ(nws->resolved, 3);
  EXPECT_EQ(nws->open_at_end, 1);
  EXPECT_EQ(nws->resolutions.at("exempted"), 1);
  EXPECT_EQ(nws->time_to_remediate.count, 2);
  EXPECT_DOUBLE_EQ(*nws->time_to_remediate.median_seconds, 2 * 3600.0);  // (1 h + 3 h) / 2
  EXPECT_DOUBLE_EQ(*nws->time_to_remediate.max_seconds, 3 * 3600.0);
  EXPECT_EQ(nws->actions_planned, 1);
  EXPECT_EQ(nws->actions_failed, 0);  // a retried failure is not a failed action
  EXPECT_EQ(nws->actions_succeeded, 1);
  EXPECT_EQ(ml->opened, 0);  // opened before the period
  EXPECT_EQ(ml->open_at_end, 1);
  EXPECT_EQ(ml->actions_halted, 7);
  ASSERT_EQ(d.halts.size(), 1u);
  EXPECT_EQ(d.halts[0].planned, 7);
  // Open violations over time: 1 (max-life) before +1h, 3 at +1h …
  auto r = request(kStart, kStart + hours(4));
  r.samples = 5;  // 0, 1h, 2h, 3h, 4h
  auto s = collect_ok(r);
  std::vector<std::int64_t> open;
  for (const auto& p : s.series) open.push_back(p.open_violations);
  EXPECT_EQ(open, (std::vector<std::int64_t>{1, 3, 3, 3, 2}));
}

TEST_F(HistoryTest, IntegrityOfAnIntactAndATamperedChain) {
  auto d = collect_ok(request(kStart, kStart + hours(21)));
  EXPECT_TRUE(d.integrity.ok);
  EXPECT_EQ(d.integrity.head_seq, count("SELECT max(seq) FROM audit_log"));
  EXPECT_EQ(d.integrity.head_hash, text("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1"));
  exec(storage::testing::kDropTriggers);
  exec("UPDATE audit_events SET detail = '{\"x\":1}' WHERE seq = 3");
  auto t = collect_ok(request(kStart, kStart + hours(21)));
  EXPECT_FALSE(t.integrity.ok);
  EXPECT_EQ(t.integrity.first_bad_seq, 3);
  EXPECT_FALSE(t.integrity.problem.empty());
  // Left running in the background, the check gives the same answer when a renderer asks.
  auto r = request(kStart, kStart + hours(21));
  r.integrity_in_background = true;
  auto b = collect_ok(r);
  auto txn = read();
  auto g = integrity_of(txn, b);
  ASSERT_TRUE(g.ok());
  EXPECT_FALSE(g->ok);
  EXPECT_EQ(g->first_bad_seq, 3);
  EXPECT_NE(render(b, Format::kJson).find("\"first_bad_seq\":3"), std::string::npos);
  const std::string md = render(t, Format::kMarkdown);
  EXPECT_NE(md.find("seq 3"), std::string::npos) << md.substr(md.find("ntegrity"), 600);
}

TEST_F(HistoryTest, JsonIsOneDocumentWithTheFigures) {
  auto d = collect_ok(request(kStart, kStart + hours(21)));
  const auto j = nlohmann::json::parse(render(d, Format::kJson));
  EXPECT_EQ(j["schema_version"], kSchemaVersion);
  EXPECT_EQ(j["$schema"], kSchemaId);
  EXPECT_EQ(j["coverage"][0]["polls"]["ok"], 7);
  EXPECT_EQ(j["coverage"][0]["gaps"].size(), 1u);
  EXPECT_EQ(j["inventory"]["tokens"].size(), 4u);
  EXPECT_EQ(j["changes"]["counts"]["removed"], 1);
  EXPECT_EQ(j["changes"]["events"].size(), 4u);
  EXPECT_EQ(j["integrity"]["ok"], true);
  EXPECT_TRUE(j["integrity"]["first_bad_seq"].is_null());
}

// Owners: a and b are team "data" (owners ana and bo), c is team "ops" (a rule without an
// owner), d has no row (unowned). Violations as in ComplianceFigures, and a halt.
class OwnersTest : public HistoryTest {
 protected:
  void SetUp() override {
    HistoryTest::SetUp();
    own("a", "'ana'", "'data'");
    own("b", "'bo'", "'data'");
    own("c", "NULL", "'ops'");
    violation("a", "no-write-star", kStart + hours(1), kStart + hours(2), "compliant");
    violation("b", "no-write-star", kStart + hours(1), kStart + hours(4), "revoked");
    violation("c", "no-write-star", kStart + hours(2), kStart + hours(3), "exempted");
    violation("d", "no-write-star", kStart + hours(3), std::nullopt);
    violation("a", "max-life", kStart - hours(10), std::nullopt);
    append(EventKind::kActionPlanned, "prod", "b", R"({"policy":"no-write-star"})",
           kStart + hours(3));
    append(EventKind::kActionPlanned, "prod", "d", R"({"policy":"no-write-star"})",
           kStart + hours(4));
    append(EventKind::kEnforcementHalted, "prod", "", R"({"planned":7,"policies":{"max-life":7}})",
           kStart + hours(5));
  }
  void own(const std::string& token, const std::string& owner, const std::string& team) {
    exec("INSERT INTO token_owners VALUES ('prod', '" + token + "', " + owner + ", " + team +
         ", NULL, 'rule', '2026-01-01T21:00:00.000Z')");
  }
  Request team_request(const std::string& team, const std::string& owner = "") {
    auto r = request(kStart, kStart + hours(21));
    r.team = team;
    r.owner = owner;
    return r;
  }
  static const PolicyCompliance& policy_of(const ReportData& d, const std::string& name) {
    for (const auto& p : d.policies) {
      if (p.policy == name) return p;
    }
    static const PolicyCompliance none;
    ADD_FAILURE() << "no policy " << name;
    return none;
  }
  static std::vector<std::string> ids(const InventorySection& inv) {
    std::vector<std::string> out;
    for (const auto& t : tokens_of(inv)) out.push_back(t.row.token.id);
    return out;
  }
};

TEST_F(OwnersTest, SectionSumsPerTeamAndOwner) {
  auto d = collect_ok(request(kStart, kStart + hours(21)));
  ASSERT_TRUE(d.owners.recorded);
  ASSERT_EQ(d.owners.by_team.size(), 3u);
  const auto& data = d.owners.by_team[0];
  EXPECT_EQ(team_label(data), "data");
  EXPECT_EQ(data.tokens, 1);  // a (b was removed at +20h)
  EXPECT_EQ(data.opened, 2);
  EXPECT_EQ(data.open_at_end, 1);  // a's max-life, opened before the period
  EXPECT_EQ(data.time_to_remediate.count, 2);
  EXPECT_DOUBLE_EQ(*data.time_to_remediate.median_seconds, 2 * 3600.0);
  EXPECT_DOUBLE_EQ(*data.time_to_remediate.max_seconds, 3 * 3600.0);
  const auto& ops = d.owners.by_team[1];
  EXPECT_EQ(team_label(ops), "ops");
  EXPECT_EQ(ops.tokens, 0);  // c is revoked
  EXPECT_EQ(ops.opened, 1);
  EXPECT_EQ(ops.open_at_end, 0);
  EXPECT_EQ(ops.time_to_remediate.count, 0);  // exempted is not a remediation
  EXPECT_FALSE(ops.time_to_remediate.median_seconds);
  const auto& unowned = d.owners.by_team[2];
  EXPECT_TRUE(unowned.unowned);
  EXPECT_EQ(team_label(unowned), "(unowned)");
  EXPECT_EQ(unowned.tokens, 1);  // d
  EXPECT_EQ(unowned.opened, 1);
  EXPECT_EQ(unowned.open_at_end, 1);
  ASSERT_EQ(d.owners.by_owner.size(), 3u);  // owned tokens only
  EXPECT_EQ(owner_label(d.owners.by_owner[0]), "ana");
  EXPECT_EQ(d.owners.by_owner[0].tokens, 1);
  EXPECT_EQ(d.owners.by_owner[0].open_at_end, 1);
  EXPECT_DOUBLE_EQ(*d.owners.by_owner[0].time_to_remediate.max_seconds, 3600.0);
  EXPECT_EQ(owner_label(d.owners.by_owner[1]), "bo");
  EXPECT_EQ(d.owners.by_owner[1].opened, 1);
  EXPECT_DOUBLE_EQ(*d.owners.by_owner[1].time_to_remediate.median_seconds, 3 * 3600.0);
  EXPECT_EQ(team_label(d.owners.by_owner[2]), "ops");
  EXPECT_EQ(owner_label(d.owners.by_owner[2]), "(no owner)");
  // The per-team figures add up to the per-policy ones.
  std::int64_t opened = 0, open = 0;
  for (const auto& p : d.policies) {
    opened += p.opened;
    open += p.open_at_end;
  }
  EXPECT_EQ(opened, 4);
  EXPECT_EQ(open, 2);
}

TEST_F(OwnersTest, TeamReportKeepsOnlyTheTeamsTokensInEverySection) {
  auto d = collect_ok(team_request("data"));
  EXPECT_EQ(ids(d.inventory), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(d.inventory.token_count, 2);
  EXPECT_EQ(d.inventory.by_status, (std::array<std::int64_t, 4>{1, 0, 0, 1}));
  EXPECT_EQ(d.inventory.writes, 0);  // b (write *) is removed
  EXPECT_EQ(d.changes.discovered, 2);
  EXPECT_EQ(d.changes.created, 0);  // d is not the team's
  EXPECT_EQ(d.changes.updated, 1);
  EXPECT_EQ(d.changes.revoked, 0);  // c is not the team's
  EXPECT_EQ(d.changes.removed, 1);
  std::vector<std::string> changed;
  auto txn = read();
  ASSERT_TRUE(for_each_change(txn, d, [&](const ChangeEvent& e) {
                changed.push_back(e.token_id + ":" + e.event);
                return true;
              }).ok());
  EXPECT_EQ(changed, (std::vector<std::string>{"a:token_updated", "b:token_removed"}));
  const auto& nws = policy_of(d, "no-write-star");
  EXPECT_EQ(nws.opened, 2);
  EXPECT_EQ(nws.resolved, 2);
  EXPECT_EQ(nws.open_at_end, 0);
  EXPECT_EQ(nws.actions_planned, 1);  // b's, not d's
  EXPECT_DOUBLE_EQ(*nws.time_to_remediate.median_seconds, 2 * 3600.0);
  const auto& ml = policy_of(d, "max-life");
  EXPECT_EQ(ml.open_at_end, 1);
  EXPECT_EQ(ml.actions_halted, 0);  // a cluster's halt is not the team's
  ASSERT_EQ(d.halts.size(), 1u);    // but it is listed: the team has tokens in prod
  // The series counts the team's tokens and violations only.
  EXPECT_EQ(d.series.back().tokens, (std::array<std::int64_t, 4>{1, 0, 0, 1}));
  EXPECT_EQ(d.series.back().open_violations, 1);
  EXPECT_EQ(d.series.front().tokens, (std::array<std::int64_t, 4>{2, 0, 0, 0}));
  ASSERT_EQ(d.owners.by_team.size(), 1u);
  EXPECT_EQ(team_label(d.owners.by_team[0]), "data");
  EXPECT_EQ(d.owners.by_owner.size(), 2u);
}

TEST_F(OwnersTest, OwnerAndTeamFiltersBothHold) {
  auto ana = collect_ok(team_request("", "ana"));
  EXPECT_EQ(ids(ana.inventory), (std::vector<std::string>{"a"}));
  EXPECT_EQ(policy_of(ana, "no-write-star").opened, 1);
  auto bo = collect_ok(team_request("data", "bo"));
  EXPECT_EQ(ids(bo.inventory), (std::vector<std::string>{"b"}));
  EXPECT_EQ(bo.changes.removed, 1);
  EXPECT_EQ(bo.changes.updated, 0);
  auto ops = collect_ok(team_request("ops"));
  EXPECT_EQ(ids(ops.inventory), (std::vector<std::string>{"c"}));
  EXPECT_EQ(ops.changes.revoked, 1);
  for (auto [team, owner] :
       {std::pair{"ops", "ana"}, std::pair{"nope", ""}, std::pair{"Data", ""}}) {
    auto txn = read();
    auto bad = collect(txn, team_request(team, owner), {});
    ASSERT_FALSE(bad.ok()) << team << "/" << owner;
    EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(bad.error().message.find(std::string("team \"") + team), std::string::npos)
        << bad.error().message;
  }
}

TEST_F(OwnersTest, EveryFormatSaysWhoseReportItIsAndNamesNoOtherToken) {
  auto d = collect_ok(team_request("data"));
  const auto j = nlohmann::json::parse(render(d, Format::kJson));
  EXPECT_EQ(j["owner_filter"], (nlohmann::json{{"team", "data"}, {"owner", nullptr}}));
  EXPECT_EQ(j["owners"]["by_team"].size(), 1u);
  EXPECT_EQ(j["owners"]["by_team"][0]["violations"]["opened"], 2);
  const std::string md = render(d, Format::kMarkdown);
  EXPECT_NE(md.find("only those of team \"data\""), std::string::npos);
  const std::string html = render(d, Format::kHtml);
  EXPECT_NE(html.find("Tokens of team &quot;data&quot; only"), std::string::npos);
  const std::string csv = render(d, Format::kCsv);
  EXPECT_NE(csv.find("team_filter,data\r\n"), std::string::npos);
  for (const std::string* out : {&md, &html, &csv}) {
    EXPECT_EQ(out->find("svc c"), std::string::npos);
    EXPECT_EQ(out->find("svc d"), std::string::npos);
    EXPECT_NE(out->find("svc a renamed"), std::string::npos);
  }
  const auto all = collect_ok(request(kStart, kStart + hours(21)));
  EXPECT_TRUE(nlohmann::json::parse(render(all, Format::kJson))["owner_filter"].is_null());
  EXPECT_NE(render(all, Format::kHtml).find("open violations per team"), std::string::npos);
}

TEST_F(OwnersTest, ADatabaseBeforeOwnersHasNoOwnersSection) {
  exec("DROP VIEW token_inventory");
  exec("DROP TABLE token_owners");
  auto d = collect_ok(request(kStart, kStart + hours(21)));
  EXPECT_FALSE(d.owners.recorded);
  EXPECT_TRUE(d.owners.by_team.empty());
  EXPECT_EQ(policy_of(d, "no-write-star").opened, 4);
  auto txn = read();
  auto bad = collect(txn, team_request("data"), {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

// Hostile descriptions: markup, quotes, ANSI escapes, newlines, formula starts, invalid UTF-8.
class HostileTest : public ReportTest {
 protected:
  void SetUp() override {
    ReportTest::SetUp();
    std::vector<Token> t{
        make_token("h1", "<script>alert(1)</script>\"'&"),
        make_token("h2", "=HYPERLINK(\"http://evil\")"),
        make_token("h3", "line1\nline2\x1b[31mred\r"),
        make_token("h4", std::string("bad \xff\xfe utf8 | *x* [l](http://e)")),
        make_token("h5", std::string(5000, 'L')),
    };
    poll_at(kStart, &t);
    // Owners as hostile as the descriptions (the rules' named groups capture description text).
    exec(
        "INSERT INTO token_owners VALUES ('prod', 'h1', '=HYPERLINK(\"http://evil\")', "
        "'<script>alert(1)</script>|*x*', NULL, 'r', 'x'), ('prod', 'h3', 'line1' || char(10) || "
        "'line2' || char(27) || '[31m', '[l](http://e)', NULL, 'r', 'x')");
    data_ = collect_ok(request(kStart, kStart + hours(1)));
  }
  ReportData data_;
};

TEST_F(HostileTest, HtmlEscapesEverything) {
  const std::string h = render(data_, Format::kHtml);
  EXPECT_EQ(h.find("<script"), std::string::npos);
  EXPECT_NE(h.find("&lt;script&gt;"), std::string::npos);
  EXPECT_EQ(h.find('\x1b'), std::string::npos);
  EXPECT_EQ(h.find("\xff"), std::string::npos);
  EXPECT_EQ(h.find(std::string(1000, 'L')), std::string::npos);  // long text is cut
  EXPECT_EQ(h.find("href=\"http"), std::string::npos);
  EXPECT_EQ(h.find("src="), std::string::npos);
  EXPECT_NE(h.find("Content-Security-Policy"), std::string::npos);
}

// Every hostile row is in the report, its description escaped in its own cell (not dropped,
// not cut short beyond the documented limit of 300 bytes).
TEST_F(HostileTest, HtmlRendersEveryHostileRowEscaped) {
  const std::string h = render(data_, Format::kHtml);
  auto row = [](const std::string& id, const std::string& description) {
    return "<td class=\"id\">" + id + "</td><td class=\"wrap\">" + description + "</td>";
  };
  EXPECT_NE(h.find(row("h1", "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;")),
            std::string::npos);
  EXPECT_NE(h.find(row("h2", "=HYPERLINK(&quot;http://evil&quot;)")), std::string::npos);
  EXPECT_NE(h.find(row("h3", "line1\\nline2\\x1b[31mred\\r")), std::string::npos);
  EXPECT_NE(h.find(row("h4", "bad \uFFFD\uFFFD utf8 | *x* [l](http://e)")), std::string::npos);
  EXPECT_NE(h.find(row("h5", std::string(300, 'L') + "...")), std::string::npos);
}

TEST_F(HostileTest, OwnerNamesAreEscapedInEveryFormat) {
  const std::string h = render(data_, Format::kHtml);
  EXPECT_NE(h.find("<td>&lt;script&gt;alert(1)&lt;/script&gt;|*x*</td>"), std::string::npos);
  EXPECT_NE(h.find("<td>=HYPERLINK(&quot;http://evil&quot;)</td>"), std::string::npos);
  EXPECT_NE(h.find("<td>line1\\nline2\\x1b[31m</td>"), std::string::npos);
  const std::string md = render(data_, Format::kMarkdown);
  EXPECT_NE(md.find("| &lt;script&gt;alert(1)&lt;/script&gt;\\|\\*x\\* | 1 |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| \\[l\\](http://e) | line1\\\\nline2\\\\x1b\\[31m |"), std::string::npos);
  const std::string csv = render(data_, Format::kCsv);
  EXPECT_NE(csv.find("\r\n<script>alert(1)</script>|*x*,\"'=HYPERLINK(\"\"http://evil\"\")\""),
            std::string::npos)
      << csv;
  const auto j = nlohmann::json::parse(render(data_, Format::kJson));
  EXPECT_EQ(j["owners"]["by_owner"][1]["owner"], "line1\nline2\x1b[31m");
}

TEST_F(HostileTest, MarkdownRendersEveryHostileRowEscaped) {
  const std::string md = render(data_, Format::kMarkdown);
  auto row = [](const std::string& id, const std::string& description) {
    return "| " + id + " | " + description + " | ";
  };
  EXPECT_NE(md.find(row("h1", "&lt;script&gt;alert(1)&lt;/script&gt;\"'&amp;")), std::string::npos);
  EXPECT_NE(md.find(row("h2", "=HYPERLINK(\"http://evil\")")), std::string::npos);
  EXPECT_NE(md.find(row("h3", "line1\\\\nline2\\\\x1b\\[31mred\\\\r")), std::string::npos);
  EXPECT_NE(md.find(row("h4", "bad \uFFFD\uFFFD utf8 \\| \\*x\\* \\[l\\](http://e)")),
            std::string::npos);
  EXPECT_NE(md.find(row("h5", std::string(300, 'L') + "...")), std::string::npos);
}

TEST_F(HostileTest, MarkdownCannotBreakOutOfATableCell) {
  const std::string md = render(data_, Format::kMarkdown);
  EXPECT_EQ(md.find("<script"), std::string::npos);
  EXPECT_EQ(md.find('\x1b'), std::string::npos);
  EXPECT_EQ(md.find("\xff"), std::string::npos);
  EXPECT_NE(md.find("\\| \\*x\\* \\[l\\](http://e)"), std::string::npos);
  EXPECT_EQ(md.find("line1\nline2"), std::string::npos);
}

TEST_F(HostileTest, CsvQuotesAndGuardsFormulas) {
  const std::string csv = render(data_, Format::kCsv);
  EXPECT_NE(csv.find("\"'=HYPERLINK(\"\"http://evil\"\")\""), std::string::npos);
  EXPECT_NE(csv.find("\"<script>alert(1)</script>\"\"'&\""), std::string::npos);
  EXPECT_NE(csv.find("\"line1\nline2"), std::string::npos);  // kept, inside quotes
  EXPECT_EQ(csv.find("\xff"), std::string::npos);            // replaced: valid UTF-8
  EXPECT_EQ(csv.substr(0, 8), "section,");
  EXPECT_NE(csv.find("\r\n\r\nsection,inventory"), std::string::npos);
}

TEST_F(HostileTest, JsonKeepsTheTextAsValidUtf8) {
  const auto j = nlohmann::json::parse(render(data_, Format::kJson));
  bool found = false;
  for (const auto& t : j["inventory"]["tokens"]) {
    if (t["token_id"] == "h1") {
      EXPECT_EQ(t["description"], "<script>alert(1)</script>\"'&");
      found = true;
    }
    if (t["token_id"] == "h3") {
      EXPECT_EQ(t["description"], "line1\nline2\x1b[31mred\r");
    }
    if (t["token_id"] == "h5") {
      EXPECT_EQ(t["description"].get<std::string>().size(), 5000u);
    }
  }
  EXPECT_TRUE(found);
}

// A fixed key, so that the golden files' key id and signature do not change.
constexpr const char* kGoldenKey =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIB93fbzeNBHpxJcwjiW9xkiv5bnt6rgeLbctgbJEus9A\n"
    "-----END PRIVATE KEY-----\n";

// Golden files: every format of two small reports, compared byte for byte with
// tests/unit/report/golden/ (output formats are contracts; a change to the bytes has to show in
// the diff of those files). TW_UPDATE_GOLDEN=1 rewrites them from the current renderers.
std::string golden_path(const std::string& name) {
  return std::string(TW_REPORT_GOLDEN_DIR) + "/" + name;
}

void expect_golden(const std::string& name, const std::string& actual) {
  const std::string path = golden_path(name);
  if (std::getenv("TW_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path, std::ios::binary) << actual;
    return;
  }
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << "missing golden file " << path << " (TW_UPDATE_GOLDEN=1 writes it)";
  std::stringstream expected;
  expected << in.rdbuf();
  EXPECT_EQ(expected.str(), actual) << "differs from " << path;
}

void expect_goldens(const std::string& stem, const std::string& html, const std::string& md,
                    const std::string& csv, const std::string& json) {
  expect_golden(stem + ".html", html);
  expect_golden(stem + ".md", md);
  expect_golden(stem + ".csv", csv);
  expect_golden(stem + ".json", json);
}

// The history above with violations, actions, a halt, a time anomaly and a configuration
// (policies and exemptions); lists cut at 3 rows in HTML and Markdown.
TEST_F(HistoryTest, GoldenReportInEveryFormat) {
  violation("a", "no-write-star", kStart + hours(1), kStart + hours(2), "compliant");
  violation("b", "no-write-star", kStart + hours(1), kStart + hours(4), "revoked");
  violation("c", "no-write-star", kStart + hours(2), kStart + hours(3), "exempted");
  violation("d", "no-write-star", kStart + hours(3), std::nullopt);
  violation("a", "max-life", kStart - hours(10), std::nullopt);
  append(EventKind::kActionPlanned, "prod", "b", R"({"policy":"no-write-star"})",
         kStart + hours(3));
  append(EventKind::kActionFailed, "prod", "b", R"({"final":true,"policy":"no-write-star"})",
         kStart + hours(3));
  append(EventKind::kEnforcementHalted, "prod", "", R"({"planned":7,"policies":{"max-life":7}})",
         kStart + hours(5));
  {
    const auto ev = storage::anomaly_event(
        "prod", TimeAnomaly{"d", kCreatedInFuture, "2027-01-01T00:00:00.000Z"}, kStart + hours(2));
    append(ev.kind, ev.cluster, ev.token_id, ev.detail, kStart + hours(2));
  }
  // Owners: a and b team "data" (ana, bo), c team "ops" without an owner, d unowned.
  exec(
      "INSERT INTO token_owners VALUES ('prod', 'a', 'ana', 'data', NULL, 'r', 'x'), ('prod', "
      "'b', 'bo', 'data', NULL, 'r', 'x'), ('prod', 'c', NULL, 'ops', NULL, 'r', 'x')");
  auto key = ed25519::PrivateKey::from_pem(kGoldenKey, "golden");
  ASSERT_TRUE(key.ok());
  {
    auto txn = store_->begin();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(storage::sign_checkpoint(*txn, *key, "golden-host", kStart + hours(6)).ok());
    ASSERT_TRUE(txn->commit().ok());
  }
  Context ctx;
  ctx.public_keys.push_back(key->public_key());
  ctx.from_config = true;
  ctx.config_path = "/etc/tokenwarden/config.toml";
  ctx.clusters["prod"].poll_interval = hours(1);
  policy::PolicySpec nws;
  nws.name = "no-write-star";
  nws.kind = policy::Kind::kAllDatabasesGrant;
  nws.severity = policy::Severity::kCritical;
  nws.action = policy::Action::kRevoke;
  nws.mode = policy::Mode::kEnforce;
  ctx.policies.push_back(nws);
  ctx.exemptions.push_back({"no-write-star", "c", "", "prod", "legacy", kStart + hours(24)});
  ctx.exemptions.push_back({"*", "", "^svc d$", "", "migration", kStart + hours(48)});
  auto r = request(kStart, kStart + hours(21));
  r.list_limit = 3;
  const auto d = collect_ok(r, ctx);
  expect_goldens("history", render(d, Format::kHtml), render(d, Format::kMarkdown),
                 render(d, Format::kCsv), render(d, Format::kJson));
}

// Hostile text in every format, and a broken hash chain.
TEST_F(HostileTest, GoldenReportInEveryFormat) {
  exec(storage::testing::kDropTriggers);
  exec("UPDATE audit_events SET detail = '{\"x\":1}' WHERE seq = 3");
  // A checkpoint whose every field is hostile text (no key given: not checked).
  append(EventKind::kCheckpointSigned, "", "",
         R"({"head_seq":3,"head_hash":"<i>h</i>","signed_at":"2026\n|x|","key_id":"<b>k</b>",)"
         R"("host":"<script>x</script>\r\u001b[31m,=cmd|'","signature":"*"})",
         kStart + hours(1));
  const auto d = collect_ok(request(kStart, kStart + hours(1)));
  expect_goldens("hostile", render(d, Format::kHtml), render(d, Format::kMarkdown),
                 render(d, Format::kCsv), render(d, Format::kJson));
}

TEST(TextUtil, HumanDurationsAndNumbers) {
  EXPECT_EQ(human_duration(45.0), "45s");
  EXPECT_EQ(human_duration(125.0), "2m 5s");
  EXPECT_EQ(human_duration(3 * 3600.0 + 60), "3h 1m");
  EXPECT_EQ(human_duration(3 * 86400.0 + 4 * 3600), "3d 4h");
  EXPECT_EQ(human_duration(-1.0), "—");
  EXPECT_EQ(thousands(1234567), "1,234,567");
  EXPECT_EQ(thousands(-1000), "-1,000");
  EXPECT_EQ(thousands(12), "12");
  EXPECT_EQ(short_time(ts("2026-11-01T12:34:56Z")), "2026-11-01 12:34 UTC");
  EXPECT_EQ(printable("a\nb\x1b", 300), "a\\nb\\x1b");
  EXPECT_DOUBLE_EQ(seconds(std::chrono::milliseconds(1500)), 1.5);
}

TEST(Formats, ParseFormat) {
  EXPECT_EQ(parse_format("html"), Format::kHtml);
  EXPECT_EQ(parse_format("md"), Format::kMarkdown);
  EXPECT_EQ(parse_format("markdown"), Format::kMarkdown);
  EXPECT_EQ(parse_format("csv"), Format::kCsv);
  EXPECT_EQ(parse_format("json"), Format::kJson);
  EXPECT_FALSE(parse_format("pdf").has_value());
}

}  // namespace
}  // namespace tw::report

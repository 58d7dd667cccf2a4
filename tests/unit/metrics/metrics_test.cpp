// Tests for metrics/metrics.h: every SPEC §5 family is exposed with HELP and TYPE, and each
// method moves exactly the series it should. Values are read back through a small parser of the
// text exposition format (name{labels} value), never by substring matching, so a test fails on
// a wrong value, a wrong label set or a malformed line alike.

#include "metrics/metrics.h"

#include <gtest/gtest.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdint>
#include <functional>
#include <limits>
#include <locale>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/audit_event.h"
#include "tests/unit/core/test_support.h"

namespace tw::metrics {
namespace {

using tw::testing::ts;
using Labels = std::map<std::string, std::string>;
using Open = std::map<std::pair<std::string, std::string>, std::int64_t>;

// --- a parser for the text exposition format
// ------------------------------------------------------

struct Sample {
  std::string name;
  Labels labels;
  double value = 0;
};

struct Exposition {
  std::map<std::string, std::string> help;  // family -> help text
  std::map<std::string, std::string> type;  // family -> counter, gauge, histogram, …
  std::vector<Sample> samples;
  std::vector<std::string> errors;  // lines that do not follow the format

  // The value of the sample with exactly these labels; nullopt when there is none.
  std::optional<double> value(std::string_view name, const Labels& labels = {}) const {
    std::optional<double> found;
    for (const auto& s : samples) {
      if (s.name == name && s.labels == labels) {
        if (found) ADD_FAILURE() << "duplicate sample " << name;
        found = s.value;
      }
    }
    return found;
  }
  // The samples of `name` whose labels include `subset`.
  std::vector<Sample> matching(std::string_view name, const Labels& subset = {}) const {
    std::vector<Sample> out;
    for (const auto& s : samples) {
      if (s.name != name) continue;
      bool all = true;
      for (const auto& [k, v] : subset) {
        auto it = s.labels.find(k);
        all = all && it != s.labels.end() && it->second == v;
      }
      if (all) out.push_back(s);
    }
    return out;
  }
  // A histogram bucket, matched by its numeric upper bound (so "0.25" and "2.5e-01" agree).
  std::optional<double> bucket(std::string_view family, Labels labels, double le) const;
};

std::optional<double> parse_number(std::string_view s) {
  if (s == "+Inf") return std::numeric_limits<double>::infinity();
  if (s == "-Inf") return -std::numeric_limits<double>::infinity();
  if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
  double d = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return d;
}

std::optional<double> Exposition::bucket(std::string_view family, Labels labels, double le) const {
  for (const auto& s : matching(std::string(family) + "_bucket", labels)) {
    auto it = s.labels.find("le");
    if (it == s.labels.end()) continue;
    auto bound = parse_number(it->second);
    if (bound && *bound == le) return s.value;
  }
  return std::nullopt;
}

bool is_name_char(char c, bool first) {
  bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
  return alpha || (!first && c >= '0' && c <= '9');
}

// Parses `name{k="v",…} value [timestamp]`; false on anything else.
bool parse_sample(std::string_view line, Sample& out) {
  std::size_t i = 0;
  while (i < line.size() && is_name_char(line[i], i == 0)) ++i;
  if (i == 0) return false;
  out.name = std::string(line.substr(0, i));
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      std::size_t k = i;
      while (i < line.size() && is_name_char(line[i], i == k)) ++i;
      if (i == k || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') return false;
      std::string key(line.substr(k, i - k));
      i += 2;
      std::string value;
      for (;; ++i) {
        if (i >= line.size()) return false;
        char c = line[i];
        if (c == '"') break;
        if (c == '\\') {
          if (++i >= line.size()) return false;
          switch (line[i]) {
            case '\\':
              value += '\\';
              break;
            case '"':
              value += '"';
              break;
            case 'n':
              value += '\n';
              break;
            default:
              return false;  // the format knows only these three escapes
          }
        } else {
          value += c;
        }
      }
      ++i;  // closing quote
      if (!out.labels.emplace(std::move(key), std::move(value)).second) return false;
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) return false;
    ++i;  // '}'
  }
  if (i >= line.size() || line[i] != ' ') return false;
  std::string_view rest = line.substr(i + 1);
  auto space = rest.find(' ');
  auto v = parse_number(rest.substr(0, space));
  if (!v) return false;
  out.value = *v;
  if (space != std::string_view::npos) {
    std::string_view stamp = rest.substr(space + 1);
    std::int64_t t = 0;
    auto [end, ec] = std::from_chars(stamp.data(), stamp.data() + stamp.size(), t);
    if (ec != std::errc() || end != stamp.data() + stamp.size()) return false;
  }
  return true;
}

Exposition parse(const std::string& text) {
  Exposition e;
  if (!text.empty() && text.back() != '\n') e.errors.push_back("no final newline");
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::string_view l = line;
    if (l.starts_with("# HELP ") || l.starts_with("# TYPE ")) {
      std::string_view rest = l.substr(7);
      auto space = rest.find(' ');
      if (space == std::string_view::npos) {
        e.errors.push_back(line);
        continue;
      }
      auto& map = l[2] == 'H' ? e.help : e.type;
      if (!map.emplace(std::string(rest.substr(0, space)), std::string(rest.substr(space + 1)))
               .second) {
        e.errors.push_back("repeated: " + line);
      }
      continue;
    }
    if (l.starts_with("#")) continue;
    Sample s;
    if (parse_sample(l, s)) {
      e.samples.push_back(std::move(s));
    } else {
      e.errors.push_back(line);
    }
  }
  return e;
}

std::string all(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += "\n  " + s;
  return out;
}

Exposition render(const Metrics& m) {
  std::string text = m.render();
  Exposition e = parse(text);
  EXPECT_TRUE(e.errors.empty()) << "malformed exposition lines:" << all(e.errors) << "\n--- text:\n"
                                << text;
  return e;
}

// 2026-06-01T00:00:00Z as Unix seconds (computed independently of the code under test).
constexpr double kJune1 = 1780272000.0;

// --- the parser itself --------------------------------------------------------------------------

TEST(ExpositionParser, ReadsLabelsEscapesAndSpecialValues) {
  auto e = parse(
      "# HELP x_total Some help\n# TYPE x_total counter\n"
      "x_total{a=\"1\",b=\"q\\\"\\\\\\n\"} 3.5\nx_total 7 1700000000000\ny_bucket{le=\"+Inf\"} "
      "+Inf\n");
  ASSERT_TRUE(e.errors.empty()) << all(e.errors);
  EXPECT_EQ(e.help.at("x_total"), "Some help");
  EXPECT_EQ(e.type.at("x_total"), "counter");
  EXPECT_EQ(e.value("x_total", {{"a", "1"}, {"b", "q\"\\\n"}}), 3.5);
  EXPECT_EQ(e.value("x_total"), 7.0);
  EXPECT_EQ(e.bucket("y", {}, std::numeric_limits<double>::infinity()),
            std::numeric_limits<double>::infinity());
  EXPECT_EQ(e.value("x_total", {{"a", "1"}}), std::nullopt) << "label sets match exactly";
}

TEST(ExpositionParser, RejectsMalformedLines) {
  for (const char* bad : {"x{a=\"1} 1\n", "x{a=1} 1\n", "x 1,5\n", "x{a=\"\\t\"} 1\n", "x\n",
                          "{a=\"b\"} 1\n", "x{a=\"1\",a=\"2\"} 1\n", "x 1"}) {
    EXPECT_FALSE(parse(bad).errors.empty()) << bad;
  }
}

// --- families
// ---------------------------------------------------------------------------------------

// Calls every method once, so that every family has at least one series.
void touch_everything(Metrics& m) {
  m.poll_finished("a", "ok", 0.2, ts("2026-06-01T00:00:00Z"));
  m.inventory(
      "a", InventoryCounts{.active = 5, .without_expiry = 1, .teams = {{"", {.expiring_1d = 1}}}});
  m.violations_open("a", {{{"p1", "critical", ""}, 2}});
  m.violation_opened("a", "p1");
  m.action("a", "p1", "revoke", "succeeded");
  m.enforcement_halted("a", false);
  EventCounts counts{};
  counts[static_cast<std::size_t>(EventKind::kTokenCreated)] = 1;
  m.audit_events(counts);
  m.checkpoint_signed(42, ts("2026-06-01T00:00:00Z"));
  m.exemptions_active({{"p1", 1}});
  m.alerts_sent("webhook", "ok", 1);
  m.config_reload(true, ts("2026-06-01T00:00:00Z"));
  m.export_status("siem", 10, 2, 1.5, true);
  m.export_failed("siem");
  m.export_blocked(false);
}

TEST(Metrics, EveryFamilyHasHelpTypeAndSamples) {
  Metrics m("1.2.3");
  touch_everything(m);
  auto e = render(m);
  const std::vector<std::pair<std::string, std::string>> families = {
      {"tokenwarden_build_info", "gauge"},
      {"tokenwarden_tokens", "gauge"},
      {"tokenwarden_tokens_without_expiry", "gauge"},
      {"tokenwarden_tokens_expiring", "gauge"},
      {"tokenwarden_tokens_never_expiring", "gauge"},
      {"tokenwarden_violations_open", "gauge"},
      {"tokenwarden_violations_opened_total", "counter"},
      {"tokenwarden_actions_total", "counter"},
      {"tokenwarden_enforcement_halted", "gauge"},
      {"tokenwarden_polls_total", "counter"},
      {"tokenwarden_poll_duration_seconds", "histogram"},
      {"tokenwarden_last_successful_poll_timestamp_seconds", "gauge"},
      {"tokenwarden_audit_events_total", "counter"},
      {"tokenwarden_audit_checkpoint_seq", "gauge"},
      {"tokenwarden_audit_checkpoint_timestamp_seconds", "gauge"},
      {"tokenwarden_exemptions_active", "gauge"},
      {"tokenwarden_alerts_sent_total", "counter"},
      {"tokenwarden_config_last_reload_successful", "gauge"},
      {"tokenwarden_config_last_reload_success_timestamp_seconds", "gauge"},
      {"tokenwarden_export_delivered_seq", "gauge"},
      {"tokenwarden_export_lag_events", "gauge"},
      {"tokenwarden_export_lag_seconds", "gauge"},
      {"tokenwarden_export_up", "gauge"},
      {"tokenwarden_export_failures_total", "counter"},
      {"tokenwarden_enforcement_export_blocked", "gauge"},
  };
  for (const auto& [name, type] : families) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(e.type.contains(name));
    EXPECT_EQ(e.type.at(name), type);
    ASSERT_TRUE(e.help.contains(name));
    EXPECT_FALSE(e.help.at(name).empty());
    const std::string sample = type == "histogram" ? name + "_count" : name;
    EXPECT_FALSE(e.matching(sample).empty()) << "no samples";
  }
  EXPECT_EQ(e.type.size(), families.size()) << "no family beyond SPEC §5";
}

TEST(Metrics, LabelNamesFollowTheSpec) {
  Metrics m("1.2.3");
  touch_everything(m);
  auto e = render(m);
  const std::map<std::string, std::set<std::string>> labels = {
      {"tokenwarden_build_info", {"version"}},
      {"tokenwarden_tokens", {"cluster", "status"}},
      {"tokenwarden_tokens_without_expiry", {"cluster"}},
      {"tokenwarden_tokens_expiring", {"cluster", "within"}},
      {"tokenwarden_violations_open", {"cluster", "policy", "severity"}},
      {"tokenwarden_violations_opened_total", {"cluster", "policy"}},
      {"tokenwarden_actions_total", {"cluster", "policy", "action", "result"}},
      {"tokenwarden_enforcement_halted", {"cluster"}},
      {"tokenwarden_polls_total", {"cluster", "outcome"}},
      {"tokenwarden_poll_duration_seconds_count", {"cluster"}},
      {"tokenwarden_last_successful_poll_timestamp_seconds", {"cluster"}},
      {"tokenwarden_audit_events_total", {"event"}},
      {"tokenwarden_exemptions_active", {"policy"}},
      {"tokenwarden_alerts_sent_total", {"receiver", "result"}},
      {"tokenwarden_audit_checkpoint_seq", {}},
      {"tokenwarden_audit_checkpoint_timestamp_seconds", {}},
      {"tokenwarden_config_last_reload_successful", {}},
      {"tokenwarden_config_last_reload_success_timestamp_seconds", {}},
      {"tokenwarden_export_delivered_seq", {"sink"}},
      {"tokenwarden_export_lag_events", {"sink"}},
      {"tokenwarden_export_lag_seconds", {"sink"}},
      {"tokenwarden_export_up", {"sink"}},
      {"tokenwarden_export_failures_total", {"sink"}},
      {"tokenwarden_enforcement_export_blocked", {}},
  };
  for (const auto& [name, names] : labels) {
    SCOPED_TRACE(name);
    auto samples = e.matching(name);
    ASSERT_FALSE(samples.empty());
    for (const auto& s : samples) {
      std::set<std::string> got;
      for (const auto& kv : s.labels) got.insert(kv.first);
      EXPECT_EQ(got, names);
    }
  }
}

TEST(Metrics, FreshRegistryHasBuildInfoAndReloadGaugesOnly) {
  Metrics m("0.9.0-rc1");
  auto e = render(m);
  EXPECT_EQ(e.value("tokenwarden_build_info", {{"version", "0.9.0-rc1"}}), 1.0);
  EXPECT_EQ(e.matching("tokenwarden_build_info").size(), 1u);
  EXPECT_EQ(e.value("tokenwarden_config_last_reload_successful"), 0.0);
  EXPECT_EQ(e.value("tokenwarden_config_last_reload_success_timestamp_seconds"), 0.0);
  EXPECT_TRUE(e.matching("tokenwarden_tokens").empty());
  EXPECT_TRUE(e.matching("tokenwarden_polls_total").empty());
  EXPECT_TRUE(e.matching("tokenwarden_poll_duration_seconds_count").empty());
}

TEST(Metrics, ExportSeriesPerSinkAndTheBlockedGauge) {
  Metrics m("v");
  EXPECT_EQ(render(m).value("tokenwarden_enforcement_export_blocked"), 0.0);
  m.export_status("siem", 40, 0, 0, true);
  auto e = render(m);
  EXPECT_EQ(e.value("tokenwarden_export_failures_total", {{"sink", "siem"}}), 0.0)
      << "the counter exists from the first status";
  m.export_status("siem", 42, 7, 61.5, false);
  m.export_failed("siem");
  m.export_failed("siem");
  m.export_blocked(true);
  e = render(m);
  EXPECT_EQ(e.value("tokenwarden_export_delivered_seq", {{"sink", "siem"}}), 42.0);
  EXPECT_EQ(e.value("tokenwarden_export_lag_events", {{"sink", "siem"}}), 7.0);
  EXPECT_EQ(e.value("tokenwarden_export_lag_seconds", {{"sink", "siem"}}), 61.5);
  EXPECT_EQ(e.value("tokenwarden_export_up", {{"sink", "siem"}}), 0.0);
  EXPECT_EQ(e.value("tokenwarden_export_failures_total", {{"sink", "siem"}}), 2.0);
  EXPECT_EQ(e.value("tokenwarden_enforcement_export_blocked"), 1.0);
}

// --- polls
// --------------------------------------------------------------------------------------------

TEST(Metrics, PollFinishedCountsObservesAndStampsSuccess) {
  Metrics m("v");
  m.poll_finished("a", "ok", 0.003, ts("2026-06-01T00:00:00Z"));
  m.poll_finished("a", "ok", 0.2, ts("2026-06-01T00:01:00.250Z"));
  m.poll_finished("a", "failed", 45.0, std::nullopt);
  m.poll_finished("b", "suspect", 1.0, std::nullopt);
  auto e = render(m);

  EXPECT_EQ(e.value("tokenwarden_polls_total", {{"cluster", "a"}, {"outcome", "ok"}}), 2.0);
  EXPECT_EQ(e.value("tokenwarden_polls_total", {{"cluster", "a"}, {"outcome", "failed"}}), 1.0);
  EXPECT_EQ(e.value("tokenwarden_polls_total", {{"cluster", "b"}, {"outcome", "suspect"}}), 1.0);
  EXPECT_EQ(e.value("tokenwarden_polls_total", {{"cluster", "b"}, {"outcome", "ok"}}),
            std::nullopt);

  const std::string h = "tokenwarden_poll_duration_seconds";
  EXPECT_EQ(e.value(h + "_count", {{"cluster", "a"}}), 3.0);
  EXPECT_DOUBLE_EQ(e.value(h + "_sum", {{"cluster", "a"}}).value_or(-1), 45.203);
  EXPECT_EQ(e.bucket(h, {{"cluster", "a"}}, 0.005), 1.0);
  EXPECT_EQ(e.bucket(h, {{"cluster", "a"}}, 0.1), 1.0);
  EXPECT_EQ(e.bucket(h, {{"cluster", "a"}}, 0.25), 2.0);
  EXPECT_EQ(e.bucket(h, {{"cluster", "a"}}, 30), 2.0);
  EXPECT_EQ(e.bucket(h, {{"cluster", "a"}}, 60), 3.0);
  EXPECT_EQ(e.bucket(h, {{"cluster", "a"}}, std::numeric_limits<double>::infinity()), 3.0);
  EXPECT_EQ(e.value(h + "_count", {{"cluster", "b"}}), 1.0);
  // Buckets from 5 ms to 60 s, plus +Inf.
  EXPECT_EQ(e.matching(h + "_bucket", {{"cluster", "a"}}).size(), 14u);

  const std::string last = "tokenwarden_last_successful_poll_timestamp_seconds";
  EXPECT_DOUBLE_EQ(e.value(last, {{"cluster", "a"}}).value_or(-1), kJune1 + 60.25)
      << "the last success, not the failure after it";
  EXPECT_EQ(e.value(last, {{"cluster", "b"}}), std::nullopt) << "b never succeeded";
}

TEST(Metrics, FailedPollKeepsTheLastSuccessTimestamp) {
  Metrics m("v");
  m.poll_finished("a", "ok", 0.1, ts("2026-06-01T00:00:00Z"));
  m.poll_finished("a", "failed", 0.1, std::nullopt);
  m.poll_finished("a", "suspect", 0.1, std::nullopt);
  auto e = render(m);
  EXPECT_EQ(e.value("tokenwarden_last_successful_poll_timestamp_seconds", {{"cluster", "a"}}),
            kJune1);
}

TEST(Metrics, LastSuccessSeedsTheSeriesFromBeforeARestart) {
  Metrics m("v");
  const std::string last = "tokenwarden_last_successful_poll_timestamp_seconds";
  m.last_success("a", ts("2026-06-01T00:00:00Z"));
  m.last_success("never", std::nullopt);
  auto e = render(m);
  EXPECT_EQ(e.value(last, {{"cluster", "a"}}), kJune1);
  EXPECT_EQ(e.value(last, {{"cluster", "never"}}), 0.0)
      << "the series exists, at 0, for a cluster never polled";
  m.poll_finished("never", "failed", 0.1, std::nullopt);
  m.poll_finished("a", "ok", 0.1, ts("2026-06-01T00:10:00Z"));
  e = render(m);
  EXPECT_EQ(e.value(last, {{"cluster", "never"}}), 0.0);
  EXPECT_EQ(e.value(last, {{"cluster", "a"}}), kJune1 + 600);
}

// --- inventory
// ------------------------------------------------------------------------------------------

TEST(Metrics, InventorySetsGaugesAndOverwrites) {
  Metrics m("v");
  m.inventory("a", InventoryCounts{
                       .active = 10,
                       .expired = 2,
                       .revoked = 3,
                       .removed = 4,
                       .without_expiry = 5,
                       .teams = {{"", {.expiring_1d = 1, .expiring_7d = 6, .expiring_30d = 7}}}});
  auto e = render(m);
  EXPECT_EQ(e.value("tokenwarden_tokens", {{"cluster", "a"}, {"status", "active"}}), 10.0);
  EXPECT_EQ(e.value("tokenwarden_tokens", {{"cluster", "a"}, {"status", "expired"}}), 2.0);
  EXPECT_EQ(e.value("tokenwarden_tokens", {{"cluster", "a"}, {"status", "revoked"}}), 3.0);
  EXPECT_EQ(e.value("tokenwarden_tokens", {{"cluster", "a"}, {"status", "removed"}}), 4.0);
  EXPECT_EQ(e.matching("tokenwarden_tokens").size(), 4u);
  EXPECT_EQ(e.value("tokenwarden_tokens_without_expiry", {{"cluster", "a"}}), 5.0);
  EXPECT_EQ(e.value("tokenwarden_tokens_expiring", {{"cluster", "a"}, {"within", "1d"}}), 1.0);
  EXPECT_EQ(e.value("tokenwarden_tokens_expiring", {{"cluster", "a"}, {"within", "7d"}}), 6.0);
  EXPECT_EQ(e.value("tokenwarden_tokens_expiring", {{"cluster", "a"}, {"within", "30d"}}), 7.0);
  EXPECT_EQ(e.matching("tokenwarden_tokens_expiring").size(), 3u);

  m.inventory("a", InventoryCounts{.active = 8});
  e = render(m);
  EXPECT_EQ(e.value("tokenwarden_tokens", {{"cluster", "a"}, {"status", "active"}}), 8.0)
      << "a gauge, not a sum";
  EXPECT_EQ(e.value("tokenwarden_tokens", {{"cluster", "a"}, {"status", "revoked"}}), 0.0);
  EXPECT_EQ(e.value("tokenwarden_tokens_expiring", {{"cluster", "a"}, {"within", "30d"}}), 0.0);
}

TEST(Metrics, InventoryByTeamLabelsTeamsAndLeavesNoTeamUnlabelled) {
  Metrics m("v");
  m.team_labels("a", {"data", "web"});
  m.inventory("a", InventoryCounts{.active = 9,
                                   .without_expiry = 4,
                                   .teams = {{"data", {.never_expiring = 3, .expiring_7d = 2}},
                                             {"web", {.expiring_30d = 1}},
                                             {"", {.never_expiring = 1}}}});
  auto e = render(m);
  const std::string exp = "tokenwarden_tokens_expiring",
                    never = "tokenwarden_tokens_never_expiring";
  EXPECT_EQ(e.value(never, {{"cluster", "a"}, {"team", "data"}}), 3.0);
  EXPECT_EQ(e.value(never, {{"cluster", "a"}}), 1.0) << "no team: no team label";
  EXPECT_EQ(e.value(never, {{"cluster", "a"}, {"team", "web"}}), 0.0);
  EXPECT_EQ(e.value(exp, {{"cluster", "a"}, {"within", "7d"}, {"team", "data"}}), 2.0);
  EXPECT_EQ(e.value(exp, {{"cluster", "a"}, {"within", "30d"}, {"team", "web"}}), 1.0);
  EXPECT_EQ(e.value(exp, {{"cluster", "a"}, {"within", "1d"}}), 0.0);
  EXPECT_EQ(e.matching(exp).size(), 9u) << "3 windows x (data, web, no team)";
  EXPECT_EQ(e.value("tokenwarden_tokens_without_expiry", {{"cluster", "a"}}), 4.0)
      << "the cluster total stays";

  // A team with no active token left: its series go away; the no-team series stay.
  m.inventory("a", InventoryCounts{.active = 1, .teams = {{"web", {.expiring_30d = 1}}}});
  e = render(m);
  EXPECT_TRUE(e.matching(exp, {{"team", "data"}}).empty());
  EXPECT_TRUE(e.matching(never, {{"team", "data"}}).empty());
  EXPECT_EQ(e.value(never, {{"cluster", "a"}}), 0.0);
  EXPECT_EQ(e.matching(exp).size(), 6u);
}

TEST(Metrics, TeamLabelsAreCappedPerClusterAndTheRestIsOther) {
  Metrics m("v");
  std::vector<std::string> ranked;
  std::map<std::string, TeamExpiry> teams;
  std::map<OpenKey, std::int64_t> open;
  for (int i = 0; i < 60; ++i) {
    std::string team = "team" + std::to_string(100 + i);  // ranked in this order
    ranked.push_back(team);
    teams[team] = {.never_expiring = 1};
    open[{"p1", "warning", team}] = 2;
  }
  m.team_labels("a", ranked);
  m.inventory("a", InventoryCounts{.active = 60, .without_expiry = 60, .teams = teams});
  m.violations_open("a", open);
  auto e = render(m);
  const std::string never = "tokenwarden_tokens_never_expiring", v = "tokenwarden_violations_open";
  EXPECT_EQ(e.matching(never).size(), kMaxTeamLabels + 2) << "50 teams, other, no team";
  EXPECT_EQ(e.value(never, {{"cluster", "a"}, {"team", "team149"}}), 1.0) << "the 50th";
  EXPECT_EQ(e.value(never, {{"cluster", "a"}, {"team", "team150"}}), std::nullopt);
  EXPECT_EQ(e.value(never, {{"cluster", "a"}, {"team", "other"}}), 10.0);
  EXPECT_EQ(e.matching(v).size(), kMaxTeamLabels + 1);
  EXPECT_EQ(
      e.value(v, {{"cluster", "a"}, {"policy", "p1"}, {"severity", "warning"}, {"team", "other"}}),
      20.0);
  EXPECT_EQ(m.team_label("b", "team100"), "other") << "labels are per cluster";
  EXPECT_EQ(m.team_label("a", ""), "");

  // The ranking changes: a team that loses its label moves under "other", at once for the open
  // violations (published again), at the next inventory for the inventory gauges.
  std::rotate(ranked.begin(), ranked.begin() + 1, ranked.end());  // team100 last
  m.team_labels("a", ranked);
  e = render(m);
  EXPECT_TRUE(e.matching(v, {{"team", "team100"}}).empty());
  EXPECT_EQ(
      e.value(v,
              {{"cluster", "a"}, {"policy", "p1"}, {"severity", "warning"}, {"team", "team150"}}),
      2.0);
  EXPECT_EQ(
      e.value(v, {{"cluster", "a"}, {"policy", "p1"}, {"severity", "warning"}, {"team", "other"}}),
      20.0);
  m.inventory("a", InventoryCounts{.active = 60, .without_expiry = 60, .teams = teams});
  e = render(m);
  EXPECT_TRUE(e.matching(never, {{"team", "team100"}}).empty());
  EXPECT_EQ(e.value(never, {{"cluster", "a"}, {"team", "team150"}}), 1.0);
  EXPECT_EQ(e.matching(never).size(), kMaxTeamLabels + 2);

  m.forget_cluster("a");
  e = render(m);
  EXPECT_TRUE(e.matching(never).empty());
  EXPECT_TRUE(e.matching(v).empty());
  EXPECT_EQ(m.team_label("a", "team150"), "other");
}

TEST(Metrics, OpenViolationsByTeam) {
  Metrics m("v");
  m.team_labels("a", {"data"});
  m.violations_open("a", {{{"p1", "critical", "data"}, 2}, {{"p1", "critical", ""}, 1}});
  auto e = render(m);
  const std::string v = "tokenwarden_violations_open";
  EXPECT_EQ(
      e.value(v, {{"cluster", "a"}, {"policy", "p1"}, {"severity", "critical"}, {"team", "data"}}),
      2.0);
  EXPECT_EQ(e.value(v, {{"cluster", "a"}, {"policy", "p1"}, {"severity", "critical"}}), 1.0);
  m.violations_open("a", {{{"p1", "critical", ""}, 3}});
  e = render(m);
  EXPECT_EQ(
      e.value(v, {{"cluster", "a"}, {"policy", "p1"}, {"severity", "critical"}, {"team", "data"}}),
      0.0)
      << "a team that keeps its label goes to 0";
}

// --- violations
// -------------------------------------------------------------------------------------------

TEST(Metrics, ViolationsOpenReplacesTheSetAndZeroesMissingSeries) {
  Metrics m("v");
  m.violations_open("a", {{{"p1", "critical", ""}, 2}, {{"p2", "warning", ""}, 1}});
  m.violations_open("b", {{{"p2", "warning", ""}, 4}});
  auto e = render(m);
  EXPECT_EQ(e.value("tokenwarden_violations_open",
                    {{"cluster", "a"}, {"policy", "p1"}, {"severity", "critical"}}),
            2.0);
  EXPECT_EQ(e.value("tokenwarden_violations_open",
                    {{"cluster", "a"}, {"policy", "p2"}, {"severity", "warning"}}),
            1.0);

  m.violations_open("a", {{{"p1", "critical", ""}, 1}});
  e = render(m);
  EXPECT_EQ(e.value("tokenwarden_violations_open",
                    {{"cluster", "a"}, {"policy", "p1"}, {"severity", "critical"}}),
            1.0);
  EXPECT_EQ(e.value("tokenwarden_violations_open",
                    {{"cluster", "a"}, {"policy", "p2"}, {"severity", "warning"}}),
            0.0)
      << "a (policy, severity) no longer reported goes to 0 while the policy is configured";
  EXPECT_EQ(e.value("tokenwarden_violations_open",
                    {{"cluster", "b"}, {"policy", "p2"}, {"severity", "warning"}}),
            4.0)
      << "another cluster is untouched";

  m.violations_open("a", {});
  e = render(m);
  EXPECT_EQ(e.value("tokenwarden_violations_open",
                    {{"cluster", "a"}, {"policy", "p1"}, {"severity", "critical"}}),
            0.0);
  EXPECT_EQ(e.matching("tokenwarden_violations_open", {{"cluster", "a"}}).size(), 2u);

  m.violations_open("a", {{{"p2", "warning", ""}, 3}});
  e = render(m);
  EXPECT_EQ(e.value("tokenwarden_violations_open",
                    {{"cluster", "a"}, {"policy", "p2"}, {"severity", "warning"}}),
            3.0);
}

TEST(Metrics, SeverityChangeOfAPolicyZeroesTheOldSeverity) {
  Metrics m("v");
  m.violations_open("a", {{{"p1", "warning", ""}, 2}});
  m.violations_open("a", {{{"p1", "critical", ""}, 2}});
  auto e = render(m);
  EXPECT_EQ(e.value("tokenwarden_violations_open",
                    {{"cluster", "a"}, {"policy", "p1"}, {"severity", "warning"}}),
            0.0);
  EXPECT_EQ(e.value("tokenwarden_violations_open",
                    {{"cluster", "a"}, {"policy", "p1"}, {"severity", "critical"}}),
            2.0);
}

TEST(Metrics, KeepPoliciesDropsViolationSeriesOfUnconfiguredPolicies) {
  Metrics m("v");
  m.violations_open("a", {{{"p1", "critical", ""}, 2}, {{"p2", "warning", ""}, 1}});
  m.violations_open("b", {{{"p2", "warning", ""}, 4}, {{"p3", "info", ""}, 5}});
  m.keep_policies({"p1", "p3"});
  auto e = render(m);
  EXPECT_EQ(e.matching("tokenwarden_violations_open", {{"policy", "p2"}}).size(), 0u)
      << "gone in every cluster";
  EXPECT_EQ(e.value("tokenwarden_violations_open",
                    {{"cluster", "a"}, {"policy", "p1"}, {"severity", "critical"}}),
            2.0);
  EXPECT_EQ(e.value("tokenwarden_violations_open",
                    {{"cluster", "b"}, {"policy", "p3"}, {"severity", "info"}}),
            5.0);

  // The dropped series is forgotten: the next report does not bring it back as a 0.
  m.violations_open("a", {});
  e = render(m);
  EXPECT_EQ(e.value("tokenwarden_violations_open",
                    {{"cluster", "a"}, {"policy", "p1"}, {"severity", "critical"}}),
            0.0);
  EXPECT_EQ(e.value("tokenwarden_violations_open",
                    {{"cluster", "a"}, {"policy", "p2"}, {"severity", "warning"}}),
            std::nullopt);

  m.keep_policies({});
  e = render(m);
  EXPECT_TRUE(e.matching("tokenwarden_violations_open").empty());
}

TEST(Metrics, ViolationOpenedAndActionsAreCountersByLabels) {
  Metrics m("v");
  m.violation_opened("a", "p1");
  m.violation_opened("a", "p1", 3);
  m.violation_opened("b", "p1");
  m.action("a", "p1", "revoke", "succeeded");
  m.action("a", "p1", "revoke", "succeeded", 2);
  m.action("a", "p1", "revoke", "failed");
  m.action("a", "p1", "restrict", "skipped", 4);
  auto e = render(m);
  EXPECT_EQ(e.value("tokenwarden_violations_opened_total", {{"cluster", "a"}, {"policy", "p1"}}),
            4.0);
  EXPECT_EQ(e.value("tokenwarden_violations_opened_total", {{"cluster", "b"}, {"policy", "p1"}}),
            1.0);
  const std::string a = "tokenwarden_actions_total";
  EXPECT_EQ(
      e.value(a,
              {{"cluster", "a"}, {"policy", "p1"}, {"action", "revoke"}, {"result", "succeeded"}}),
      3.0);
  EXPECT_EQ(
      e.value(a, {{"cluster", "a"}, {"policy", "p1"}, {"action", "revoke"}, {"result", "failed"}}),
      1.0);
  EXPECT_EQ(
      e.value(a,
              {{"cluster", "a"}, {"policy", "p1"}, {"action", "restrict"}, {"result", "skipped"}}),
      4.0);
  EXPECT_EQ(e.matching(a).size(), 3u);
}

TEST(Metrics, EnforcementHaltedIsAPerClusterFlag) {
  Metrics m("v");
  m.enforcement_halted("a", true);
  m.enforcement_halted("b", false);
  auto e = render(m);
  EXPECT_EQ(e.value("tokenwarden_enforcement_halted", {{"cluster", "a"}}), 1.0);
  EXPECT_EQ(e.value("tokenwarden_enforcement_halted", {{"cluster", "b"}}), 0.0);
  m.enforcement_halted("a", false);
  EXPECT_EQ(render(m).value("tokenwarden_enforcement_halted", {{"cluster", "a"}}), 0.0);
}

// --- audit events, exemptions, alerts, reloads
// --------------------------------------------------------

TEST(Metrics, AuditEventsAddPerKindAndSkipZeroKinds) {
  Metrics m("v");
  EventCounts counts{};
  counts[static_cast<std::size_t>(EventKind::kTokenCreated)] = 3;
  counts[static_cast<std::size_t>(EventKind::kViolationOpened)] = 2;
  counts[static_cast<std::size_t>(EventKind::kDaemonStopped)] = 1;  // the last kind
  m.audit_events(counts);
  EventCounts more{};
  more[static_cast<std::size_t>(EventKind::kTokenCreated)] = 4;
  more[static_cast<std::size_t>(EventKind::kTokenDiscovered)] = 1;  // the first kind
  m.audit_events(more);
  auto e = render(m);
  EXPECT_EQ(e.value("tokenwarden_audit_events_total", {{"event", "token_created"}}), 7.0);
  EXPECT_EQ(e.value("tokenwarden_audit_events_total", {{"event", "violation_opened"}}), 2.0);
  EXPECT_EQ(e.value("tokenwarden_audit_events_total", {{"event", "daemon_stopped"}}), 1.0);
  EXPECT_EQ(e.value("tokenwarden_audit_events_total", {{"event", "token_discovered"}}), 1.0);
  EXPECT_EQ(e.matching("tokenwarden_audit_events_total").size(), 4u)
      << "no series for kinds never counted";
}

TEST(Metrics, CheckpointSignedSetsSeqAndTime) {
  Metrics m("v");
  EXPECT_TRUE(render(m).matching("tokenwarden_audit_checkpoint_seq").empty());
  m.checkpoint_signed(7, ts("2026-06-01T00:00:00Z"));
  m.checkpoint_signed(12, ts("2026-06-01T01:00:00Z"));
  auto e = render(m);
  EXPECT_EQ(e.value("tokenwarden_audit_checkpoint_seq", {}), 12.0);
  EXPECT_EQ(e.value("tokenwarden_audit_checkpoint_timestamp_seconds", {}), kJune1 + 3600);
}

TEST(Metrics, ExemptionsActiveReplacesTheSet) {
  Metrics m("v");
  m.exemptions_active({{"p1", 2}, {"*", 1}});
  auto e = render(m);
  EXPECT_EQ(e.value("tokenwarden_exemptions_active", {{"policy", "p1"}}), 2.0);
  EXPECT_EQ(e.value("tokenwarden_exemptions_active", {{"policy", "*"}}), 1.0);
  m.exemptions_active({{"p1", 1}});
  e = render(m);
  EXPECT_EQ(e.value("tokenwarden_exemptions_active", {{"policy", "p1"}}), 1.0);
  EXPECT_EQ(e.value("tokenwarden_exemptions_active", {{"policy", "*"}}), 0.0)
      << "expired: back to 0";
}

TEST(Metrics, AlertsSentFollowsMonotonicTotalsAndNeverDecreases) {
  Metrics m("v");
  const std::string n = "tokenwarden_alerts_sent_total";
  m.alerts_sent("webhook", "ok", 0);
  auto e = render(m);
  EXPECT_EQ(e.value(n, {{"receiver", "webhook"}, {"result", "ok"}}), 0.0)
      << "the series exists from the start";
  m.alerts_sent("webhook", "ok", 3);
  m.alerts_sent("webhook", "ok", 3);  // unchanged total: no increment
  EXPECT_EQ(render(m).value(n, {{"receiver", "webhook"}, {"result", "ok"}}), 3.0);
  m.alerts_sent("webhook", "ok", 5);
  EXPECT_EQ(render(m).value(n, {{"receiver", "webhook"}, {"result", "ok"}}), 5.0);
  m.alerts_sent("webhook", "ok", 2);  // a lower total never decrements a counter
  EXPECT_EQ(render(m).value(n, {{"receiver", "webhook"}, {"result", "ok"}}), 5.0);
  m.alerts_sent("webhook", "ok", 6);  // counted from the highest total seen
  EXPECT_EQ(render(m).value(n, {{"receiver", "webhook"}, {"result", "ok"}}), 6.0);

  m.alerts_sent("webhook", "failed", 2);
  m.alerts_sent("alertmanager", "ok", 7);
  e = render(m);
  EXPECT_EQ(e.value(n, {{"receiver", "webhook"}, {"result", "failed"}}), 2.0);
  EXPECT_EQ(e.value(n, {{"receiver", "alertmanager"}, {"result", "ok"}}), 7.0);
  EXPECT_EQ(e.value(n, {{"receiver", "webhook"}, {"result", "ok"}}), 6.0);
}

TEST(Metrics, ConfigReloadFailureKeepsTheLastSuccessTimestamp) {
  Metrics m("v");
  const std::string ok = "tokenwarden_config_last_reload_successful";
  const std::string at = "tokenwarden_config_last_reload_success_timestamp_seconds";
  m.config_reload(true, ts("2026-06-01T00:00:00Z"));
  auto e = render(m);
  EXPECT_EQ(e.value(ok), 1.0);
  EXPECT_EQ(e.value(at), kJune1);
  m.config_reload(false, ts("2026-06-01T01:00:00Z"));
  e = render(m);
  EXPECT_EQ(e.value(ok), 0.0);
  EXPECT_EQ(e.value(at), kJune1);
  m.config_reload(true, ts("2026-06-01T02:00:00.500Z"));
  e = render(m);
  EXPECT_EQ(e.value(ok), 1.0);
  EXPECT_DOUBLE_EQ(e.value(at).value_or(-1), kJune1 + 7200.5);
}

// --- forgetting a cluster
// --------------------------------------------------------------------------------

void populate(Metrics& m, const std::string& cluster) {
  m.poll_finished(cluster, "ok", 0.1, ts("2026-06-01T00:00:00Z"));
  m.inventory(cluster, InventoryCounts{
                           .active = 3, .without_expiry = 1, .teams = {{"", {.expiring_7d = 2}}}});
  m.violations_open(cluster, {{{"p1", "critical", ""}, 1}, {{"p2", "warning", ""}, 2}});
  m.enforcement_halted(cluster, true);
}

TEST(Metrics, ForgetClusterRemovesItsGaugesOnly) {
  Metrics m("v");
  populate(m, "gone");
  populate(m, "stays");
  m.forget_cluster("gone");
  auto e = render(m);
  for (const char* gauge :
       {"tokenwarden_tokens", "tokenwarden_tokens_without_expiry", "tokenwarden_tokens_expiring",
        "tokenwarden_violations_open", "tokenwarden_enforcement_halted",
        "tokenwarden_last_successful_poll_timestamp_seconds"}) {
    SCOPED_TRACE(gauge);
    EXPECT_TRUE(e.matching(gauge, {{"cluster", "gone"}}).empty());
    EXPECT_FALSE(e.matching(gauge, {{"cluster", "stays"}}).empty());
  }
  EXPECT_EQ(e.value("tokenwarden_tokens", {{"cluster", "stays"}, {"status", "active"}}), 3.0);
  EXPECT_EQ(e.value("tokenwarden_violations_open",
                    {{"cluster", "stays"}, {"policy", "p2"}, {"severity", "warning"}}),
            2.0);
  EXPECT_EQ(e.value("tokenwarden_enforcement_halted", {{"cluster", "stays"}}), 1.0);

  // A cluster added back starts from nothing: its old violation series do not return as zeros.
  m.violations_open("gone", {{{"p1", "critical", ""}, 5}});
  e = render(m);
  EXPECT_EQ(e.matching("tokenwarden_violations_open", {{"cluster", "gone"}}).size(), 1u);
  EXPECT_EQ(e.value("tokenwarden_violations_open",
                    {{"cluster", "gone"}, {"policy", "p1"}, {"severity", "critical"}}),
            5.0);
}

TEST(Metrics, ForgetUnknownClusterChangesNothing) {
  Metrics m("v");
  populate(m, "a");
  const std::string before = m.render();
  m.forget_cluster("never-seen");
  EXPECT_EQ(m.render(), before);
}

// --- text format
// ---------------------------------------------------------------------------------------------

TEST(Metrics, LabelValuesAreEscaped) {
  const std::string hostile = "q\"uote\\back\nnew line";
  Metrics m("1.0 \"beta\"\\x");
  m.enforcement_halted(hostile, true);
  m.violations_open("a", {{{hostile, "critical", ""}, 1}});
  const std::string text = m.render();
  auto e = render(m);
  EXPECT_EQ(e.value("tokenwarden_enforcement_halted", {{"cluster", hostile}}), 1.0);
  EXPECT_EQ(e.value("tokenwarden_violations_open",
                    {{"cluster", "a"}, {"policy", hostile}, {"severity", "critical"}}),
            1.0);
  EXPECT_EQ(e.value("tokenwarden_build_info", {{"version", "1.0 \"beta\"\\x"}}), 1.0);
  EXPECT_NE(text.find(R"(cluster="q\"uote\\back\nnew line")"), std::string::npos) << text;
}

// A numpunct that would render 1780272000.5 as "1.780.272.000,5".
struct GermanPunct : std::numpunct<char> {
  char do_decimal_point() const override { return ','; }
  char do_thousands_sep() const override { return '.'; }
  std::string do_grouping() const override { return "\3"; }
};

TEST(Metrics, RenderIgnoresTheGlobalLocale) {
  Metrics m("v");
  m.poll_finished("a", "ok", 1234.5, ts("2026-06-01T00:00:00.500Z"));
  m.inventory("a", InventoryCounts{.active = 1234567});
  std::locale previous = std::locale::global(std::locale(std::locale::classic(), new GermanPunct));
  std::string text = m.render();
  std::locale::global(previous);
  auto e = parse(text);
  EXPECT_TRUE(e.errors.empty()) << all(e.errors);
  EXPECT_EQ(e.value("tokenwarden_last_successful_poll_timestamp_seconds", {{"cluster", "a"}}),
            kJune1 + 0.5);
  EXPECT_EQ(e.value("tokenwarden_poll_duration_seconds_sum", {{"cluster", "a"}}), 1234.5);
  EXPECT_EQ(e.value("tokenwarden_tokens", {{"cluster", "a"}, {"status", "active"}}), 1234567.0);
}

TEST(Metrics, RenderShowsWhatIsRegisteredOnRegistry) {
  Metrics m("v");
  // registry() is the one render() serializes: a family added through it is exposed.
  prometheus::BuildGauge()
      .Name("tokenwarden_test_extra")
      .Help("added by the test")
      .Register(m.registry())
      .Add({{"k", "v"}})
      .Set(42);
  auto e = render(m);
  EXPECT_EQ(e.type.at("tokenwarden_test_extra"), "gauge");
  EXPECT_EQ(e.value("tokenwarden_test_extra", {{"k", "v"}}), 42.0);
}

TEST(Metrics, ConcurrentUpdatesAreNotLost) {
  Metrics m("v");
  constexpr int kThreads = 4;
  constexpr int kEach = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&m, t] {
      const std::string cluster = "c" + std::to_string(t % 2);
      for (int i = 0; i < kEach; ++i) {
        m.action("a", "p1", "revoke", "succeeded");
        m.violations_open(cluster, {{{"p" + std::to_string(i % 3), "warning", ""}, i}});
        m.alerts_sent("webhook", "ok", i + 1);
        if (i % 50 == 0) (void)m.render();
      }
    });
  }
  for (auto& th : threads) th.join();
  auto e = render(m);
  EXPECT_EQ(
      e.value("tokenwarden_actions_total",
              {{"cluster", "a"}, {"policy", "p1"}, {"action", "revoke"}, {"result", "succeeded"}}),
      double{kThreads * kEach});
  EXPECT_EQ(e.value("tokenwarden_alerts_sent_total", {{"receiver", "webhook"}, {"result", "ok"}}),
            double{kEach})
      << "shared totals from several reporters count once";
  EXPECT_EQ(e.matching("tokenwarden_violations_open").size(), 6u);
}

// --- the rendered exposition is reused until something changes ----------------------------------

TEST(MetricsCache, EveryMutatorInvalidatesTheRenderedText) {
  Metrics m("v");
  m.exemptions_active({{"p", 1}});
  m.alerts_sent("webhook", "ok", 1);
  const std::string first = m.render();
  EXPECT_EQ(m.render(), first);  // nothing changed: the same text

  // Each step changes one value; the next render must show it.
  struct Step {
    const char* what;
    std::function<void()> change;
    std::function<bool(const Exposition&)> visible;
  };
  std::vector<Step> steps = {
      {"poll_finished", [&] { m.poll_finished("a", "ok", 0.01, ts("2026-06-01T00:00:00Z")); },
       [](const Exposition& e) {
         return e.value("tokenwarden_polls_total", {{"cluster", "a"}, {"outcome", "ok"}}) == 1.0;
       }},
      {"last_success", [&] { m.last_success("b", std::nullopt); },
       [](const Exposition& e) {
         return e.value("tokenwarden_last_successful_poll_timestamp_seconds", {{"cluster", "b"}}) ==
                0.0;
       }},
      {"inventory", [&] { m.inventory("a", {.active = 7}); },
       [](const Exposition& e) {
         return e.value("tokenwarden_tokens", {{"cluster", "a"}, {"status", "active"}}) == 7.0;
       }},
      {"violations_open",
       [&] {
         m.violations_open("a", {{{"p", "critical", ""}, 3}});
       },
       [](const Exposition& e) {
         return e.value("tokenwarden_violations_open",
                        {{"cluster", "a"}, {"policy", "p"}, {"severity", "critical"}}) == 3.0;
       }},
      {"violation_opened", [&] { m.violation_opened("a", "p", 2); },
       [](const Exposition& e) {
         return e.value("tokenwarden_violations_opened_total",
                        {{"cluster", "a"}, {"policy", "p"}}) == 2.0;
       }},
      {"action", [&] { m.action("a", "p", "revoke", "succeeded"); },
       [](const Exposition& e) {
         return e.value("tokenwarden_actions_total", {{"cluster", "a"},
                                                      {"policy", "p"},
                                                      {"action", "revoke"},
                                                      {"result", "succeeded"}}) == 1.0;
       }},
      {"enforcement_halted", [&] { m.enforcement_halted("a", true); },
       [](const Exposition& e) {
         return e.value("tokenwarden_enforcement_halted", {{"cluster", "a"}}) == 1.0;
       }},
      {"audit_events",
       [&] {
         EventCounts c{};
         c[static_cast<std::size_t>(EventKind::kTokenCreated)] = 4;
         m.audit_events(c);
       },
       [](const Exposition& e) {
         return e.value("tokenwarden_audit_events_total", {{"event", "token_created"}}) == 4.0;
       }},
      {"exemptions_active",
       [&] {
         m.exemptions_active({{"p", 2}});
       },
       [](const Exposition& e) {
         return e.value("tokenwarden_exemptions_active", {{"policy", "p"}}) == 2.0;
       }},
      {"alerts_sent", [&] { m.alerts_sent("webhook", "ok", 5); },
       [](const Exposition& e) {
         return e.value("tokenwarden_alerts_sent_total",
                        {{"receiver", "webhook"}, {"result", "ok"}}) == 5.0;
       }},
      {"config_reload", [&] { m.config_reload(false, ts("2026-06-01T00:00:00Z")); },
       [](const Exposition& e) {
         return e.value("tokenwarden_config_last_reload_successful") == 0.0;
       }},
      {"keep_policies", [&] { m.keep_policies({}); },
       [](const Exposition& e) {
         return !e.value("tokenwarden_violations_open",
                         {{"cluster", "a"}, {"policy", "p"}, {"severity", "critical"}})
                     .has_value();
       }},
      {"forget_cluster", [&] { m.forget_cluster("a"); },
       [](const Exposition& e) {
         return !e.value("tokenwarden_tokens", {{"cluster", "a"}, {"status", "active"}})
                     .has_value();
       }},
  };
  for (const auto& step : steps) {
    (void)m.render();  // cache the state before the step
    step.change();
    EXPECT_TRUE(step.visible(render(m))) << step.what << " was not visible in the next render";
  }
}

TEST(MetricsCache, RepeatedScrapeInputsDoNotInvalidate) {
  Metrics m("v");
  m.exemptions_active({{"p", 1}});
  m.alerts_sent("webhook", "ok", 3);
  const std::string text = m.render();
  // What the daemon does on every scrape with unchanged inputs.
  m.exemptions_active({{"p", 1}});
  m.alerts_sent("webhook", "ok", 3);
  EXPECT_EQ(m.render(), text);
  // And a change is seen.
  m.alerts_sent("webhook", "ok", 4);
  EXPECT_EQ(
      render(m).value("tokenwarden_alerts_sent_total", {{"receiver", "webhook"}, {"result", "ok"}}),
      4.0);
}

TEST(MetricsCache, UpdatesRacingWithRendersAreNeverLost) {
  Metrics m("v");
  std::atomic<bool> done{false};
  std::thread scraper([&] {
    while (!done.load()) (void)m.render();
  });
  for (int i = 1; i <= 2000; ++i) m.violation_opened("a", "p");
  done = true;
  scraper.join();
  EXPECT_EQ(
      render(m).value("tokenwarden_violations_opened_total", {{"cluster", "a"}, {"policy", "p"}}),
      2000.0);
}

}  // namespace
}  // namespace tw::metrics

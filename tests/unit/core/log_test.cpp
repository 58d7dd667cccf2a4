// Tests for core/log.h: text line format, quoting, log-line forging, sinks and level filtering.

#include "core/log.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tw {
namespace {

std::string line(LogLevel level, std::string_view logger, std::string_view message,
                 std::initializer_list<LogField> fields) {
  return format_log_text(level, logger, message, std::span(fields.begin(), fields.size()));
}

TEST(FormatLogText, LevelLoggerMessageFields) {
  EXPECT_EQ(line(LogLevel::kInfo, "poller", "poll done",
                 {{"cluster", "prod-eu"}, {"tokens", 5}, {"ok", true}}),
            "info poller: poll done cluster=prod-eu tokens=5 ok=true");
  EXPECT_EQ(line(LogLevel::kError, "storage", "failed", {}), "error storage: failed");
  EXPECT_EQ(line(LogLevel::kWarn, "x", "m", {{"n", std::int64_t{-7}}}), "warn x: m n=-7");
  EXPECT_EQ(line(LogLevel::kDebug, "x", "m", {{"ratio", 1.5}}), "debug x: m ratio=1.5");
  EXPECT_EQ(line(LogLevel::kTrace, "x", "m", {{"s", std::string("v")}}), "trace x: m s=v");
}

struct QuoteCase {
  std::string value;
  std::string rendered;
};

class FieldQuoting : public ::testing::TestWithParam<QuoteCase> {};

TEST_P(FieldQuoting, Table) {
  EXPECT_EQ(line(LogLevel::kInfo, "t", "m", {{"k", GetParam().value}}),
            "info t: m k=" + GetParam().rendered);
}

INSTANTIATE_TEST_SUITE_P(Table, FieldQuoting,
                         ::testing::Values(QuoteCase{"plain", "plain"}, QuoteCase{"", "\"\""},
                                           QuoteCase{"two words", "\"two words\""},
                                           QuoteCase{"a=b", "\"a=b\""},
                                           QuoteCase{"say \"hi\"", "\"say \\\"hi\\\"\""},
                                           QuoteCase{"back\\slash", "\"back\\\\slash\""},
                                           QuoteCase{"new\nline", "\"new\\\\nline\""},
                                           QuoteCase{"esc\x1b[2J", "\"esc\\\\x1b[2J\""},
                                           QuoteCase{"caf\xC3\xA9", "caf\xC3\xA9"}));

TEST(FormatLogText, FieldWithNewlineCannotForgeASecondLine) {
  std::string forged = "x\ninfo poller: token revoked cluster=prod token_id=42";
  for (const auto& s : {line(LogLevel::kInfo, "poller", "m", {{"description", forged}}),
                        line(LogLevel::kInfo, "poller", forged, {}),
                        line(LogLevel::kInfo, "poller", "m", {{"d", "a\r\nerror x: y"}}),
                        line(LogLevel::kInfo, "poller", "m",
                             {{"d",
                               "a\xE2\x80\xA8"
                               "error x: y"}}),
                        line(LogLevel::kInfo, "poller", "m",
                             {{"d",
                               "a\xC2\x85"
                               "error x: y"}})}) {
    EXPECT_EQ(s.find('\n'), std::string::npos) << s;
    EXPECT_EQ(s.find('\r'), std::string::npos) << s;
    EXPECT_EQ(s.find("\xE2\x80\xA8"), std::string::npos) << s;
    EXPECT_EQ(s.find("\xC2\x85"), std::string::npos) << s;
  }
  // The forged text is inside one quoted value: a parser sees one field, not a new key.
  std::string s = line(LogLevel::kInfo, "poller", "m", {{"description", forged}});
  EXPECT_EQ(s.rfind(" description=\"", std::string::npos), s.find(" description=\""));
  EXPECT_EQ(s.back(), '"');
}

TEST(FormatLogText, BidiOverrideInMessageIsShownNotObeyed) {
  std::string s = line(LogLevel::kInfo, "t", "evil\xE2\x80\xAEtxt.exe", {});
  EXPECT_EQ(s, "info t: evil\\u202etxt.exe");
}

TEST(FormatLogText, LongValuesAreCut) {
  std::string big(5000, 'v');
  std::string s = line(LogLevel::kInfo, "t", "m", {{"k", big}});
  EXPECT_LT(s.size(), 1100u);
  EXPECT_NE(s.find("..."), std::string::npos);
}

TEST(LogLevels, ParseAndName) {
  EXPECT_EQ(parse_log_level("trace"), LogLevel::kTrace);
  EXPECT_EQ(parse_log_level("debug"), LogLevel::kDebug);
  EXPECT_EQ(parse_log_level("info"), LogLevel::kInfo);
  EXPECT_EQ(parse_log_level("warn"), LogLevel::kWarn);
  EXPECT_EQ(parse_log_level("warning"), LogLevel::kWarn);
  EXPECT_EQ(parse_log_level("error"), LogLevel::kError);
  EXPECT_FALSE(parse_log_level("INFO").has_value());
  EXPECT_FALSE(parse_log_level("fatal").has_value());
  EXPECT_FALSE(parse_log_level("").has_value());
  for (auto l :
       {LogLevel::kTrace, LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    EXPECT_EQ(parse_log_level(to_string(l)), l);
  }
}

TEST(MemoryLogSink, KeepsFormattedLinesAndFiltersByLevel) {
  auto sink = std::make_shared<MemoryLogSink>();
  Logger log("poller", sink);
  EXPECT_TRUE(log.enabled(LogLevel::kInfo));  // default level: info
  EXPECT_FALSE(log.enabled(LogLevel::kDebug));
  log.trace("t");
  log.debug("d");
  log.info("i", {{"cluster", "c1"}});
  log.warn("w");
  log.error("e");
  EXPECT_EQ(sink->lines(), (std::vector<std::string>{"info poller: i cluster=c1", "warn poller: w",
                                                     "error poller: e"}));

  sink->set_level(LogLevel::kError);
  log.warn("dropped");
  log.error("kept");
  EXPECT_EQ(sink->lines().size(), 4u);
  EXPECT_EQ(sink->lines().back(), "error poller: kept");

  sink->set_level(LogLevel::kTrace);
  log.trace("now visible");
  EXPECT_EQ(sink->lines().back(), "trace poller: now visible");
}

TEST(Logger, ChildSharesTheSinkWithItsOwnName) {
  auto sink = std::make_shared<MemoryLogSink>();
  Logger root("daemon", sink);
  Logger child = root.child("storage");
  child.info("opened");
  root.info("started");
  EXPECT_EQ(sink->lines(),
            (std::vector<std::string>{"info storage: opened", "info daemon: started"}));
  EXPECT_EQ(child.sink(), root.sink());
}

TEST(Logger, NullLoggerDiscards) {
  Logger log = null_logger();
  EXPECT_FALSE(log.enabled(LogLevel::kError));
  log.error("nobody hears this", {{"k", "v"}});  // must not crash
}

class StreamSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = std::tmpfile();
    ASSERT_NE(file_, nullptr);
  }
  void TearDown() override {
    if (file_ != nullptr) std::fclose(file_);
  }
  std::string contents() {
    std::fflush(file_);
    std::rewind(file_);
    std::string out;
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, file_)) > 0) out.append(buf, n);
    return out;
  }
  std::FILE* file_ = nullptr;
  ManualClock clock_{make_timestamp(2026, 1, 2, 3, 4, 5, 6)};
};

TEST_F(StreamSinkTest, TextLineHasTimestampFromTheInjectedClock) {
  auto sink = std::make_shared<StreamLogSink>(file_, LogFormat::kText, clock_);
  Logger("poller", sink).info("poll done", {{"cluster", "prod"}});
  EXPECT_EQ(contents(), "2026-01-02T03:04:05.006Z info poller: poll done cluster=prod\n");
}

TEST_F(StreamSinkTest, SyslogPrefixInsteadOfTimestamp) {
  auto sink = std::make_shared<StreamLogSink>(file_, LogFormat::kText, clock_, true);
  sink->set_level(LogLevel::kTrace);
  Logger log("x", sink);
  log.debug("d");
  log.info("i");
  log.warn("w");
  log.error("e");
  EXPECT_EQ(contents(), "<7>debug x: d\n<6>info x: i\n<4>warn x: w\n<3>error x: e\n");
}

TEST_F(StreamSinkTest, JsonLinesAreValidJsonWithTypedFields) {
  auto sink = std::make_shared<StreamLogSink>(file_, LogFormat::kJson, clock_);
  Logger("poller", sink)
      .warn("bad\ndescription", {{"cluster", "prod"},
                                 {"description", "line1\nline2 \"q\" \xFF"},
                                 {"tokens", 3},
                                 {"ok", false},
                                 {"ratio", 0.25}});
  std::string out = contents();
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back(), '\n');
  EXPECT_EQ(out.find('\n'), out.size() - 1) << "one event, one line";
  auto j = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  EXPECT_EQ(j["ts"], "2026-01-02T03:04:05.006Z");
  EXPECT_EQ(j["level"], "warn");
  EXPECT_EQ(j["logger"], "poller");
  EXPECT_EQ(j["cluster"], "prod");
  EXPECT_EQ(j["description"], "line1\nline2 \"q\" \xEF\xBF\xBD");
  EXPECT_EQ(j["tokens"], 3);
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["ratio"], 0.25);
}

TEST_F(StreamSinkTest, JsonLineStaysValidForNonFiniteNumbers) {
  auto sink = std::make_shared<StreamLogSink>(file_, LogFormat::kJson, clock_);
  Logger("x", sink).info("m", {{"nan", std::numeric_limits<double>::quiet_NaN()},
                               {"inf", std::numeric_limits<double>::infinity()}});
  std::string out = contents();
  EXPECT_FALSE(nlohmann::json::parse(out, nullptr, false).is_discarded())
      << "a NaN/inf field made the JSON log line invalid: " << out;
}

TEST_F(StreamSinkTest, FormatCanBeSwitched) {
  auto sink = std::make_shared<StreamLogSink>(file_, LogFormat::kText, clock_);
  Logger log("x", sink);
  log.info("a");
  sink->set_format(LogFormat::kJson);
  log.info("b");
  std::string out = contents();
  auto nl = out.find('\n');
  ASSERT_NE(nl, std::string::npos);
  EXPECT_EQ(out.substr(0, nl), "2026-01-02T03:04:05.006Z info x: a");
  EXPECT_EQ(out.substr(nl + 1, 1), "{");
}

}  // namespace
}  // namespace tw

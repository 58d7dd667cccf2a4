// Tests for core/json_writer.h: string escaping, UTF-8 repair, structure and scalar values.

#include "core/json_writer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/strings.h"
#include "tests/unit/core/test_support.h"

namespace tw {
namespace {

using tw::testing::PrintTo;

std::string json_quoted(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

struct EscapeCase {
  std::string name;
  std::string in;
  std::string out;  // without the surrounding quotes
};

class AppendJsonString : public ::testing::TestWithParam<EscapeCase> {};

TEST_P(AppendJsonString, Escapes) {
  EXPECT_EQ(json_quoted(GetParam().in), "\"" + GetParam().out + "\"") << GetParam().name;
}

TEST_P(AppendJsonString, IsValidJsonThatDecodesBack) {
  std::string encoded = json_quoted(GetParam().in);
  auto j = nlohmann::json::parse(encoded, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << GetParam().name << ": " << encoded;
  ASSERT_TRUE(j.is_string());
  EXPECT_EQ(j.get<std::string>(), sanitize_utf8(GetParam().in)) << GetParam().name;
}

INSTANTIATE_TEST_SUITE_P(
    Table, AppendJsonString,
    ::testing::Values(
        EscapeCase{"empty", "", ""}, EscapeCase{"plain", "abc", "abc"},
        EscapeCase{"quote", "a\"b", "a\\\"b"}, EscapeCase{"backslash", "a\\b", "a\\\\b"},
        EscapeCase{"newline", "a\nb", "a\\nb"}, EscapeCase{"cr", "\r", "\\r"},
        EscapeCase{"tab", "\t", "\\t"}, EscapeCase{"backspace", "\b", "\\b"},
        EscapeCase{"formfeed", "\f", "\\f"}, EscapeCase{"nul", std::string("\0", 1), "\\u0000"},
        EscapeCase{"0x01", "\x01", "\\u0001"}, EscapeCase{"esc", "\x1b", "\\u001b"},
        EscapeCase{"0x1f", "\x1f", "\\u001f"}, EscapeCase{"del raw", "\x7f", "\x7f"},
        EscapeCase{"utf8 raw", "caf\xC3\xA9 \xF0\x9D\x84\x9E", "caf\xC3\xA9 \xF0\x9D\x84\x9E"},
        EscapeCase{"U+2028 raw", "\xE2\x80\xA8", "\xE2\x80\xA8"},
        EscapeCase{"slash alone", "a/b", "a/b"}, EscapeCase{"leading slash", "/x", "/x"},
        EscapeCase{"script close", "</script>", "<\\/script>"},
        EscapeCase{"two closers", "</a></b>", "<\\/a><\\/b>"},
        EscapeCase{"slash after slash", "<//", "<\\//"},
        EscapeCase{"invalid byte",
                   "a\xFF"
                   "b",
                   "a\xEF\xBF\xBD"
                   "b"},
        EscapeCase{"overlong", "\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD"},
        EscapeCase{"lone surrogate bytes", "\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
        EscapeCase{"invalid plus escapes", "\"\xFF\n", "\\\"\xEF\xBF\xBD\\n"},
        EscapeCase{"invalid then script", "\xFF</", "\xEF\xBF\xBD<\\/"}),
    tw::testing::CaseName());

TEST(AppendJsonString, AppendsWithoutClearing) {
  std::string out = "x=";
  append_json_string(out, "y");
  EXPECT_EQ(out, "x=\"y\"");
}

TEST(JsonWriter, EmptyContainers) {
  std::string out;
  JsonWriter(out).begin_object().end_object();
  EXPECT_EQ(out, "{}");
  out.clear();
  JsonWriter(out).begin_array().end_array();
  EXPECT_EQ(out, "[]");
  out.clear();
  JsonWriter(out).begin_array().begin_array().end_array().begin_object().end_object().end_array();
  EXPECT_EQ(out, "[[],{}]");
}

TEST(JsonWriter, NestingAndCommas) {
  std::string out;
  JsonWriter w(out);
  w.begin_object();
  w.key("a")
      .begin_array()
      .value(1)
      .value(2)
      .begin_object()
      .field("b", true)
      .end_object()
      .end_array();
  w.field("c", "text");
  w.key("d").begin_object().end_object();
  w.key("e").null();
  w.key("f").raw("[1,2]");
  w.end_object();
  EXPECT_EQ(out, R"({"a":[1,2,{"b":true}],"c":"text","d":{},"e":null,"f":[1,2]})");
  EXPECT_FALSE(nlohmann::json::parse(out, nullptr, false).is_discarded());
}

TEST(JsonWriter, KeysAreEscaped) {
  std::string out;
  JsonWriter(out).begin_object().field("we\"ird\n", 1).end_object();
  EXPECT_EQ(out, R"({"we\"ird\n":1})");
}

TEST(JsonWriter, Integers) {
  std::string out;
  JsonWriter w(out);
  w.begin_array()
      .value(0)
      .value(-1)
      .value(std::numeric_limits<std::int64_t>::max())
      .value(std::numeric_limits<std::int64_t>::min())
      .value(std::numeric_limits<std::uint64_t>::max())
      .end_array();
  EXPECT_EQ(out, "[0,-1,9223372036854775807,-9223372036854775808,18446744073709551615]");
}

TEST(JsonWriter, Booleans) {
  std::string out;
  JsonWriter(out).begin_array().value(true).value(false).end_array();
  EXPECT_EQ(out, "[true,false]");
}

struct DoubleCase {
  double v;
  std::string text;
};

class JsonDoubles : public ::testing::TestWithParam<DoubleCase> {};

TEST_P(JsonDoubles, ExactAndRoundTrips) {
  std::string out;
  JsonWriter(out).value(GetParam().v);
  EXPECT_EQ(out, GetParam().text);
  if (out != "null") {
    EXPECT_EQ(std::strtod(out.c_str(), nullptr), GetParam().v) << out;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, JsonDoubles,
    ::testing::Values(DoubleCase{0.0, "0"}, DoubleCase{1.0, "1"}, DoubleCase{0.5, "0.5"},
                      DoubleCase{-2.25, "-2.25"}, DoubleCase{0.1, "0.10000000000000001"},
                      DoubleCase{1e300, "1.0000000000000001e+300"},
                      DoubleCase{std::numeric_limits<double>::quiet_NaN(), "null"},
                      DoubleCase{std::numeric_limits<double>::infinity(), "null"},
                      DoubleCase{-std::numeric_limits<double>::infinity(), "null"}));

TEST(JsonWriter, NonFiniteDoubleInsideObjectStaysValid) {
  std::string out;
  JsonWriter(out)
      .begin_object()
      .field("nan", std::numeric_limits<double>::quiet_NaN())
      .field("x", 1.5)
      .end_object();
  EXPECT_EQ(out, R"({"nan":null,"x":1.5})");
}

TEST(JsonWriter, TimestampsAndOptionals) {
  std::string out;
  std::optional<Timestamp> none;
  std::optional<Timestamp> some = make_timestamp(2026, 1, 2, 3, 4, 5, 6);
  std::optional<std::string> no_text;
  std::optional<std::string> text = std::string("t</");
  JsonWriter(out)
      .begin_object()
      .field("at", make_timestamp(2026, 1, 1))
      .field("none", none)
      .field("some", some)
      .field("no_text", no_text)
      .field("text", text)
      .end_object();
  EXPECT_EQ(out,
            R"({"at":"2026-01-01T00:00:00.000Z","none":null,"some":"2026-01-02T03:04:05.006Z",)"
            R"("no_text":null,"text":"t<\/"})");
}

TEST(JsonWriter, AppendsToExistingBuffer) {
  std::string out = "prefix:";
  JsonWriter(out).begin_array().value("a").end_array();
  EXPECT_EQ(out, "prefix:[\"a\"]");
}

TEST(JsonWriter, InvalidUtf8InStringValuesAndKeysBecomesReplacement) {
  std::string out;
  JsonWriter(out).begin_object().field("k\xFF", "v\xFE").end_object();
  EXPECT_EQ(out, "{\"k\xEF\xBF\xBD\":\"v\xEF\xBF\xBD\"}");
  EXPECT_TRUE(is_valid_utf8(out));
  EXPECT_FALSE(nlohmann::json::parse(out, nullptr, false).is_discarded());
}

// The eight-bytes-at-a-time scan finds a special character at every offset of a long string.
TEST(AppendJsonString, SpecialCharacterAtEveryOffset) {
  const std::vector<std::pair<std::string, std::string>> specials = {
      {"\"", "\\\""},      {"\\", "\\\\"}, {"\n", "\\n"}, {std::string(1, '\x01'), "\\u0001"},
      {"\x1f", "\\u001f"}, {"</", "<\\/"}, {"/", "/"},    {"é", "é"},
      {"\x7f", "\x7f"}};
  for (const auto& [raw, escaped] : specials) {
    for (std::size_t pos = 0; pos < 24; ++pos) {
      const std::string s = std::string(pos, 'a') + raw + std::string(19, 'b');
      std::string out;
      append_json_string(out, s);
      EXPECT_EQ(out, "\"" + std::string(pos, 'a') + escaped + std::string(19, 'b') + "\"") << pos;
    }
  }
}

}  // namespace
}  // namespace tw

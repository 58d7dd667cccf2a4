// Tests for influx/json_reader.h: structure is checked strictly, text is repaired tolerantly.
#include "influx/json_reader.h"

#include <gtest/gtest.h>

#include <string>

namespace tw::influx {
namespace {

using Kind = JsonReader::Kind;

// Skips one value and requires nothing after it: the reader's notion of a valid document.
bool valid(std::string_view doc) {
  JsonReader r(doc);
  return r.skip_value() && r.at_end();
}

TEST(JsonReader, AcceptsWellFormedDocuments) {
  for (const char* doc :
       {"[]", "{}", " [ 1 , -2 , 3.5e+2 , 0 , -0.0 , 1E5 ] ",
        R"({"a":[true,false,null],"b":{"c":"d"}})",
        R"("esc \" \\ \/ \b \f \n \r \t \u00e9 \ud83d\ude00")", "\"caf\xC3\xA9\"", "[[[[[]]]]]"}) {
    EXPECT_TRUE(valid(doc)) << doc;
  }
}

TEST(JsonReader, RejectsMalformedDocuments) {
  for (const char* doc : {"",
                          " ",
                          "[",
                          "]",
                          "[1,]",
                          "[,1]",
                          "[1 2]",
                          "{\"a\"}",
                          "{\"a\":}",
                          "{\"a\":1,}",
                          "{a:1}",
                          "01",
                          "-",
                          "1.",
                          "1e",
                          "+1",
                          ".5",
                          "tru",
                          "nul",
                          "\"open",
                          "\"bad \\x escape\"",
                          "\"\\u12\"",
                          "[1]]",
                          "{\"a\":1}}",
                          "\"tab\there\""}) {
    EXPECT_FALSE(valid(doc)) << doc;
  }
}

TEST(JsonReader, ErrorsNameWhatWasExpectedAndWhere) {
  JsonReader r("[1,2 3]");
  ASSERT_TRUE(r.enter_array());
  std::int64_t n = 0;
  ASSERT_TRUE(r.next_element());
  ASSERT_TRUE(r.read_integer(n));
  ASSERT_TRUE(r.next_element());
  ASSERT_TRUE(r.read_integer(n));
  EXPECT_FALSE(r.next_element());
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "expected ',' or ']' at byte 5");
  JsonReader early("[1,");
  EXPECT_FALSE(early.skip_value());
  EXPECT_NE(early.error().find("ends early"), std::string::npos) << early.error();
}

TEST(JsonReader, NestingIsLimited) {
  std::string deep(64, '[');
  deep += std::string(64, ']');
  EXPECT_TRUE(valid(deep));
  std::string deeper(200, '[');
  deeper += std::string(200, ']');
  JsonReader r(deeper);
  EXPECT_FALSE(r.skip_value());
  EXPECT_NE(r.error().find("less nesting"), std::string::npos) << r.error();
}

TEST(JsonReader, StringsAreUnescapedAndRepaired) {
  std::string out;
  JsonReader plain(R"("a\"b\\c\u0041\ud83d\ude00")");
  ASSERT_TRUE(plain.read_string(out));
  EXPECT_EQ(out, "a\"b\\cA\xF0\x9F\x98\x80");
  EXPECT_FALSE(plain.replaced_invalid_utf8());

  JsonReader lone(R"("x\ud800y\udc00z")");
  ASSERT_TRUE(lone.read_string(out));
  EXPECT_EQ(out, "x\xEF\xBF\xBDy\xEF\xBF\xBDz");
  EXPECT_TRUE(lone.replaced_invalid_utf8());

  JsonReader raw("\"bad \xFF\xC0\xAF end\"");
  ASSERT_TRUE(raw.read_string(out));
  EXPECT_EQ(out, "bad \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD end");
  EXPECT_TRUE(raw.replaced_invalid_utf8());
}

TEST(JsonReader, IntegersAndShapeProblems) {
  std::int64_t n = 0;
  JsonReader big("9223372036854775807");
  ASSERT_TRUE(big.read_integer(n));
  EXPECT_EQ(n, INT64_MAX);
  JsonReader small("-9223372036854775808");
  ASSERT_TRUE(small.read_integer(n));
  EXPECT_EQ(n, INT64_MIN);
  // Valid JSON numbers that are not 64-bit integers: false, but the document is fine.
  for (const char* doc : {"9223372036854775808", "1.5", "1e3"}) {
    JsonReader r(doc);
    EXPECT_FALSE(r.read_integer(n)) << doc;
    EXPECT_TRUE(r.ok()) << doc;
    EXPECT_TRUE(r.at_end()) << doc;
  }
}

TEST(JsonReader, PeekAndContainers) {
  JsonReader r(R"({"k":[1,{"x":null}],"s":"v"})");
  EXPECT_EQ(r.peek(), Kind::kObject);
  ASSERT_TRUE(r.enter_object());
  std::string key;
  ASSERT_TRUE(r.next_member(key));
  EXPECT_EQ(key, "k");
  EXPECT_EQ(r.peek(), Kind::kArray);
  ASSERT_TRUE(r.skip_value());
  ASSERT_TRUE(r.next_member(key));
  EXPECT_EQ(key, "s");
  std::string v;
  ASSERT_TRUE(r.read_string(v));
  EXPECT_EQ(v, "v");
  EXPECT_FALSE(r.next_member(key));
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.at_end());
}

// --- repeated JSON keys ------------------------------------------------------------------------

TEST(RepeatedKeys, TheReaderRefusesARepeatedKeyInOneObject) {
  JsonReader r(R"({"id":"k1","d":{"id":"inner"},"id":"k2"})");
  ASSERT_TRUE(r.enter_object());
  std::string key, value;
  ASSERT_TRUE(r.next_member(key));
  ASSERT_TRUE(r.read_string(value));
  ASSERT_TRUE(r.next_member(key));
  ASSERT_TRUE(r.enter_object());  // the same key one level down is another object's
  ASSERT_TRUE(r.next_member(key));
  ASSERT_TRUE(r.read_string(value));
  ASSERT_FALSE(r.next_member(key));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_FALSE(r.next_member(key));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "the key \"id\" appears twice in one object at byte 30");
}

TEST(RepeatedKeys, EscapedSpellingsAreTheSameKey) {
  JsonReader r(R"({"id":"k1","i\u0064":"k2"})");
  ASSERT_TRUE(r.enter_object());
  std::string key, value;
  ASSERT_TRUE(r.next_member(key));
  ASSERT_TRUE(r.read_string(value));
  EXPECT_FALSE(r.next_member(key));
  EXPECT_NE(r.error().find("appears twice"), std::string::npos) << r.error();
}

}  // namespace
}  // namespace tw::influx

// Tests for cli/output.h: table, JSON and CSV renderings of command results.

#include "cli/output.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace tw::cli {
namespace {

Table two_columns() {
  Table t;
  t.columns = {{"id"}, {"description"}};
  t.rows = {{Cell::str("a"), Cell::str("first")}, {Cell::str("bbbb"), Cell::str("x")}};
  return t;
}

TEST(ParseOutputFormat, Names) {
  EXPECT_EQ(parse_output_format("table"), OutputFormat::kTable);
  EXPECT_EQ(parse_output_format("json"), OutputFormat::kJson);
  EXPECT_EQ(parse_output_format("csv"), OutputFormat::kCsv);
  EXPECT_FALSE(parse_output_format("JSON").has_value());
  EXPECT_FALSE(parse_output_format("yaml").has_value());
  EXPECT_FALSE(parse_output_format("").has_value());
}

// --- table ------------------------------------------------------------------------------------

TEST(RenderTable, AlignedColumnsWithUppercaseHeader) {
  EXPECT_EQ(render(two_columns(), OutputFormat::kTable),
            "ID    DESCRIPTION\n"
            "a     first\n"
            "bbbb  x\n");
}

TEST(RenderTable, HeaderOnlyWhenEmpty) {
  Table t;
  t.columns = {{"cluster"}, {"token_id"}};
  EXPECT_EQ(render(t, OutputFormat::kTable), "CLUSTER  TOKEN_ID\n");
}

TEST(RenderTable, KindsNullsAndHiddenColumns) {
  Table t;
  t.columns = {{"n"}, {"ok"}, {"expires"}, {"perms"}, {"hidden", false}};
  t.rows = {
      {Cell::num(-42), Cell::boolean(true), Cell::null(),
       Cell::json(R"([{"action":"read","resource":"db"}])", "read:db"), Cell::str("secret-ish")},
      {Cell::num(7), Cell::boolean(false), Cell::opt(std::string("2026-01-01")), Cell::json("[]"),
       Cell::str("x")}};
  EXPECT_EQ(render(t, OutputFormat::kTable),
            "N    OK     EXPIRES     PERMS\n"
            "-42  true   -           read:db\n"
            "7    false  2026-01-01  []\n");
}

TEST(RenderTable, ControlCharactersAreEscaped) {
  Table t;
  t.columns = {{"description"}};
  t.rows = {{Cell::str("evil\n\x1b[2Jforged\rline")},
            {Cell::str("rlo\xE2\x80\xAEtxt")},
            {Cell::str("bad\xFF")}};
  std::string out = render(t, OutputFormat::kTable);
  EXPECT_EQ(out,
            "DESCRIPTION\n"
            "evil\\n\\x1b[2Jforged\\rline\n"
            "rlo\\u202etxt\n"
            "bad\xEF\xBF\xBD\n");
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
}

TEST(RenderTable, LongCellsAreCutWithEllipsis) {
  Table t;
  t.columns = {{"description", true, 5}, {"id"}};
  t.rows = {
      {Cell::str("abcdefgh"), Cell::str("1")},
      {Cell::str("abcde"), Cell::str("2")},
      {Cell::str("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"), Cell::str("3")}};
  EXPECT_EQ(render(t, OutputFormat::kTable),
            "DESCRIPTION  ID\n"
            "abcd\xE2\x80\xA6        1\n"
            "abcde        2\n"
            "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xE2\x80\xA6        3\n");
}

TEST(RenderTable, MultibyteCellsAlignByCharacters) {
  Table t;
  t.columns = {{"d"}, {"x"}};
  t.rows = {{Cell::str("caf\xC3\xA9"), Cell::str("1")}, {Cell::str("tea"), Cell::str("2")}};
  EXPECT_EQ(render(t, OutputFormat::kTable),
            "D     X\n"
            "caf\xC3\xA9  1\n"
            "tea   2\n");
}

TEST(RenderTable, TrailingSpacesAreTrimmed) {
  Table t;
  t.columns = {{"a"}, {"b"}};
  t.rows = {{Cell::str("long value"), Cell::str("")}};
  std::string out = render(t, OutputFormat::kTable);
  EXPECT_EQ(out, "A           B\nlong value\n");
}

// --- JSON -------------------------------------------------------------------------------------

TEST(RenderJson, ExactValues) {
  Table t;
  t.columns = {{"id"}, {"n"}, {"ok"}, {"none"}, {"perms"}, {"hidden", false, 3}};
  t.rows = {{Cell::str("a\n\"q\"</x>"), Cell::num(5), Cell::boolean(false), Cell::null(),
             Cell::json(R"([{"action":"read","resource":"db"}])", "read:db"),
             Cell::str("not cut in json")}};
  std::string out = render(t, OutputFormat::kJson);
  EXPECT_EQ(out, R"([{"id":"a\n\"q\"<\/x>","n":5,"ok":false,"none":null,)"
                 R"("perms":[{"action":"read","resource":"db"}],"hidden":"not cut in json"}])"
                 "\n");
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j[0]["id"], "a\n\"q\"</x>");
  EXPECT_EQ(j[0]["perms"][0]["resource"], "db");
}

TEST(RenderJson, EmptyTableIsAnEmptyArray) {
  Table t;
  t.columns = {{"id"}};
  EXPECT_EQ(render(t, OutputFormat::kJson), "[]\n");
}

TEST(RenderJson, InvalidUtf8StaysValidJson) {
  Table t;
  t.columns = {{"d"}};
  t.rows = {{Cell::str("x\xFF")}};
  std::string out = render(t, OutputFormat::kJson);
  EXPECT_FALSE(nlohmann::json::parse(out, nullptr, false).is_discarded()) << out;
}

// --- CSV --------------------------------------------------------------------------------------

TEST(RenderCsv, HeaderAndRowsWithCrlf) {
  EXPECT_EQ(render(two_columns(), OutputFormat::kCsv), "id,description\r\na,first\r\nbbbb,x\r\n");
}

struct CsvCase {
  std::string name;
  Cell cell;
  std::string field;
};

class CsvFields : public ::testing::TestWithParam<CsvCase> {};

TEST_P(CsvFields, QuotingAndFormulaGuard) {
  Table t;
  t.columns = {{"v"}};
  t.rows = {{GetParam().cell}};
  EXPECT_EQ(render(t, OutputFormat::kCsv), "v\r\n" + GetParam().field + "\r\n") << GetParam().name;
}

void PrintTo(const CsvCase& c, std::ostream* os) { *os << c.name; }

INSTANTIATE_TEST_SUITE_P(
    Table, CsvFields,
    ::testing::Values(
        CsvCase{"plain", Cell::str("abc"), "abc"}, CsvCase{"empty", Cell::str(""), ""},
        CsvCase{"null", Cell::null(), ""}, CsvCase{"comma", Cell::str("a,b"), "\"a,b\""},
        CsvCase{"quote", Cell::str("say \"hi\""), "\"say \"\"hi\"\"\""},
        CsvCase{"newline", Cell::str("a\nb"), "\"a\nb\""},
        CsvCase{"cr", Cell::str("a\rb"), "\"a\rb\""},
        CsvCase{"formula equals", Cell::str("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\""},
        CsvCase{"formula plus", Cell::str("+1+1"), "'+1+1"},
        CsvCase{"formula minus", Cell::str("-2+3"), "'-2+3"},
        CsvCase{"formula at", Cell::str("@SUM(A1)"), "'@SUM(A1)"},
        CsvCase{"formula tab", Cell::str("\t=1"), "'\t=1"},
        CsvCase{"formula cr", Cell::str("\r=1"), "\"'\r=1\""},
        CsvCase{"formula with comma", Cell::str("=1,2"), "\"'=1,2\""},
        CsvCase{"number not guarded", Cell::num(-5), "-5"},
        CsvCase{"bool", Cell::boolean(true), "true"},
        CsvCase{"json quoted", Cell::json(R"({"a":1,"b":2})"), "\"{\"\"a\"\":1,\"\"b\"\":2}\""},
        CsvCase{"invalid utf8", Cell::str("x\xFF"), "x\xEF\xBF\xBD"},
        CsvCase{"equals inside is fine", Cell::str("a=b"), "a=b"}),
    [](const ::testing::TestParamInfo<CsvCase>& p) {
      std::string n;
      for (char c : p.param.name) n += (c == ' ') ? '_' : c;
      return n;
    });

TEST(RenderCsv, HiddenColumnsAreIncluded) {
  Table t;
  t.columns = {{"a"}, {"b", false}};
  t.rows = {{Cell::str("1"), Cell::str("2")}};
  EXPECT_EQ(render(t, OutputFormat::kCsv), "a,b\r\n1,2\r\n");
}

// RowStream writes the same bytes as render(), in chunks, for every format (a stream of more
// than 64 KB crosses a flush).
TEST(RowStream, SameBytesAsRender) {
  Table t;
  t.columns = {{"id"}, {"description", true, 10}, {"permissions", false}, {"n"}};
  for (int i = 0; i < 3000; ++i) {
    t.rows.push_back({Cell::str("tok-" + std::to_string(i)),
                      Cell::str(i % 3 == 0 ? "=formula, \"quoted\"" : "plain"),
                      Cell::json("[{\"action\":\"read\",\"resource\":\"db\"}]", "read db"),
                      i % 5 == 0 ? Cell::null() : Cell::num(i)});
  }
  for (auto format : {OutputFormat::kJson, OutputFormat::kCsv, OutputFormat::kTable}) {
    std::FILE* f = std::tmpfile();
    ASSERT_NE(f, nullptr);
    {
      RowStream out(t.columns, format, f);
      for (const auto& row : t.rows) out.row(row);
    }  // the destructor finishes the stream
    std::rewind(f);
    std::string got;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) got.append(buf, n);
    std::fclose(f);
    EXPECT_GT(got.size(), 64u * 1024u);
    EXPECT_EQ(got, render(t, format)) << static_cast<int>(format);
  }
  // No rows: the same empty documents as render().
  Table empty;
  empty.columns = t.columns;
  for (auto format : {OutputFormat::kJson, OutputFormat::kCsv}) {
    std::FILE* f = std::tmpfile();
    RowStream(empty.columns, format, f).finish();
    std::rewind(f);
    std::string got;
    char buf[256];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) got.append(buf, n);
    std::fclose(f);
    EXPECT_EQ(got, render(empty, format));
  }
}

}  // namespace
}  // namespace tw::cli

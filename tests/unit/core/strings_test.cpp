// Tests for core/strings.h: globs, UTF-8 validation and repair, terminal-safe rendering,
// truncation, redaction and UUIDs.

#include "core/strings.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/core/test_support.h"

namespace tw {
namespace {

using tw::testing::PrintTo;

const std::string kFffd = "\xEF\xBF\xBD";  // U+FFFD as UTF-8

// --- small helpers ----------------------------------------------------------------------------

TEST(Trim, RemovesAsciiWhitespaceOnBothEnds) {
  EXPECT_EQ(trim("  a b \t\r\n"), "a b");
  EXPECT_EQ(trim("\f\va\v"), "a");
  EXPECT_EQ(trim(""), "");
  EXPECT_EQ(trim(" \n\t "), "");
  EXPECT_EQ(trim("x"), "x");
}

TEST(Split, KeepsEmptyParts) {
  EXPECT_EQ(split("a,b,,c", ','), (std::vector<std::string>{"a", "b", "", "c"}));
  EXPECT_EQ(split("", ','), (std::vector<std::string>{""}));
  EXPECT_EQ(split(",", ','), (std::vector<std::string>{"", ""}));
  EXPECT_EQ(split("abc", ','), (std::vector<std::string>{"abc"}));
}

TEST(Join, WithSeparator) {
  EXPECT_EQ(join({"a", "b", "c"}, ", "), "a, b, c");
  EXPECT_EQ(join({}, ","), "");
  EXPECT_EQ(join({"x"}, ","), "x");
}

TEST(StartsWithAndToLower, Basics) {
  EXPECT_TRUE(starts_with("prod-eu", "prod"));
  EXPECT_TRUE(starts_with("prod", ""));
  EXPECT_FALSE(starts_with("pro", "prod"));
  EXPECT_EQ(to_lower("AbC-É"), "abc-É");  // ASCII only
}

// --- glob_match -------------------------------------------------------------------------------

struct GlobCase {
  std::string pattern;
  std::string text;
  bool match;
};

class GlobMatch : public ::testing::TestWithParam<GlobCase> {};

TEST_P(GlobMatch, Table) {
  EXPECT_EQ(glob_match(GetParam().pattern, GetParam().text), GetParam().match)
      << "pattern \"" << GetParam().pattern << "\" text \"" << GetParam().text << "\"";
}

INSTANTIATE_TEST_SUITE_P(
    Table, GlobMatch,
    ::testing::Values(GlobCase{"", "", true}, GlobCase{"", "a", false}, GlobCase{"*", "", true},
                      GlobCase{"*", "anything at all", true}, GlobCase{"**", "x", true},
                      GlobCase{"?", "a", true}, GlobCase{"?", "", false},
                      GlobCase{"?", "ab", false}, GlobCase{"prod-*", "prod-eu", true},
                      GlobCase{"prod-*", "prod-", true}, GlobCase{"prod-*", "prod", false},
                      GlobCase{"prod-*", "dev-prod-eu", false}, GlobCase{"*-eu", "prod-eu", true},
                      GlobCase{"*-eu", "prod-eu-2", false}, GlobCase{"a*b*c", "aXbYc", true},
                      GlobCase{"a*b*c", "abc", true}, GlobCase{"a*b*c", "acb", false},
                      GlobCase{"a?c", "abc", true}, GlobCase{"a?c", "ac", false},
                      GlobCase{"*x*", "abxcd", true}, GlobCase{"*x*", "abcd", false},
                      GlobCase{"*a", "ba", true}, GlobCase{"*a", "ab", false},
                      GlobCase{"a*", "a", true}, GlobCase{"ab", "abc", false},
                      GlobCase{"abc", "ab", false}, GlobCase{"Prod", "prod", false},  // case
                      GlobCase{"telegraf_*", "telegraf_metrics", true},
                      GlobCase{"*.*", "a.b", true}, GlobCase{"[ab]", "a", false},  // no classes
                      GlobCase{"[ab]", "[ab]", true}, GlobCase{"*ab*ab", "xabyabab", true},
                      GlobCase{"a*a*a*a*a*b", std::string(60, 'a'), false}));

TEST(GlobMatch, HostileBacktrackingStaysFast) {
  // Many stars against a long non-matching text: linear-ish, must not explode.
  std::string pattern;
  for (int i = 0; i < 50; ++i) pattern += "*a";
  pattern += "b";
  std::string text(20000, 'a');
  EXPECT_FALSE(glob_match(pattern, text));
}

// --- UTF-8 ------------------------------------------------------------------------------------

struct Utf8Case {
  std::string name;
  std::string bytes;
  bool valid;
};

class Utf8Validity : public ::testing::TestWithParam<Utf8Case> {};

TEST_P(Utf8Validity, IsValid) {
  EXPECT_EQ(is_valid_utf8(GetParam().bytes), GetParam().valid) << GetParam().name;
}

TEST_P(Utf8Validity, SanitizeKeepsValidAndRepairsInvalid) {
  std::string out = sanitize_utf8(GetParam().bytes);
  EXPECT_TRUE(is_valid_utf8(out)) << GetParam().name;
  if (GetParam().valid) {
    EXPECT_EQ(out, GetParam().bytes) << GetParam().name;
  } else {
    EXPECT_NE(out.find(kFffd), std::string::npos) << GetParam().name;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, Utf8Validity,
    ::testing::Values(Utf8Case{"empty", "", true}, Utf8Case{"ascii", "plain ascii", true},
                      Utf8Case{"nul byte", std::string("a\0b", 3), true},
                      Utf8Case{"two-byte", "caf\xC3\xA9", true},
                      Utf8Case{"three-byte", "\xE2\x82\xAC", true},
                      Utf8Case{"four-byte", "\xF0\x9D\x84\x9E", true},
                      Utf8Case{"max code point", "\xF4\x8F\xBF\xBF", true},
                      Utf8Case{"U+FFFD itself", "\xEF\xBF\xBD", true},
                      Utf8Case{"bidi override", "\xE2\x80\xAE", true},
                      Utf8Case{"lone continuation", "\x80", false},
                      Utf8Case{"lone 0xFF", "a\xFFz", false}, Utf8Case{"0xFE", "\xFE", false},
                      Utf8Case{"0xF8 five-byte lead", "\xF8\x88\x80\x80\x80", false},
                      Utf8Case{"overlong slash 2", "\xC0\xAF", false},
                      Utf8Case{"overlong NUL 2", "\xC0\x80", false},
                      Utf8Case{"overlong 0xC1", "\xC1\xBF", false},
                      Utf8Case{"overlong slash 3", "\xE0\x80\xAF", false},
                      Utf8Case{"overlong 3 max", "\xE0\x9F\xBF", false},
                      Utf8Case{"overlong slash 4", "\xF0\x80\x80\xAF", false},
                      Utf8Case{"overlong 4 max", "\xF0\x8F\xBF\xBF", false},
                      Utf8Case{"high surrogate", "\xED\xA0\x80", false},
                      Utf8Case{"low surrogate", "\xED\xBF\xBF", false},
                      Utf8Case{"CESU surrogate pair", "\xED\xA0\xBD\xED\xB2\xA9", false},
                      Utf8Case{"above U+10FFFF", "\xF4\x90\x80\x80", false},
                      Utf8Case{"0xF5 lead", "\xF5\x80\x80\x80", false},
                      Utf8Case{"truncated 2 at end", "ab\xC3", false},
                      Utf8Case{"truncated 3 at end", "ab\xE2\x82", false},
                      Utf8Case{"truncated 4 at end", "\xF0\x9D\x84", false},
                      Utf8Case{"truncated 3 mid", "a\xE2\x82z", false},
                      Utf8Case{"continuation missing", "\xC3z", false}),
    tw::testing::CaseName());

TEST(SanitizeUtf8, ReplacesEachBadByteAndKeepsTheRest) {
  EXPECT_EQ(sanitize_utf8("a\xFFz"), "a" + kFffd + "z");
  EXPECT_EQ(sanitize_utf8("\x80"), kFffd);
  EXPECT_EQ(sanitize_utf8("caf\xC3\xA9\xFF"), "caf\xC3\xA9" + kFffd);
  // Overlong "/" must never decode to "/" (path traversal through a sanitizer).
  std::string overlong = sanitize_utf8("..\xC0\xAF..");
  EXPECT_EQ(overlong.find('/'), std::string::npos);
  EXPECT_EQ(overlong.substr(0, 2), "..");
  EXPECT_EQ(overlong.substr(overlong.size() - 2), "..");
  // A surrogate is not passed through.
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80").find("\xED\xA0\x80"), std::string::npos);
  // Valid text after a truncated sequence survives.
  std::string t = sanitize_utf8("x\xE2\x82\xE2\x82\xAC");
  EXPECT_EQ(t.substr(0, 1), "x");
  EXPECT_EQ(t.substr(t.size() - 3), "\xE2\x82\xAC");
}

// --- printable --------------------------------------------------------------------------------

struct PrintableCase {
  std::string name;
  std::string in;
  std::string out;
};

class Printable : public ::testing::TestWithParam<PrintableCase> {};

TEST_P(Printable, Escapes) {
  EXPECT_EQ(printable(GetParam().in), GetParam().out) << GetParam().name;
}

INSTANTIATE_TEST_SUITE_P(
    Table, Printable,
    ::testing::Values(PrintableCase{"plain", "svc-telegraf write", "svc-telegraf write"},
                      PrintableCase{"utf8 kept", "caf\xC3\xA9 \xE6\x95\xB0",
                                    "caf\xC3\xA9 \xE6\x95\xB0"},
                      PrintableCase{"newline", "a\nb", "a\\nb"},
                      PrintableCase{"cr", "a\rb", "a\\rb"}, PrintableCase{"tab", "a\tb", "a\\tb"},
                      PrintableCase{"esc", "\x1b[31mred", "\\x1b[31mred"},
                      PrintableCase{"nul", std::string("a\0b", 3), "a\\x00b"},
                      PrintableCase{"bell", "\x07", "\\x07"},
                      PrintableCase{"0x1f", "\x1f", "\\x1f"}, PrintableCase{"del", "\x7f", "\\x7f"},
                      PrintableCase{"C1 NEL",
                                    "a\xC2\x85"
                                    "b",
                                    "a\\u0085b"},
                      PrintableCase{"C1 CSI",
                                    "\xC2\x9B"
                                    "2J",
                                    "\\u009b2J"},
                      PrintableCase{"RLO U+202E", "evil\xE2\x80\xAEgpj.exe", "evil\\u202egpj.exe"},
                      PrintableCase{"LRE U+202A", "\xE2\x80\xAA", "\\u202a"},
                      PrintableCase{"isolate U+2066", "\xE2\x81\xA6", "\\u2066"},
                      PrintableCase{"PDI U+2069", "\xE2\x81\xA9", "\\u2069"},
                      PrintableCase{"line separator",
                                    "a\xE2\x80\xA8"
                                    "b",
                                    "a\\u2028b"},
                      PrintableCase{"paragraph separator", "\xE2\x80\xA9", "\\u2029"},
                      PrintableCase{"invalid byte",
                                    "a\xFF"
                                    "b",
                                    "a" + kFffd + "b"},
                      PrintableCase{"backslash kept", "a\\nb", "a\\nb"}),
    tw::testing::CaseName());

TEST(Printable, NeverContainsRawControlCharacters) {
  std::string all;
  for (int c = 0; c < 0x20; ++c) all += static_cast<char>(c);
  all += '\x7f';
  std::string out = printable(all, 4096);
  for (char c : out) {
    auto u = static_cast<unsigned char>(c);
    EXPECT_FALSE(u < 0x20 || u == 0x7f) << "raw control byte " << static_cast<int>(u);
  }
}

TEST(Printable, TruncatesLongTextWithEllipsis) {
  std::string exact(256, 'a');
  EXPECT_EQ(printable(exact), exact);  // not longer than the limit: unchanged
  std::string longer(300, 'a');
  EXPECT_EQ(printable(longer), std::string(256, 'a') + "...");
  EXPECT_EQ(printable("abcdef", 3), "abc...");
  EXPECT_EQ(printable("abc", 3), "abc");
  EXPECT_EQ(printable("", 0), "");
}

TEST(Printable, TruncationKeepsCharactersWhole) {
  std::string text;
  for (int i = 0; i < 200; ++i) text += "\xC3\xA9";  // é, 2 bytes
  for (std::size_t max : {1u, 2u, 3u, 254u, 255u, 256u}) {
    std::string out = printable(text, max);
    ASSERT_GE(out.size(), 3u);
    EXPECT_EQ(out.substr(out.size() - 3), "...") << max;
    std::string kept = out.substr(0, out.size() - 3);
    EXPECT_TRUE(is_valid_utf8(kept)) << max;
    // At most one character or escape beyond the limit.
    EXPECT_LE(kept.size(), max + 6) << max;
  }
}

// --- truncate_utf8 ----------------------------------------------------------------------------

struct TruncateCase {
  std::string in;
  std::size_t max;
  std::string out;
};

class TruncateUtf8 : public ::testing::TestWithParam<TruncateCase> {};

TEST_P(TruncateUtf8, CutsAtCharacterBoundary) {
  std::string out(truncate_utf8(GetParam().in, GetParam().max));
  EXPECT_EQ(out, GetParam().out);
  EXPECT_LE(out.size(), GetParam().max);
  EXPECT_TRUE(is_valid_utf8(out));
}

INSTANTIATE_TEST_SUITE_P(
    Table, TruncateUtf8,
    ::testing::Values(TruncateCase{"abc", 5, "abc"}, TruncateCase{"abc", 3, "abc"},
                      TruncateCase{"abc", 2, "ab"}, TruncateCase{"abc", 0, ""},
                      TruncateCase{"", 0, ""}, TruncateCase{"a\xC3\xA9", 2, "a"},
                      TruncateCase{"a\xC3\xA9", 3, "a\xC3\xA9"}, TruncateCase{"\xC3\xA9", 1, ""},
                      TruncateCase{"\xE2\x82\xAC"
                                   "x",
                                   1, ""},
                      TruncateCase{"\xE2\x82\xAC"
                                   "x",
                                   2, ""},
                      TruncateCase{"\xE2\x82\xAC"
                                   "x",
                                   3, "\xE2\x82\xAC"},
                      TruncateCase{"\xF0\x9D\x84\x9E", 3, ""},
                      TruncateCase{"ab\xF0\x9D\x84\x9E", 5, "ab"},
                      TruncateCase{"ab\xF0\x9D\x84\x9E"
                                   "c",
                                   6, "ab\xF0\x9D\x84\x9E"}));

// --- redact -----------------------------------------------------------------------------------

TEST(Redact, ReplacesEveryOccurrence) {
  EXPECT_EQ(redact("Bearer abc123 and abc123", "abc123"), "Bearer [redacted] and [redacted]");
  EXPECT_EQ(redact("abc123abc123", "abc123"), "[redacted]");  // adjacent: one marker
  EXPECT_EQ(redact("nothing here", "abc123"), "nothing here");
  EXPECT_EQ(redact("keep", ""), "keep");
  EXPECT_EQ(redact("", "x"), "");
  // Overlapping occurrences are one marker: no part of any of them is left.
  EXPECT_EQ(redact("aaaa", "aaa"), "[redacted]");
  EXPECT_EQ(redact("xaaaay", "aaa"), "x[redacted]y");
}

TEST(Redact, IgnoresLetterCase) {
  const std::string secret = "mgmt-Secret-d445d3";
  EXPECT_EQ(redact("header was BEARER MGMT-SECRET-D445D3 ...", secret),
            "header was BEARER [redacted] ...");
  EXPECT_EQ(redact("x mgmt-secret-d445d3 y", secret), "x [redacted] y");
  EXPECT_EQ(redact("x MgMt-SeCrEt-D445D3y", secret), "x [redacted]y");
  EXPECT_EQ(redact("mgmt-secret-d445d", secret), "mgmt-secret-d445d");  // not the whole secret
}

TEST(Redact, ManySecretsAndBearerCredentials) {
  const std::vector<std::string> secrets{"alpha-secret", "", "beta-secret"};
  EXPECT_EQ(redact("alpha-secret/BETA-SECRET", secrets), "[redacted]/[redacted]");
  EXPECT_EQ(redact("alpha-secretbeta-secret", secrets), "[redacted]");  // adjacent: one marker
  EXPECT_EQ(redact("nothing to hide", secrets), "nothing to hide");
  // A credential after the Bearer scheme word goes even when the secret is not known.
  const std::vector<std::string> none;
  EXPECT_EQ(redact("Authorization: Bearer eyJhbGciOi.J9x_y-z+/== was rejected", none),
            "Authorization: Bearer [redacted] was rejected");
  EXPECT_EQ(redact("bearer\ttok123 and BEARER  tok456", none),
            "bearer\t[redacted] and BEARER  [redacted]");
  EXPECT_EQ(redact("unbearer tok", none), "unbearer tok");  // not the scheme word
  EXPECT_EQ(redact("Bearer", none), "Bearer");
  EXPECT_EQ(redact("Bearer [redacted]", none), "Bearer [redacted]");
  EXPECT_TRUE(needs_redaction("x ALPHA-SECRET", secrets));
  EXPECT_TRUE(needs_redaction("Bearer abc", none));
  EXPECT_FALSE(needs_redaction("alpha-secre", secrets));
}

TEST(Redact, KnownOnlyLeavesBearerWordsInData) {
  // Token descriptions are data: only known secrets are removed from them.
  const std::vector<std::string> secrets{"alpha-secret"};
  EXPECT_EQ(redact("Bearer token for grafana", secrets, Credentials::kKnownOnly),
            "Bearer token for grafana");
  EXPECT_EQ(redact("Bearer ALPHA-SECRET", secrets, Credentials::kKnownOnly), "Bearer [redacted]");
  EXPECT_FALSE(needs_redaction("Bearer token", secrets, Credentials::kKnownOnly));
}

TEST(Redact, SecretInsideTheMarkerTerminates) {
  // The replacement contains the secret: must not loop forever or re-replace.
  EXPECT_EQ(redact("red red", "red"), "[redacted] [redacted]");
  EXPECT_EQ(redact("redacted", "redacted"), "[redacted]");
  EXPECT_EQ(redact("[", "["), "[redacted]");
}

// --- is_uuid ----------------------------------------------------------------------------------

struct UuidCase {
  std::string text;
  bool ok;
};

class IsUuid : public ::testing::TestWithParam<UuidCase> {};

TEST_P(IsUuid, Table) { EXPECT_EQ(is_uuid(GetParam().text), GetParam().ok) << GetParam().text; }

INSTANTIATE_TEST_SUITE_P(
    Table, IsUuid,
    ::testing::Values(UuidCase{"55555555-5555-4555-8555-555555555555", true},
                      UuidCase{"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", true},
                      UuidCase{"ABCDEFAB-CDEF-ABCD-EFAB-CDEFABCDEFAB", true},
                      UuidCase{"00000000-0000-0000-0000-000000000000", true}, UuidCase{"", false},
                      UuidCase{"55555555555545558555555555555555", false},
                      UuidCase{"55555555-5555-4555-8555-55555555555", false},
                      UuidCase{"55555555-5555-4555-8555-5555555555555", false},
                      UuidCase{"5555555-55555-4555-8555-555555555555", false},
                      UuidCase{"55555555_5555_4555_8555_555555555555", false},
                      UuidCase{"g5555555-5555-4555-8555-555555555555", false},
                      UuidCase{"{5555555-5555-4555-8555-55555555555}", false},
                      UuidCase{"55555555-5555-4555-8555-55555555555 ", false},
                      UuidCase{"0x0x0x00-0Xx0-00x0-x0X0-00x00XX0Xx0X", false}));

TEST(AppendCsvField, QuotesGuardsAndRepairs) {
  auto csv = [](std::string_view v, bool text = true) {
    std::string out = "x";
    append_csv_field(out, v, text);
    return out.substr(1);
  };
  EXPECT_EQ(csv("plain"), "plain");
  EXPECT_EQ(csv(""), "");
  EXPECT_EQ(csv("a,b"), "\"a,b\"");
  EXPECT_EQ(csv("say \"hi\" \"twice\""), "\"say \"\"hi\"\" \"\"twice\"\"\"");
  EXPECT_EQ(csv("\"\""), "\"\"\"\"\"\"");
  EXPECT_EQ(csv("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csv("=1+1"), "'=1+1");
  EXPECT_EQ(csv("-2,3"), "\"'-2,3\"");
  EXPECT_EQ(csv("@SUM(A1)"), "'@SUM(A1)");
  EXPECT_EQ(csv("=1+1", false), "=1+1");
  EXPECT_EQ(csv("{\"a\":1}", false), "\"{\"\"a\"\":1}\"");
  EXPECT_EQ(csv(std::string("bad \xff")), "bad \xEF\xBF\xBD");
}

}  // namespace
}  // namespace tw

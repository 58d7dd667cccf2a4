// Tests for influx/codec.h: the token list shapes of the REST APIs (Clustered, Dedicated) and of
// influxctl, tolerance where SPEC §1 asks for it and strictness where it matters.

#include "influx/codec.h"

#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <vector>

#include "core/strings.h"
#include "tests/unit/core/test_support.h"

namespace tw::influx {
namespace {

using tw::testing::PrintTo;

using tw::testing::ts;

Result<DecodedList> decode(std::string body) { return decode_token_list(body); }

DecodedList decode_ok(std::string body) {
  auto r = decode_token_list(body);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message) << "\nbody: " << body;
  return r.ok() ? std::move(*r) : DecodedList{};
}

// The GetDatabaseTokens example of clustered-management-openapi.yml, as JSON.
const char* kClusteredExample = R"([
  {"id": "55555555-5555-4555-8555-555555555555", "description": "Limited Access Token",
   "permissions": [{"action": "read", "resource": "DatabaseOne"},
                   {"action": "write", "resource": "DatabaseTwo"}],
   "createdAt": "2023-12-21T17:32:28.000Z"},
  {"id": "66666666-6666-4666-8666-666666666666", "description": "Full Access Token",
   "permissions": [{"action": "write", "resource": "*"}],
   "createdAt": "2024-03-02T04:20:19.000Z"},
  {"id": "77777777-7777-4777-8777-777777777777", "description": "No Access Token",
   "permissions": [],
   "createdAt": "2024-03-02T04:20:19.000Z"}
])";

// The GetDatabaseTokens example of cloud-dedicated-management-openapi.yml, as JSON.
const char* kDedicatedExample = R"([
  {"accountId": "11111111-1111-4111-8111-111111111111",
   "clusterId": "33333333-3333-4333-8333-333333333333",
   "id": "55555555-5555-4555-8555-555555555555", "description": "Limited Access Token",
   "permissions": [{"action": "read", "resource": "DatabaseOne"},
                   {"action": "write", "resource": "DatabaseTwo"}],
   "createdAt": "2023-12-21T17:32:28.000Z"},
  {"accountId": "11111111-1111-4111-8111-111111111111",
   "clusterId": "33333333-3333-4333-8333-333333333333",
   "id": "66666666-6666-4666-8666-666666666666", "description": "Full Access Token",
   "permissions": [{"action": "write", "resource": "*"}],
   "createdAt": "2024-03-02T04:20:19.000Z"},
  {"accountId": "11111111-1111-4111-8111-111111111111",
   "clusterId": "33333333-3333-4333-8333-333333333333",
   "id": "77777777-7777-4777-8777-777777777777", "description": "No Access Token",
   "permissions": [],
   "createdAt": "2024-03-02T04:20:19.000Z"}
])";

void expect_spec_example(const DecodedList& list) {
  ASSERT_EQ(list.tokens.size(), 3u);
  const Token& a = list.tokens[0];
  EXPECT_EQ(a.id, "55555555-5555-4555-8555-555555555555");
  EXPECT_EQ(a.description, "Limited Access Token");
  EXPECT_EQ(a.permissions,
            (std::vector<Permission>{{"read", "DatabaseOne"}, {"write", "DatabaseTwo"}}));
  EXPECT_EQ(a.created_at, ts("2023-12-21T17:32:28Z"));
  EXPECT_FALSE(a.expires_at.has_value());
  EXPECT_FALSE(a.revoked_at.has_value());
  EXPECT_EQ(list.tokens[1].permissions, (std::vector<Permission>{{"write", "*"}}));
  EXPECT_EQ(list.tokens[1].created_at, ts("2024-03-02T04:20:19Z"));
  EXPECT_TRUE(list.tokens[2].permissions.empty());
  EXPECT_EQ(list.tokens[2].description, "No Access Token");
  EXPECT_FALSE(list.replaced_invalid_utf8);
}

TEST(DecodeTokenList, ClusteredSpecExample) { expect_spec_example(decode_ok(kClusteredExample)); }

TEST(DecodeTokenList, DedicatedSpecExampleIgnoresAccountAndClusterIds) {
  expect_spec_example(decode_ok(kDedicatedExample));
}

TEST(DecodeTokenList, RestTimestampsAndRevokedToken) {
  auto list = decode_ok(R"([{"id":"a","description":"d","permissions":[],
      "createdAt":"2025-01-01T00:00:00Z","expiresAt":"2025-04-01T00:00:00.123456789+02:00",
      "revokedAt":"2025-02-01T10:00:00.5z"}])");
  ASSERT_EQ(list.tokens.size(), 1u);
  EXPECT_EQ(list.tokens[0].created_at, ts("2025-01-01T00:00:00Z"));
  EXPECT_EQ(list.tokens[0].expires_at, ts("2025-03-31T22:00:00.123Z"));
  EXPECT_EQ(list.tokens[0].revoked_at, ts("2025-02-01T10:00:00.500Z"));
}

// influxctl `token list --format json`: snake_case keys, protobuf timestamps, permission ids.
TEST(DecodeTokenList, InfluxctlSnakeCaseShape) {
  auto list = decode_ok(R"([
    {"account_id": "0x0x0x00-0Xx0-00x0-x0X0-00x00XX0Xx0X",
     "cluster_id": "X0x0xxx0-0XXx-000x-00x0-0X000Xx00000",
     "id": "000x0000-000x-0000-X0x0-X0X00000x000",
     "description": "read/write for mydb1",
     "permissions": [{"id": "00000000-0000-0000-0000-000000000000", "action": "read",
                      "resource": "mydb1"}],
     "created_at": {"seconds": 1710274420, "nanos": 436126000},
     "expires_at": {"seconds": "1719491696"},
     "revoked_at": {"seconds": "1710274650", "nanos": 63389000}},
    {"id": "b", "description": "never expires", "permissions": [],
     "created_at": {"seconds": 1710274420}}
  ])");
  ASSERT_EQ(list.tokens.size(), 2u);
  const Token& a = list.tokens[0];
  EXPECT_EQ(a.id, "000x0000-000x-0000-X0x0-X0X00000x000");
  EXPECT_EQ(a.description, "read/write for mydb1");
  EXPECT_EQ(a.permissions, (std::vector<Permission>{{"read", "mydb1"}}));
  EXPECT_EQ(a.created_at, Timestamp(Duration(1710274420436)));
  EXPECT_EQ(a.expires_at, Timestamp(Duration(1719491696000)));  // nanos omitted: zero
  EXPECT_EQ(a.revoked_at, Timestamp(Duration(1710274650063)));  // truncated to milliseconds
  const Token& b = list.tokens[1];
  EXPECT_EQ(b.created_at, Timestamp(Duration(1710274420000)));
  EXPECT_FALSE(b.expires_at.has_value());  // key omitted when unset
  EXPECT_FALSE(b.revoked_at.has_value());
}

TEST(DecodeTokenList, ProtobufTimestampEdgeValues) {
  auto list = decode_ok(R"([
    {"id":"a","created_at":{"nanos":999999999,"seconds":-1}},
    {"id":"b","created_at":{"seconds":"0","nanos":"1000000"}},
    {"id":"c","created_at":{"seconds":253402300799}},
    {"id":"d","created_at":{"seconds":1,"nanos":1,"extra":true}}
  ])");
  ASSERT_EQ(list.tokens.size(), 4u);
  EXPECT_EQ(list.tokens[0].created_at, Timestamp(Duration(-1)));
  EXPECT_EQ(list.tokens[1].created_at, Timestamp(Duration(1)));
  EXPECT_EQ(list.tokens[2].created_at, ts("9999-12-31T23:59:59Z"));
  EXPECT_EQ(list.tokens[3].created_at, Timestamp(Duration(1000)));
}

TEST(DecodeTokenList, NullAndMissingFields) {
  auto list = decode_ok(R"([
    {"id":"a","description":null,"permissions":null,"createdAt":null,"expiresAt":null,
     "revokedAt":null},
    {"id":"b"},
    {"id":"c","expires_at":null,"revoked_at":null,"created_at":null},
    {"id":"d","createdAt":"","expiresAt":""}
  ])");
  ASSERT_EQ(list.tokens.size(), 4u);
  for (const auto& t : list.tokens) {
    EXPECT_EQ(t.description, "") << t.id;
    EXPECT_TRUE(t.permissions.empty()) << t.id;
    EXPECT_FALSE(t.created_at.has_value()) << t.id;
    EXPECT_FALSE(t.expires_at.has_value()) << t.id;
    EXPECT_FALSE(t.revoked_at.has_value()) << t.id;
  }
}

TEST(DecodeTokenList, UnknownFieldsOfAnyShapeAreIgnored) {
  auto list = decode_ok(R"([{"zzz":{"nested":[1,{"id":"not-me"}]},"id":"a","accessToken":"apiv1_x",
      "future":[null,true,1.5e10,"s"],"description":"d","createdBy":{"id":"u"},"n":-0}])");
  ASSERT_EQ(list.tokens.size(), 1u);
  EXPECT_EQ(list.tokens[0].id, "a");
  EXPECT_EQ(list.tokens[0].description, "d");
}

TEST(DecodeTokenList, EmptyPermissionShapes) {
  auto list = decode_ok(R"([{"id":"a","permissions":null},{"id":"b","permissions":{}},
                            {"id":"c","permissions":[]},{"id":"d","permissions": { } }])");
  ASSERT_EQ(list.tokens.size(), 4u);
  for (const auto& t : list.tokens) EXPECT_TRUE(t.permissions.empty()) << t.id;
}

TEST(DecodeTokenList, PermissionsAreSorted) {
  auto list = decode_ok(R"([{"id":"a","permissions":[
      {"action":"write","resource":"b"},{"resource":"z","action":"read"},
      {"action":"write","resource":"*"},{"action":"read","resource":"a"}]}])");
  ASSERT_EQ(list.tokens.size(), 1u);
  EXPECT_EQ(
      list.tokens[0].permissions,
      (std::vector<Permission>{{"read", "a"}, {"read", "z"}, {"write", "*"}, {"write", "b"}}));
}

TEST(DecodeTokenList, EmptyArray) {
  auto list = decode_ok("[]");
  EXPECT_TRUE(list.tokens.empty());
  auto ws = decode_ok(" \n\t[ ]\r\n ");
  EXPECT_TRUE(ws.tokens.empty());
}

TEST(DecodeTokenList, EscapesInStrings) {
  auto list = decode_ok(
      R"([{"id":"a","description":"tab\there \"q\" \\ \/ \u00e9 \ud834\udd1e \u0000x"}])");
  ASSERT_EQ(list.tokens.size(), 1u);
  EXPECT_EQ(
      list.tokens[0].description,
      std::string("tab\there \"q\" \\ / \xC3\xA9 \xF0\x9D\x84\x9E ") + std::string(1, '\0') + "x");
}

TEST(DecodeTokenList, InvalidUtf8IsReplacedAndFlagged) {
  auto list = decode_ok("[{\"id\":\"a\",\"description\":\"bad \xFF\xFE byte \xC0\xAF\"}]");
  ASSERT_EQ(list.tokens.size(), 1u);
  EXPECT_TRUE(list.replaced_invalid_utf8);
  EXPECT_TRUE(is_valid_utf8(list.tokens[0].description));
  EXPECT_EQ(list.tokens[0].description.substr(0, 4), "bad ");
  EXPECT_NE(list.tokens[0].description.find("\xEF\xBF\xBD"), std::string::npos);
  EXPECT_NE(list.tokens[0].description.find(" byte "), std::string::npos);
}

TEST(DecodeTokenList, LoneSurrogateEscapeInDescriptionBecomesReplacement) {
  auto list = decode_ok(R"([{"id":"a","description":"x\ud800y","permissions":[]},
                            {"id":"b","description":"\udc00"},
                            {"id":"c","description":"hi\ud800\u0041"}])");
  ASSERT_EQ(list.tokens.size(), 3u);
  EXPECT_EQ(list.tokens[0].description, "x\xEF\xBF\xBDy");
  EXPECT_EQ(list.tokens[1].description, "\xEF\xBF\xBD");
  EXPECT_EQ(list.tokens[2].description,
            "hi\xEF\xBF\xBD"
            "A");
  for (const auto& t : list.tokens) EXPECT_TRUE(is_valid_utf8(t.description)) << t.id;
}

TEST(DecodeTokenList, TenThousandTokens) {
  std::string body = "[";
  for (int i = 0; i < 10000; ++i) {
    if (i > 0) body += ',';
    body += R"({"id":"tok-)" + std::to_string(i) + R"(","description":"svc )" + std::to_string(i) +
            R"(","permissions":[{"action":"write","resource":"db)" + std::to_string(i % 7) +
            R"("},{"action":"read","resource":"*"}],"createdAt":"2025-01-01T00:00:00.000Z",)"
            R"("expiresAt":"2026-01-01T00:00:00.000Z"})";
  }
  body += "]";
  auto list = decode_ok(body);
  ASSERT_EQ(list.tokens.size(), 10000u);
  EXPECT_EQ(list.tokens[9999].id, "tok-9999");
  EXPECT_EQ(list.tokens[9999].description, "svc 9999");
  EXPECT_EQ(list.tokens[9999].permissions,
            (std::vector<Permission>{{"read", "*"}, {"write", "db3"}}));
  EXPECT_EQ(list.tokens[0].expires_at, ts("2026-01-01T00:00:00Z"));
}

// --- rejected lists: the caller must never act on a partial inventory -------------------------

struct BadListCase {
  std::string name;
  std::string body;
  std::vector<std::string> message_has;  // substrings of the error message
};

class DecodeTokenListBad : public ::testing::TestWithParam<BadListCase> {};

TEST_P(DecodeTokenListBad, RejectsTheWholeList) {
  auto r = decode(GetParam().body);
  ASSERT_FALSE(r.ok()) << GetParam().name << ": decoded " << r->tokens.size() << " tokens";
  EXPECT_EQ(r.error().code, ErrorCode::kParse);
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << r.error().message;
  for (const auto& s : GetParam().message_has) {
    EXPECT_NE(r.error().message.find(s), std::string::npos)
        << GetParam().name << ": \"" << r.error().message << "\" lacks \"" << s << "\"";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, DecodeTokenListBad,
    ::testing::Values(
        BadListCase{"element without id",
                    R"([{"id":"a"},{"description":"no id"}])",
                    {"token #1", "\"id\""}},
        BadListCase{
            "first element without id", R"([{"description":"x"},{"id":"a"}])", {"token #0"}},
        BadListCase{"empty id", R"([{"id":""}])", {"token #0", "\"id\""}},
        BadListCase{"numeric id", R"([{"id":42}])", {"token #0", "\"id\""}},
        BadListCase{"null id", R"([{"id":null}])", {"token #0"}},
        BadListCase{"duplicate ids", R"([{"id":"a"},{"id":"b"},{"id":"a"}])", {"\"a\"", "twice"}},
        BadListCase{"element not an object", R"([{"id":"a"},42])", {"token #1"}},
        BadListCase{"object body", R"({"tokens":[{"id":"a"}]})", {"array"}},
        BadListCase{"null body", "null", {}}, BadListCase{"string body", R"("[]")", {}},
        BadListCase{"empty body", "", {}}, BadListCase{"whitespace body", "   ", {}},
        BadListCase{"truncated in element", R"([{"id":"a"},{"id":"b")", {}},
        BadListCase{"truncated after comma", R"([{"id":"a"},)", {}},
        BadListCase{"truncated string", R"([{"id":"a","description":"abc)", {}},
        BadListCase{"missing close bracket", R"([{"id":"a"})", {}},
        BadListCase{"trailing garbage", R"([{"id":"a"}] x)", {}},
        BadListCase{"two arrays", R"([{"id":"a"}][])", {"trailing"}},
        BadListCase{"trailing object", R"([] {})", {}},
        BadListCase{"bad timestamp string",
                    R"([{"id":"a","createdAt":"yesterday"}])",
                    {"token #0", "createdAt"}},
        BadListCase{"timestamp without zone",
                    R"([{"id":"a","expiresAt":"2025-01-01T00:00:00"}])",
                    {"token #0", "expiresAt"}},
        BadListCase{"timestamp as number",
                    R"([{"id":"a","revokedAt":1700000000}])",
                    {"token #0", "revokedAt"}},
        BadListCase{"nanos out of range",
                    R"([{"id":"a","created_at":{"seconds":1,"nanos":1000000000}}])",
                    {"token #0", "created_at"}},
        BadListCase{"seconds not integer",
                    R"([{"id":"a","expires_at":{"seconds":"soon"}}])",
                    {"token #0", "expires_at"}},
        BadListCase{"seconds fractional",
                    R"([{"id":"a","expires_at":{"seconds":1.5}}])",
                    {"token #0", "expires_at"}},
        BadListCase{"seconds beyond year 9999",
                    R"([{"id":"a","created_at":{"seconds":253402300800}}])",
                    {"token #0", "created_at"}},
        BadListCase{"permissions non-empty object",
                    R"([{"id":"a","permissions":{"action":"read"}}])",
                    {"token #0", "permissions"}},
        BadListCase{"permissions string",
                    R"([{"id":"a","permissions":"read"}])",
                    {"token #0", "permissions"}},
        BadListCase{"permission without resource",
                    R"([{"id":"a","permissions":[{"action":"read"}]}])",
                    {"token #0", "permissions"}},
        BadListCase{"permission resource number",
                    R"([{"id":"a","permissions":[{"action":"read","resource":1}]}])",
                    {"token #0", "permissions"}},
        BadListCase{"permission element not object",
                    R"([{"id":"a","permissions":["read"]}])",
                    {"token #0", "permissions"}},
        BadListCase{
            "description number", R"([{"id":"a","description":42}])", {"token #0", "description"}},
        BadListCase{"second token bad",
                    R"([{"id":"a"},{"id":"b"},{"id":"c","createdAt":7}])",
                    {"token #2"}}),
    tw::testing::CaseName());

// --- decode_token (GET/PATCH of one token) ----------------------------------------------------

TEST(DecodeToken, OneObject) {
  auto t = decode_token(R"({"id":"55555555-5555-4555-8555-555555555555","description":"d",
      "permissions":[{"action":"write","resource":"b"},{"action":"read","resource":"a"}],
      "createdAt":"2023-12-21T17:32:28.000Z"})");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->id, "55555555-5555-4555-8555-555555555555");
  EXPECT_EQ(t->permissions, (std::vector<Permission>{{"read", "a"}, {"write", "b"}}));
  EXPECT_EQ(t->created_at, ts("2023-12-21T17:32:28Z"));
}

TEST(DecodeToken, Rejects) {
  for (const char* bad : {"", "[]", R"([{"id":"a"}])", R"({"description":"x"})", R"({"id":"a"} x)",
                          R"({"id":"a")", "null"}) {
    auto t = decode_token(bad);
    EXPECT_FALSE(t.ok()) << bad;
    if (!t.ok()) {
      EXPECT_EQ(t.error().code, ErrorCode::kParse) << bad;
    }
  }
}

// --- encode_permissions_update / decode_error_message ----------------------------------------

TEST(EncodePermissionsUpdate, PatchBody) {
  EXPECT_EQ(encode_permissions_update({}), R"({"permissions":[]})");
  EXPECT_EQ(encode_permissions_update({{"read", "db1"}, {"write", "d\"b"}}),
            R"({"permissions":[{"action":"read","resource":"db1"},)"
            R"({"action":"write","resource":"d\"b"}]})");
}

TEST(EncodePermissionsUpdate, RoundTripsThroughTheDecoder) {
  std::vector<Permission> perms{{"read", "a"}, {"write", "\xE6\x95\xB0"}};
  std::string body = encode_permissions_update(perms);
  // Wrap it into a token so the list decoder reads the same array back.
  std::string token = R"({"id":"x",)" + body.substr(1);
  auto t = decode_token(token);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->permissions, perms);
}

struct ErrorBodyCase {
  std::string body;
  std::string message;
};

class DecodeErrorMessage : public ::testing::TestWithParam<ErrorBodyCase> {};

TEST_P(DecodeErrorMessage, Table) {
  EXPECT_EQ(decode_error_message(GetParam().body), GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Table, DecodeErrorMessage,
    ::testing::Values(ErrorBodyCase{R"({"code":401,"message":"unauthorized"})", "unauthorized"},
                      ErrorBodyCase{R"({"message":"not found","code":404})", "not found"},
                      ErrorBodyCase{R"({"code":500,"extra":{"a":1},"message":"boom"})", "boom"},
                      ErrorBodyCase{R"({"code":500})", ""}, ErrorBodyCase{R"({"message":42})", ""},
                      ErrorBodyCase{R"(["message"])", ""},
                      ErrorBodyCase{"<html>Bad Gateway</html>", ""}, ErrorBodyCase{"", ""},
                      ErrorBodyCase{"{\"message\":\"bad \xFF\"}", ""},
                      ErrorBodyCase{R"({"message":"line\nbreak"})", "line\nbreak"}));

}  // namespace
}  // namespace tw::influx

namespace tw::influx {
namespace {

TEST(DecodeTokenListNull, NullIsAnEmptyListOnlyWhereAGoCliMayPrintIt) {
  auto rest = decode_token_list("null");
  ASSERT_FALSE(rest.ok()) << "the REST API answers an array; null there is not \"no tokens\"";
  for (const char* body : {"null", " null\n", "[]"}) {
    auto ctl = decode_token_list(body, EmptyList::kNullOrArray);
    ASSERT_TRUE(ctl.ok()) << body << ": " << ctl.error().message;
    EXPECT_TRUE(ctl->tokens.empty()) << body;
  }
  for (const char* body : {"null null", "null []", "nul", "null,"}) {
    EXPECT_FALSE(decode_token_list(body, EmptyList::kNullOrArray).ok()) << body;
  }
}

TEST(DecodeManagementTokens, ReadsTheDocumentedShape) {
  // docs-v2 admin/tokens/management/list.md: snake_case, {seconds[,nanos]}, unset times absent.
  auto list = decode_management_tokens(R"([
    {"id":"m1","account_id":"a","token_prefix":"M.V1.+5Jk",
     "revoked_at":{"seconds":1710273809,"nanos":948178000},
     "created_at":{"seconds":1710273527,"nanos":622095000},
     "description":"Client1 token","created_by":"u"},
    {"id":"m2","token_prefix":"M.V1.nAHw","expires_at":{"seconds":1719491696},
     "description":null}])");
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].token_prefix, "M.V1.+5Jk");
  EXPECT_EQ((*list)[0].revoked_at, Timestamp(Duration(1710273809948)));
  EXPECT_FALSE((*list)[0].expires_at.has_value());
  EXPECT_EQ((*list)[1].expires_at, Timestamp(std::chrono::seconds(1719491696)));
  EXPECT_EQ((*list)[1].description, "");
  auto none = decode_management_tokens("null");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  for (const char* bad : {R"([{"token_prefix":"x"}])", R"({"id":"m"})", R"([{"id":"m",)",
                          R"([{"id":"m","expires_at":"soon"}])", R"([{"id":7}])"}) {
    EXPECT_FALSE(decode_management_tokens(bad).ok()) << bad;
  }
}

// --- repeated JSON keys in a token list ---------------------------------------------------

TEST(RepeatedKeys, SiblingObjectsMayUseTheSameKeys) {
  auto list = decode_token_list(R"([{"id":"a","description":"x"},{"id":"b","description":"y"}])");
  ASSERT_TRUE(list.ok()) << list.error().message;
  EXPECT_EQ(list->tokens.size(), 2u);
}

struct RepeatCase {
  const char* name;
  const char* body;
  const char* says;
};

class RepeatedKeysInTokens : public ::testing::TestWithParam<RepeatCase> {};

TEST_P(RepeatedKeysInTokens, FailTheWholeList) {
  auto list = decode_token_list(GetParam().body);
  ASSERT_FALSE(list.ok()) << GetParam().name;
  EXPECT_EQ(list.error().code, ErrorCode::kParse);
  EXPECT_NE(list.error().message.find(GetParam().says), std::string::npos) << list.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Table, RepeatedKeysInTokens,
    ::testing::Values(
        RepeatCase{"id", R"([{"id":"k1","id":"k2","description":"a","description":"b"}])",
                   "the key \"id\" appears twice"},
        RepeatCase{"description", R"([{"id":"k1","description":"a","description":"b"}])",
                   "the key \"description\" appears twice"},
        RepeatCase{
            "permission",
            R"([{"id":"k1","permissions":[{"action":"read","action":"write","resource":"db"}]}])",
            "the key \"action\" appears twice"},
        RepeatCase{"timestamp", R"([{"id":"k1","created_at":{"seconds":1,"seconds":2}}])",
                   "the key \"seconds\" appears twice"},
        RepeatCase{"unknown field", R"([{"id":"k1","accountId":"x","accountId":"y"}])",
                   "the key \"accountId\" appears twice"},
        RepeatCase{
            "two spellings",
            R"([{"id":"k1","createdAt":"2024-01-01T00:00:00Z","created_at":{"seconds":1}}])",
            "token #0 field \"created_at\" repeats a timestamp already given under another name"}),
    [](const ::testing::TestParamInfo<RepeatCase>& p) {
      std::string n = p.param.name;
      for (char& c : n) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return n;
    });

}  // namespace
}  // namespace tw::influx

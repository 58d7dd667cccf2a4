// Tests for influx/influxdb3_codec.h: the system.tokens rows of InfluxDB 3 Core/Enterprise
// (real-behaviour.md §A6), every shape alone and all of them mixed, and the permission strings.

#include "influx/influxdb3_codec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "influx/redaction.h"
#include "tests/unit/core/test_support.h"

namespace tw::influx {
namespace {

using tw::testing::ts;

std::vector<Permission> perms(std::vector<Permission> p) {
  sort_permissions(p);
  return p;
}

Influxdb3Rows decode_ok(std::string_view body) {
  auto rows = decode_influxdb3_rows(body);
  EXPECT_TRUE(rows.ok()) << body << "\n" << (rows.ok() ? "" : rows.error().message);
  return rows.ok() ? std::move(*rows) : Influxdb3Rows{};
}

// The error message, or a failure if the body decodes.
std::string decode_error(std::string_view body) {
  auto rows = decode_influxdb3_rows(body);
  EXPECT_FALSE(rows.ok()) << "accepted: " << body;
  if (rows.ok()) return {};
  EXPECT_EQ(rows.error().code, ErrorCode::kParse);
  EXPECT_EQ(rows.error().message.find('\n'), std::string::npos) << rows.error().message;
  return rows.error().message;
}

// ---- rows, one shape at a time ----------------------------------------------------------------

TEST(Influxdb3Codec, AnEmptyTableIsAnEmptyList) {
  auto rows = decode_ok("[]");
  EXPECT_TRUE(rows.list.tokens.empty());
  EXPECT_TRUE(rows.names.empty());
  EXPECT_TRUE(decode_ok(" [ ]\n").list.tokens.empty());
}

TEST(Influxdb3Codec, AnOperatorTokenRowAsCoreSendsIt) {
  auto rows = decode_ok(
      R"([{"token_id":0,"name":"_admin","hash":"5c3b2e7f1","created_at":"2025-04-18T14:02:45.331","permissions":"*:*:*"}])");
  ASSERT_EQ(rows.list.tokens.size(), 1u);
  const Token& t = rows.list.tokens[0];
  EXPECT_EQ(t.id, "0");
  EXPECT_EQ(t.description, "_admin");
  EXPECT_EQ(rows.names[0], "_admin");
  EXPECT_EQ(t.created_at, ts("2025-04-18T14:02:45.331Z"));
  EXPECT_FALSE(t.expires_at) << "expiry absent: never expires";
  EXPECT_FALSE(t.revoked_at) << "this server has no revoked state";
  EXPECT_EQ(t.permissions, perms({{"admin", "*"}, {"read", "*"}, {"write", "*"}}));
  EXPECT_TRUE(rows.list.anomalies.empty());
}

TEST(Influxdb3Codec, TheHashColumnIsOptional) {
  // A server started --without-auth has no hash column; older ones sent the full hex hash.
  auto without = decode_ok(
      R"([{"token_id":1,"name":"a","created_at":"2025-01-01T00:00:01","permissions":"*:*:*"}])");
  auto full = decode_ok(
      R"([{"token_id":1,"name":"a","hash":"5c3b2e7f1a9d0c4e8b6f2a1d3c5e7f9b0a2c4e6f8a1b3c5d7e9f0a2b4c6d8e0f","created_at":"2025-01-01T00:00:01","permissions":"*:*:*"}])");
  auto short_hash = decode_ok(
      R"([{"token_id":1,"name":"a","hash":"5c3b2e7f1","created_at":"2025-01-01T00:00:01","permissions":"*:*:*"}])");
  ASSERT_EQ(without.list.tokens.size(), 1u);
  EXPECT_EQ(without.list.tokens, full.list.tokens);
  EXPECT_EQ(without.list.tokens, short_hash.list.tokens);
}

TEST(Influxdb3Codec, ZoneLessTimesAreUtcAndAZoneIsHonoured) {
  auto rows = decode_ok(R"([
    {"token_id":1,"name":"whole","created_at":"2025-04-18T14:02:45","expiry":"2026-04-18T14:02:45","permissions":""},
    {"token_id":2,"name":"millis","created_at":"2025-04-18T14:02:45.007","expiry":"2026-04-18T14:02:45.999","permissions":""},
    {"token_id":3,"name":"zoned","created_at":"2025-04-18T16:02:45+02:00","expiry":"2026-04-18T14:02:45Z","permissions":""}
  ])");
  ASSERT_EQ(rows.list.tokens.size(), 3u);
  EXPECT_EQ(rows.list.tokens[0].created_at, ts("2025-04-18T14:02:45Z"));
  EXPECT_EQ(rows.list.tokens[0].expires_at, ts("2026-04-18T14:02:45Z"));
  EXPECT_EQ(rows.list.tokens[1].created_at, ts("2025-04-18T14:02:45.007Z"));
  EXPECT_EQ(rows.list.tokens[1].expires_at, ts("2026-04-18T14:02:45.999Z"));
  EXPECT_EQ(rows.list.tokens[2].created_at, ts("2025-04-18T14:02:45Z"));
  EXPECT_EQ(rows.list.tokens[2].expires_at, ts("2026-04-18T14:02:45Z"));
}

TEST(Influxdb3Codec, AbsentAndNullColumnsMeanUnset) {
  auto rows = decode_ok(R"([
    {"token_id":1,"name":"absent","permissions":"db:a:read"},
    {"token_id":2,"name":"nulls","hash":null,"created_at":null,"description":null,
     "created_by_token_id":null,"updated_at":null,"updated_by_token_id":null,"expiry":null,
     "permissions":"db:a:read"},
    {"token_id":3,"name":"set","created_at":"2025-01-01T00:00:00.100","description":"reads a",
     "created_by_token_id":0,"updated_at":"2025-02-01T00:00:00","updated_by_token_id":0,
     "expiry":"2025-07-01T00:00:00","permissions":"db:a:read"}
  ])");
  ASSERT_EQ(rows.list.tokens.size(), 3u);
  for (int i : {0, 1}) {
    const Token& t = rows.list.tokens[static_cast<std::size_t>(i)];
    EXPECT_FALSE(t.created_at) << t.id;
    EXPECT_FALSE(t.expires_at) << t.id;
    EXPECT_EQ(t.description, rows.names[static_cast<std::size_t>(i)])
        << "no description: the name alone";
  }
  const Token& set = rows.list.tokens[2];
  EXPECT_EQ(set.description, "set (reads a)") << "name plus description";
  EXPECT_EQ(rows.names[2], "set") << "the name alone addresses the token";
  EXPECT_EQ(set.expires_at, ts("2025-07-01T00:00:00Z"));
  EXPECT_TRUE(rows.list.anomalies.empty()) << "absent or null is not a placeholder";
}

TEST(Influxdb3Codec, APlaceholderCreatedAtIsAnAnomalyButExpiryIsTakenAsSent) {
  auto rows = decode_ok(
      R"([{"token_id":4,"name":"epoch","created_at":"1970-01-01T00:00:00","expiry":"1970-01-01T00:00:00","permissions":"db:a:read"}])");
  ASSERT_EQ(rows.list.tokens.size(), 1u);
  EXPECT_FALSE(rows.list.tokens[0].created_at);
  EXPECT_EQ(rows.list.tokens[0].expires_at, ts("1970-01-01T00:00:00Z"))
      << "an expiry in 1970 is expired, not 'never'";
  ASSERT_EQ(rows.list.anomalies.size(), 1u);
  EXPECT_EQ(rows.list.anomalies[0].token_id, "4");
  EXPECT_EQ(rows.list.anomalies[0].reason, kCreatedAtUnset);
}

TEST(Influxdb3Codec, TokenIdsAreNonNegativeIntegers) {
  auto rows = decode_ok(
      R"([{"token_id":0,"name":"a","permissions":""},{"token_id":9223372036854775807,"name":"b","permissions":""}])");
  ASSERT_EQ(rows.list.tokens.size(), 2u);
  EXPECT_EQ(rows.list.tokens[0].id, "0");
  EXPECT_EQ(rows.list.tokens[1].id, "9223372036854775807");
  struct Case {
    const char* id;
    const char* says;
  };
  for (const Case& c :
       {Case{"\"7\"", "is not a number"}, Case{"-1", "non-negative"},
        Case{"1.5", "non-negative 64-bit integer"}, Case{"1e3", "non-negative 64-bit integer"},
        Case{"18446744073709551615", "non-negative 64-bit integer"},
        Case{"null", "is not a number"}, Case{"true", "is not a number"}}) {
    std::string body = std::string(R"([{"token_id":)") + c.id + R"(,"name":"a","permissions":""}])";
    std::string e = decode_error(body);
    EXPECT_NE(e.find("row #0 column \"token_id\""), std::string::npos) << e;
    EXPECT_NE(e.find(c.says), std::string::npos) << c.id << ": " << e;
  }
}

TEST(Influxdb3Codec, RequiredColumnsAndUniqueIdsAndNames) {
  struct Case {
    const char* body;
    const char* says;
  };
  for (
      const Case& c : {
          Case{R"([{"name":"a","permissions":""}])", "row #0 has no \"token_id\""},
          Case{R"([{"token_id":1,"permissions":""}])", "row #0 has no \"name\""},
          Case{R"([{"token_id":1,"name":"","permissions":""}])", "column \"name\" is empty"},
          Case{R"([{"token_id":1,"name":null,"permissions":""}])",
               "column \"name\" is not a string"},
          Case{R"([{"token_id":1,"name":"a"}])", "row #0 has no \"permissions\""},
          Case{R"([{"token_id":1,"name":"a","permissions":null}])",
               "column \"permissions\" is not a string"},
          Case{R"([{"token_id":1,"name":"a","permissions":["db:a:read"]}])", "is not a string"},
          Case{R"([{"token_id":1,"name":"a","permissions":"","created_at":17}])",
               "is not a time string"},
          Case{R"([{"token_id":1,"name":"a","permissions":"","expiry":"soon"}])",
               "column \"expiry\": invalid timestamp"},
          Case{
              R"([{"token_id":1,"name":"a","permissions":""},{"token_id":1,"name":"b","permissions":""}])",
              "token_id 1 appears twice"},
          Case{
              R"([{"token_id":1,"name":"a","permissions":""},{"token_id":2,"name":"a","permissions":""}])",
              "token name \"a\" appears twice"},
          Case{R"([{"token_id":1,"token_id":2,"name":"a","permissions":""}])",
               "appears twice in one object"},
          Case{R"({"token_id":1})", "not a JSON array"},
          Case{R"([1])", "row #0 is not a JSON object"},
          Case{R"([{"token_id":1,"name":"a","permissions":""}] [])", "trailing data"},
          Case{R"([{"token_id":1,"name":"a","permissions":""},{"token_id":2,"na)",
               "not valid JSON"},
          Case{"", "not valid JSON"},
      }) {
    std::string e = decode_error(c.body);
    EXPECT_NE(e.find(c.says), std::string::npos) << c.body << "\n  -> " << e;
  }
}

// ---- permission strings -----------------------------------------------------------------------

TEST(Influxdb3Permissions, ValidStrings) {
  struct Case {
    const char* text;
    std::vector<Permission> want;
  };
  for (const Case& c : {
           Case{"", {}},
           Case{"  ", {}},
           Case{"*:*:*", {{"admin", "*"}, {"read", "*"}, {"write", "*"}}},
           Case{"db:a,b:read,write",
                {{"read", "a"}, {"read", "b"}, {"write", "a"}, {"write", "b"}}},
           Case{"db:*:read", {{"read", "*"}}},
           Case{"db:a:*", {{"read", "a"}, {"write", "a"}}},
           Case{"db:a:create,delete", {{"create", "a"}, {"delete", "a"}}},
           Case{"system:health:read", {{"read", "system:health"}}},
           Case{"system:*:read", {{"read", "system:*"}}},
           Case{"token:*:read,create", {{"create", "token:*"}, {"read", "token:*"}}},
           Case{"db:a:write;system:health,metrics:read",
                {{"read", "system:health"}, {"read", "system:metrics"}, {"write", "a"}}},
           Case{" db : a , b : read ; db:a:read ",
                {{"read", "a"}, {"read", "b"}}},  // spaces, repeats
           Case{"db:my-db_1/x:read", {{"read", "my-db_1/x"}}},
       }) {
    auto p = parse_influxdb3_permissions(c.text);
    ASSERT_TRUE(p.ok()) << c.text << ": " << p.error().message;
    EXPECT_EQ(*p, perms(c.want)) << c.text;
  }
}

TEST(Influxdb3Permissions, MalformedStringsAreRefusedNamingThePart) {
  struct Case {
    const char* text;
    const char* says;
  };
  for (const Case& c : {
           Case{"db:a", "is not RESOURCE_TYPE:NAMES:ACTIONS"},
           Case{"db:a:read:write", "is not RESOURCE_TYPE:NAMES:ACTIONS"},
           Case{"read", "is not RESOURCE_TYPE:NAMES:ACTIONS"},
           Case{"db::read", "empty resource name or action"},
           Case{"db:a:", "empty resource name or action"},
           Case{"db:a,,b:read", "empty resource name or action"},
           Case{":a:read", "not a lower-case word"},
           Case{"DB:a:read", "not a lower-case word"},
           Case{"db:a:READ", "action that is not a lower-case word"},
           Case{"db:a:re ad", "action that is not a lower-case word"},
           Case{"*:a:*", "only \"*:*:*\" may have"},
           Case{"*:*:read", "only \"*:*:*\" may have"},
           Case{"db:*,a:read", "mixes \"*\" with resource names"},
           Case{"db:a:read;", "empty part"},
           Case{";", "empty part"},
       }) {
    auto p = parse_influxdb3_permissions(c.text);
    ASSERT_FALSE(p.ok()) << "accepted \"" << c.text << "\"";
    EXPECT_EQ(p.error().code, ErrorCode::kParse);
    EXPECT_NE(p.error().message.find(c.says), std::string::npos)
        << c.text << "\n  -> " << p.error().message;
  }
}

TEST(Influxdb3Codec, AMalformedPermissionFailsTheWholeTable) {
  std::string e = decode_error(
      R"([{"token_id":0,"name":"_admin","permissions":"*:*:*"},{"token_id":1,"name":"w","permissions":"db:a"}])");
  EXPECT_NE(e.find("row #1 column \"permissions\": permission \"db:a\""), std::string::npos) << e;
}

// ---- everything at once -----------------------------------------------------------------------

TEST(Influxdb3Codec, AMixedTableAsEnterpriseSendsIt) {
  auto rows = decode_ok(R"([
    {"token_id":0,"name":"_admin","hash":"5c3b2e7f1","created_at":"2025-04-18T14:02:45.331","permissions":"*:*:*"},
    {"token_id":3,"name":"ops admin","hash":"0a1b2c3d4","created_at":"2025-05-01T08:00:00","description":"rotation overlap","created_by_token_id":0,"expiry":"2025-08-01T08:00:00","permissions":"*:*:*"},
    {"token_id":7,"name":"grafana","hash":"9f8e7d6c5","created_at":"2025-06-01T00:00:00.5","created_by_token_id":0,"updated_at":"2025-06-02T00:00:00","updated_by_token_id":3,"permissions":"db:metrics,logs:read;system:health:read"},
    {"token_id":12,"name":"telegraf","created_at":"2025-06-03T12:00:00","expiry":null,"permissions":"db:metrics:write","future_column":{"x":[1,2]}}
  ])");
  ASSERT_EQ(rows.list.tokens.size(), 4u);
  EXPECT_EQ(rows.names, (std::vector<std::string>{"_admin", "ops admin", "grafana", "telegraf"}));
  const auto& t = rows.list.tokens;
  EXPECT_EQ(t[1].description, "ops admin (rotation overlap)");
  EXPECT_EQ(t[1].expires_at, ts("2025-08-01T08:00:00Z"));
  EXPECT_EQ(t[2].id, "7");
  EXPECT_EQ(t[2].created_at, ts("2025-06-01T00:00:00.500Z"));
  EXPECT_EQ(t[2].permissions,
            perms({{"read", "logs"}, {"read", "metrics"}, {"read", "system:health"}}));
  EXPECT_EQ(t[3].permissions, perms({{"write", "metrics"}}));
  EXPECT_FALSE(t[3].expires_at);
  for (const auto& tok : t) EXPECT_FALSE(tok.revoked_at) << tok.id;
  EXPECT_FALSE(rows.list.replaced_invalid_utf8);
}

TEST(Influxdb3Codec, SecretsAreScrubbedFromDescriptionsAndErrors) {
  const std::string secret = "apiv3_AdminTokenNeverShown_0123456789";
  auto rows = decode_influxdb3_rows_redacted(
      R"([{"token_id":1,"name":"n","description":"copy of apiv3_AdminTokenNeverShown_0123456789","permissions":""}])",
      {secret});
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  EXPECT_EQ(rows->list.tokens[0].description.find(secret), std::string::npos);
  auto bad = decode_influxdb3_rows_redacted(
      R"([{"token_id":1,"name":"n","permissions":"db:apiv3_AdminTokenNeverShown_0123456789"}])",
      {secret});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.find("AdminTokenNeverShown"), std::string::npos)
      << bad.error().message;
}

}  // namespace
}  // namespace tw::influx

// Tests for core/token.h: status at an instant, permission ordering and canonical JSON.

#include "core/token.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/unit/core/test_support.h"

namespace tw {
namespace {

using tw::testing::PrintTo;

using std::chrono::milliseconds;

const Timestamp kT = make_timestamp(2026, 3, 1, 12);

Token token_with(std::optional<Timestamp> expires, std::optional<Timestamp> revoked) {
  Token t;
  t.id = "55555555-5555-4555-8555-555555555555";
  t.created_at = make_timestamp(2026, 1, 1);
  t.expires_at = expires;
  t.revoked_at = revoked;
  return t;
}

struct StatusCase {
  std::string name;
  std::optional<Timestamp> expires;
  std::optional<Timestamp> revoked;
  Timestamp now;
  TokenStatus status;
};

class StatusAt : public ::testing::TestWithParam<StatusCase> {};

TEST_P(StatusAt, Table) {
  const auto& c = GetParam();
  EXPECT_EQ(status_at(token_with(c.expires, c.revoked), c.now), c.status) << c.name;
}

INSTANTIATE_TEST_SUITE_P(
    Table, StatusAt,
    ::testing::Values(
        StatusCase{"never expires", std::nullopt, std::nullopt, kT, TokenStatus::kActive},
        StatusCase{"one ms before expiry", kT, std::nullopt, kT - milliseconds(1),
                   TokenStatus::kActive},
        StatusCase{"at the exact expiry instant", kT, std::nullopt, kT, TokenStatus::kExpired},
        StatusCase{"after expiry", kT, std::nullopt, kT + milliseconds(1), TokenStatus::kExpired},
        StatusCase{"revoked, not expired", kT + std::chrono::hours(24), kT, kT,
                   TokenStatus::kRevoked},
        StatusCase{"revoked and expired", kT, kT - milliseconds(5), kT + milliseconds(1),
                   TokenStatus::kRevoked},
        StatusCase{"revoked in the future still revoked", std::nullopt, kT + std::chrono::hours(1),
                   kT, TokenStatus::kRevoked},
        StatusCase{"revoked, never expires", std::nullopt, kT, kT, TokenStatus::kRevoked}),
    tw::testing::CaseName());

TEST(TokenStatus, NamesRoundTrip) {
  for (auto s : {TokenStatus::kActive, TokenStatus::kExpired, TokenStatus::kRevoked,
                 TokenStatus::kRemoved}) {
    auto back = parse_token_status(to_string(s));
    ASSERT_TRUE(back.has_value()) << to_string(s);
    EXPECT_EQ(*back, s);
  }
  EXPECT_EQ(to_string(TokenStatus::kActive), "active");
  EXPECT_EQ(to_string(TokenStatus::kExpired), "expired");
  EXPECT_EQ(to_string(TokenStatus::kRevoked), "revoked");
  EXPECT_EQ(to_string(TokenStatus::kRemoved), "removed");
  EXPECT_FALSE(parse_token_status("Active").has_value());
  EXPECT_FALSE(parse_token_status("").has_value());
  EXPECT_FALSE(parse_token_status("deleted").has_value());
}

TEST(SortPermissions, ByActionThenResource) {
  std::vector<Permission> p{{"write", "b"}, {"read", "z"}, {"write", "*"}, {"read", "a"}};
  sort_permissions(p);
  EXPECT_EQ(
      p, (std::vector<Permission>{{"read", "a"}, {"read", "z"}, {"write", "*"}, {"write", "b"}}));
}

TEST(PermissionsJson, CanonicalForm) {
  EXPECT_EQ(permissions_json({}), "[]");
  EXPECT_EQ(permissions_json({{"read", "db1"}, {"write", "*"}}),
            R"([{"action":"read","resource":"db1"},{"action":"write","resource":"*"}])");
  std::string out = "x";
  append_permissions_json(out, {{"read", "a"}});
  EXPECT_EQ(out, R"(x[{"action":"read","resource":"a"}])");
}

TEST(PermissionsJson, RoundTripsHostileStrings) {
  std::vector<std::vector<Permission>> samples{
      {},
      {{"read", "db1"}},
      {{"read", "with \"quotes\""}, {"write", "back\\slash"}},
      {{"read", "\xE6\x95\xB0\xE6\x8D\xAE\xE5\xBA\x93"}, {"write", "caf\xC3\xA9 \xF0\x9D\x84\x9E"}},
      {{"read", "new\nline\ttab\x01"}, {"write", "</script>"}},
      {{"admin", "*"}},
      {{"", ""}}};
  for (const auto& perms : samples) {
    std::string json = permissions_json(perms);
    auto back = parse_permissions_json(json);
    ASSERT_TRUE(back.ok()) << json << ": " << back.error().message;
    EXPECT_EQ(*back, perms) << json;
  }
}

TEST(PermissionsJson, InvalidUtf8BecomesReplacementCharacter) {
  auto back = parse_permissions_json(permissions_json({{"read", "db\xFF"}}));
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ((*back)[0].resource, "db\xEF\xBF\xBD");
}

TEST(ParsePermissionsJson, RejectsOtherShapes) {
  for (const char* bad : {"", "garbage", "{}", "null", "[1]", "[null]", R"([{"action":"read"}])",
                          R"([{"resource":"db"}])", R"([{"action":1,"resource":"db"}])",
                          R"([{"action":"read","resource":null}])",
                          R"([{"action":"read","resource":"db"})", R"({"permissions":[]})"}) {
    auto r = parse_permissions_json(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, ErrorCode::kParse) << bad;
    }
  }
}

TEST(TokenStateJson, StableKeyOrderAndNulls) {
  Token t;
  t.id = "ignored-in-state";
  t.description = "svc \"telegraf\"";
  t.permissions = {{"read", "db1"}};
  t.created_at = make_timestamp(2026, 1, 1);
  std::string out;
  append_token_state_json(out, t);
  EXPECT_EQ(
      out,
      R"({"description":"svc \"telegraf\"","permissions":[{"action":"read","resource":"db1"}],)"
      R"("created_at":"2026-01-01T00:00:00.000Z","expires_at":null,"revoked_at":null})");

  t.expires_at = make_timestamp(2026, 4, 1);
  t.revoked_at = make_timestamp(2026, 2, 1, 0, 0, 0, 5);
  t.created_at.reset();
  out.clear();
  append_token_state_json(out, t);
  EXPECT_EQ(
      out,
      R"({"description":"svc \"telegraf\"","permissions":[{"action":"read","resource":"db1"}],)"
      R"("created_at":null,"expires_at":"2026-04-01T00:00:00.000Z",)"
      R"("revoked_at":"2026-02-01T00:00:00.005Z"})");
  EXPECT_FALSE(nlohmann::json::parse(out, nullptr, false).is_discarded());
}

TEST(Token, EqualityCoversEveryField) {
  Token a = token_with(kT, std::nullopt);
  Token b = a;
  EXPECT_EQ(a, b);
  b.description = "x";
  EXPECT_NE(a, b);
  b = a;
  b.permissions = {{"read", "db"}};
  EXPECT_NE(a, b);
  b = a;
  b.revoked_at = kT;
  EXPECT_NE(a, b);
  b = a;
  b.expires_at.reset();
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace tw

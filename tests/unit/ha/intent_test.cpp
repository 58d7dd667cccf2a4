#include "ha/intent.h"

#include <gtest/gtest.h>

#include "tests/unit/core/test_support.h"

namespace tw::ha {
namespace {

Intent sample() {
  Intent i;
  i.cluster = "prod/eu";
  i.token_id = "tok 1%";
  i.policy = "max-life";
  i.action = "revoke";
  i.state = "intent";
  i.term = 17;
  i.instance = "admin-1";
  i.action_id = 5;
  i.attempt = 1;
  i.planned_at = tw::testing::ts("2026-12-07T10:00:00Z");
  i.updated_at = tw::testing::ts("2026-12-07T10:00:01Z");
  return i;
}

TEST(IntentKey, SegmentsAreEncodedSoTheyCannotEscapeTheirPlace) {
  EXPECT_EQ(intent_key("/tw/", "prod/eu", "tok 1%", "p"), "/tw/actions/prod%2Feu/tok%201%25/p");
  EXPECT_EQ(encode_segment("..\x01\xc3\xa9"), "..%01%C3%A9");
  EXPECT_EQ(intents_prefix("/tw/"), "/tw/actions/");
}

TEST(Intent, RoundTrips) {
  Intent i = sample();
  i.state = "reconciled";
  i.outcome = "already_revoked";
  i.from_term = 9;
  i.target = R"([{"action":"read","resource":"db"}])";
  auto back = decode_intent(encode_intent(i));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->cluster, i.cluster);
  EXPECT_EQ(back->token_id, i.token_id);
  EXPECT_EQ(back->state, "reconciled");
  EXPECT_EQ(back->term, 17);
  EXPECT_EQ(back->from_term, 9);
  EXPECT_EQ(back->outcome, "already_revoked");
  EXPECT_EQ(back->target, i.target);
  EXPECT_EQ(back->planned_at, i.planned_at);
  EXPECT_EQ(back->updated_at, i.updated_at);
}

TEST(Intent, ValuesThatAreNotOursDecodeToNothing) {
  for (
      const char* v :
      {"", "null", "[]", "{}", "not json", R"({"cluster":"c"})",
       R"({"cluster":"c","token_id":"t","policy":"p","action":"revoke","state":"intent","term":"7","instance":"a","planned_at":"2026-12-07T10:00:00Z","updated_at":"2026-12-07T10:00:00Z"})",
       R"({"cluster":"c","token_id":"t","policy":"p","action":"revoke","state":"intent","term":0,"instance":"a","planned_at":"2026-12-07T10:00:00Z","updated_at":"2026-12-07T10:00:00Z"})",
       R"({"cluster":"c","token_id":"t","policy":"p","action":"revoke","state":"intent","term":3,"instance":"a","planned_at":"yesterday","updated_at":"2026-12-07T10:00:00Z"})"}) {
    EXPECT_FALSE(decode_intent(v).has_value()) << v;
  }
  auto ok = decode_intent(
      R"({"cluster":"c","token_id":"t","policy":"p","action":"revoke","state":"intent","term":3,"instance":"a","planned_at":"2026-12-07T10:00:00Z","updated_at":"2026-12-07T10:00:00Z","future_field":[1]})");
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->term, 3);
}

}  // namespace
}  // namespace tw::ha

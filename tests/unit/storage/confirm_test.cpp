// Tests for storage/recorder.h's confirmed removals (issue 9): a token missing from a list is
// removed only when a direct read confirms it; read back revoked it is revoked; still there, or
// unreadable, the poll is suspect; large vanishings are confirmed by a bounded sample; a removed
// token listed again is token_reappeared.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "storage/recorder.h"
#include "tests/unit/storage/store_fixture.h"

namespace tw::storage {
namespace {

using testing::make_tokens;
using testing::StoreTest;

class ConfirmTest : public StoreTest {
 protected:
  InventoryRecorder rec_{*store_};
};

TEST_F(ConfirmTest, NothingIsRecordedBeforeTheReads) {
  auto three = make_tokens(3);
  poll_ok(rec_, three);
  std::vector<Token> two(three.begin(), three.begin() + 2);
  PollInput in = poll_input();
  in.tokens = two;
  const std::int64_t before = audit_rows();
  const std::int64_t polls = poll_rows();
  auto s = rec_.record_input(in);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_TRUE(s->needs_confirmation);
  EXPECT_EQ(s->to_confirm, (std::vector<std::string>{three[2].id}));
  EXPECT_EQ(audit_rows(), before);
  EXPECT_EQ(poll_rows(), polls);
  ASSERT_TRUE(in.tokens.has_value()) << "the input keeps its list for the second call";
  EXPECT_EQ(in.tokens->size(), 2u);
}

TEST_F(ConfirmTest, AConfirmedVanishingIsRemoved) {
  auto three = make_tokens(3);
  poll_ok(rec_, three);
  std::vector<Token> two(three.begin(), three.begin() + 2);
  auto s = poll_ok(rec_, two);
  EXPECT_EQ(s.outcome, PollOutcome::kOk);
  EXPECT_EQ(direct_reads_, 1);
  EXPECT_EQ(n(s.events, EventKind::kTokenRemoved), 1);
  EXPECT_EQ(text("SELECT detail FROM audit_log WHERE event = 'token_removed'"),
            R"({"previous_status":"active","confirmed_by":"direct_read"})");
}

TEST_F(ConfirmTest, ATokenStillThereMakesThePollSuspect) {
  auto three = make_tokens(3);
  poll_ok(rec_, three);
  direct_[three[2].id] = DirectRead{true, three[2], {}};
  std::vector<Token> two(three.begin(), three.begin() + 2);
  const std::int64_t before = audit_rows();
  auto s = poll_ok(rec_, two);
  EXPECT_EQ(s.outcome, PollOutcome::kSuspect);
  EXPECT_NE(s.message.find("still exist"), std::string::npos) << s.message;
  EXPECT_NE(s.message.find(three[2].id), std::string::npos) << s.message;
  EXPECT_EQ(audit_rows(), before + 1);
  EXPECT_EQ(events_of("poll_suspect"), 1);
  EXPECT_EQ(events_of("token_removed"), 0);
  EXPECT_EQ(text("SELECT outcome FROM polls ORDER BY id DESC"), "suspect");
}

TEST_F(ConfirmTest, AFailedReadMakesThePollSuspect) {
  auto three = make_tokens(3);
  poll_ok(rec_, three);
  direct_[three[2].id] = DirectRead{false, std::nullopt, "GET …/tokens/x: connection refused"};
  std::vector<Token> two(three.begin(), three.begin() + 2);
  auto s = poll_ok(rec_, two);
  EXPECT_EQ(s.outcome, PollOutcome::kSuspect);
  EXPECT_NE(s.message.find("could not confirm"), std::string::npos) << s.message;
  EXPECT_NE(s.message.find("connection refused"), std::string::npos) << s.message;
  EXPECT_EQ(events_of("token_removed"), 0);
}

TEST_F(ConfirmTest, ATokenReadBackRevokedIsRevokedNotRemoved) {
  auto three = make_tokens(3);
  poll_ok(rec_, three);
  Token revoked = three[2];
  revoked.revoked_at = clock_.now() - std::chrono::seconds(5);
  direct_[revoked.id] = DirectRead{true, revoked, {}};
  std::vector<Token> two(three.begin(), three.begin() + 2);
  auto s = poll_ok(rec_, two);
  EXPECT_EQ(s.outcome, PollOutcome::kOk);
  EXPECT_EQ(n(s.events, EventKind::kTokenRevoked), 1);
  EXPECT_EQ(n(s.events, EventKind::kTokenRemoved), 0);
  EXPECT_EQ(text("SELECT status FROM token_inventory WHERE token_id = '" + revoked.id + "'"),
            "revoked");
  // Hidden from now on: not vanished, not read again.
  const int reads = direct_reads_;
  auto again = poll_ok(rec_, two);
  EXPECT_EQ(again.outcome, PollOutcome::kOk);
  EXPECT_EQ(direct_reads_, reads);
  EXPECT_EQ(events_of("token_removed"), 0);
  EXPECT_TRUE(chain_ok());
}

TEST_F(ConfirmTest, ATokenReadBackExpiredIsExpiredAndThenHidden) {
  auto three = make_tokens(3);
  poll_ok(rec_, three);
  Token expired = three[2];
  expired.expires_at = clock_.now() - std::chrono::seconds(5);
  direct_[expired.id] = DirectRead{true, expired, {}};  // the list hides expired tokens
  std::vector<Token> two(three.begin(), three.begin() + 2);
  auto s = poll_ok(rec_, two);
  EXPECT_EQ(s.outcome, PollOutcome::kOk) << s.message;
  EXPECT_EQ(n(s.events, EventKind::kTokenExpired), 1);
  EXPECT_EQ(n(s.events, EventKind::kTokenRemoved), 0);
  const int reads = direct_reads_;
  EXPECT_EQ(poll_ok(rec_, two).outcome, PollOutcome::kOk);
  EXPECT_EQ(direct_reads_, reads) << "a hidden expired token is not read again";
}

TEST_F(ConfirmTest, ALargeVanishingIsConfirmedByABoundedSample) {
  auto tokens = make_tokens(100);
  poll_ok(rec_, tokens);
  std::vector<Token> kept(tokens.begin() + 30, tokens.end());  // 30 % vanish
  auto s = poll_ok(rec_, kept);
  EXPECT_EQ(s.outcome, PollOutcome::kOk);
  EXPECT_EQ(direct_reads_, static_cast<int>(kRemovalSample));
  EXPECT_EQ(n(s.events, EventKind::kTokenRemoved), 30);
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log WHERE event = 'token_removed' AND "
                  "json_extract(detail, '$.confirmed_by') = 'direct_read'"),
            static_cast<std::int64_t>(kRemovalSample));
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log WHERE event = 'token_removed' AND "
                  "json_extract(detail, '$.confirmed_by') = 'sample'"),
            30 - static_cast<std::int64_t>(kRemovalSample));
}

TEST_F(ConfirmTest, OneSampledSurvivorHoldsTheWholeVanishing) {
  auto tokens = make_tokens(100);
  poll_ok(rec_, tokens);
  std::vector<std::string> ids;
  for (int i = 0; i < 30; ++i) ids.push_back(tokens[static_cast<std::size_t>(i)].id);
  std::sort(ids.begin(), ids.end());
  auto sample = removal_sample(ids);
  ASSERT_EQ(sample.size(), kRemovalSample);
  for (const auto& t : tokens) {
    if (t.id == sample[7]) direct_[t.id] = DirectRead{true, t, {}};
  }
  std::vector<Token> kept(tokens.begin() + 30, tokens.end());
  auto s = poll_ok(rec_, kept);
  EXPECT_EQ(s.outcome, PollOutcome::kSuspect);
  EXPECT_EQ(events_of("token_removed"), 0);
}

TEST_F(ConfirmTest, TheSampleIsSpreadAndDeterministic) {
  std::vector<std::string> ids;
  for (int i = 0; i < 100; ++i) ids.push_back("id" + std::to_string(1000 + i));
  auto a = removal_sample(ids);
  ASSERT_EQ(a.size(), kRemovalSample);
  EXPECT_EQ(a.front(), "id1000");
  EXPECT_EQ(a.back(), "id1095");
  EXPECT_EQ(a, removal_sample(ids));
  std::vector<std::string> few(ids.begin(), ids.begin() + 5);
  EXPECT_EQ(removal_sample(few), few);
}

TEST_F(ConfirmTest, ARemovedTokenListedAgainReappears) {
  auto three = make_tokens(3);
  poll_ok(rec_, three);
  std::vector<Token> two(three.begin(), three.begin() + 2);
  poll_ok(rec_, two);
  auto s = poll_ok(rec_, three);
  EXPECT_EQ(n(s.events, EventKind::kTokenReappeared), 1);
  EXPECT_EQ(n(s.events, EventKind::kTokenCreated), 0);
  EXPECT_EQ(s.reappeared, (std::vector<std::string>{three[2].id}));
  EXPECT_EQ(text("SELECT status FROM token_inventory WHERE token_id = '" + three[2].id + "'"),
            "active");
  EXPECT_TRUE(chain_ok());
}

}  // namespace
}  // namespace tw::storage

// Tests for storage/chain.h: the canonical row form (pinned: docs and auditors recompute it),
// the hash chain and verify_chain against a real database file that is tampered with.

#include "storage/chain.h"

#include <gtest/gtest.h>

#include <string>

#include "core/sha256.h"
#include "tests/unit/storage/store_fixture.h"

namespace tw::storage {
namespace {

using testing::kDropTriggers;
using testing::StoreTest;

TEST(CanonicalRow, ExactForm) {
  EXPECT_EQ(canonical_row(1, "2026-01-01T00:00:00.000Z", std::string("c"), std::nullopt,
                          "token_created", "{}"),
            R"([1,"2026-01-01T00:00:00.000Z","c",null,"token_created","{}"])");
  EXPECT_EQ(canonical_row(42, "2026-01-01T00:00:00.000Z", std::nullopt, std::nullopt,
                          "daemon_started", "{}"),
            R"([42,"2026-01-01T00:00:00.000Z",null,null,"daemon_started","{}"])");
  EXPECT_EQ(canonical_row(7, "2026-02-03T04:05:06.789Z", std::string("prod-eu"),
                          std::string("55555555-5555-4555-8555-555555555555"), "token_updated",
                          R"({"before":{"description":"a"},"after":{"description":"b"}})"),
            R"([7,"2026-02-03T04:05:06.789Z","prod-eu","55555555-5555-4555-8555-555555555555",)"
            R"("token_updated",)"
            R"("{\"before\":{\"description\":\"a\"},\"after\":{\"description\":\"b\"}}"])");
}

TEST(CanonicalRow, DetailIsAJsonStringWithTheWriterEscapes) {
  // Escapes an independent implementation must reproduce: quotes, backslashes, control
  // characters as \n or \u00XX, "</" as "<\/", other UTF-8 verbatim, empty strings kept.
  EXPECT_EQ(
      canonical_row(3, "t", std::string(""), std::string("id"), "e",
                    "{\"d\":\"a\\\\b\\n</x>\xC3\xA9\x01\"}"),
      "[3,\"t\",\"\",\"id\",\"e\",\"{\\\"d\\\":\\\"a\\\\\\\\b\\\\n<\\/x>\xC3\xA9\\u0001\\\"}\"]");
  EXPECT_EQ(canonical_row(-1, "", std::nullopt, std::nullopt, "", ""),
            R"([-1,"",null,null,"",""])");
}

TEST(ChainHash, Sha256OfPrevHashThenCanonical) {
  std::string canonical = R"([1,"2026-01-01T00:00:00.000Z","c",null,"token_created","{}"])";
  EXPECT_EQ(chain_hash(kGenesisHash, canonical), sha256_hex(std::string(64, '0') + canonical));
  EXPECT_EQ(kGenesisHash, std::string(64, '0'));
  std::string h1 = chain_hash(kGenesisHash, canonical);
  EXPECT_EQ(h1.size(), 64u);
  EXPECT_NE(chain_hash(h1, canonical), h1);
}

// --- verify_chain on a real file ---------------------------------------------------------------

class VerifyChainTest : public StoreTest {
 protected:
  // Appends `n` events through the store (each its own transaction) and returns the last hash.
  void append_events(int n) {
    for (int i = 0; i < n; ++i) {
      auto txn = store_->begin();
      ASSERT_TRUE(txn.ok()) << txn.error().message;
      NewEvent e{EventKind::kTokenCreated, "prod", "tok-" + std::to_string(i),
                 R"({"description":"svc )" + std::to_string(i) + R"("})"};
      auto seq = txn->append(e, clock_.now());
      ASSERT_TRUE(seq.ok()) << seq.error().message;
      ASSERT_TRUE(txn->commit().ok());
      clock_.advance(std::chrono::seconds(1));
    }
  }
  VerifyReport verify() {
    auto db = raw();
    auto rep = verify_chain(*db);
    EXPECT_TRUE(rep.ok()) << (rep.ok() ? "" : rep.error().message);
    return rep.ok() ? *rep : VerifyReport{};
  }
};

TEST_F(VerifyChainTest, EmptyDatabaseIsIntact) {
  auto rep = verify();
  EXPECT_TRUE(rep.ok);
  EXPECT_EQ(rep.rows, 0);
  EXPECT_EQ(rep.head_seq, 0);
  EXPECT_TRUE(rep.append_only_triggers);
}

TEST_F(VerifyChainTest, IntactChain) {
  append_events(5);
  auto rep = verify();
  EXPECT_TRUE(rep.ok) << rep.problem;
  EXPECT_EQ(rep.rows, 5);
  EXPECT_EQ(rep.head_seq, 5);
  EXPECT_EQ(rep.head_hash, text("SELECT hash FROM audit_log WHERE seq = 5"));
  EXPECT_EQ(rep.bad_seq, 0);
  EXPECT_TRUE(rep.problem.empty());
  EXPECT_TRUE(rep.append_only_triggers);
  // The stored rows follow the documented formula.
  EXPECT_EQ(text("SELECT prev_hash FROM audit_log WHERE seq = 1"), std::string(kGenesisHash));
  std::string canonical =
      canonical_row(1, text("SELECT recorded_at FROM audit_log WHERE seq = 1"), std::string("prod"),
                    std::string("tok-0"), "token_created", R"({"description":"svc 0"})");
  EXPECT_EQ(text("SELECT hash FROM audit_log WHERE seq = 1"), chain_hash(kGenesisHash, canonical));
  EXPECT_EQ(text("SELECT prev_hash FROM audit_log WHERE seq = 2"),
            text("SELECT hash FROM audit_log WHERE seq = 1"));
}

TEST_F(VerifyChainTest, TheLogIsAppendOnly) {
  append_events(2);
  auto db = raw();
  EXPECT_FALSE(db->exec("UPDATE audit_events SET detail = '{}' WHERE seq = 1").ok());
  EXPECT_FALSE(db->exec("DELETE FROM audit_events WHERE seq = 2").ok());
  EXPECT_TRUE(verify().ok);
}

TEST_F(VerifyChainTest, ModifiedDetailIsFound) {
  append_events(5);
  tamper(
      "UPDATE audit_events SET detail = '{\"description\":\"forged\"}' "
      "WHERE seq = 3;");
  auto rep = verify();
  EXPECT_FALSE(rep.ok);
  EXPECT_EQ(rep.bad_seq, 3);
  EXPECT_NE(rep.problem.find("3"), std::string::npos) << rep.problem;
  EXPECT_NE(rep.problem.find("modified"), std::string::npos) << rep.problem;
  EXPECT_EQ(rep.rows, 5);
  EXPECT_TRUE(rep.append_only_triggers);
}

TEST_F(VerifyChainTest, ModifiedTimeOrClusterIsFound) {
  append_events(3);
  tamper(
      "UPDATE audit_events SET recorded_at = '2020-01-01T00:00:00.000Z' "
      "WHERE seq = 1;");
  auto rep = verify();
  EXPECT_FALSE(rep.ok);
  EXPECT_EQ(rep.bad_seq, 1);
}

TEST_F(VerifyChainTest, RowDeletedInTheMiddle) {
  append_events(5);
  tamper("DELETE FROM audit_events WHERE seq = 3;");
  auto rep = verify();
  EXPECT_FALSE(rep.ok);
  EXPECT_EQ(rep.bad_seq, 4);
  EXPECT_NE(rep.problem.find("deleted"), std::string::npos) << rep.problem;
  EXPECT_EQ(rep.rows, 4);
}

TEST_F(VerifyChainTest, RowDeletedAndRenumberedBreaksTheLinks) {
  append_events(4);
  tamper(
      "DELETE FROM audit_events WHERE seq = 2; UPDATE audit_events SET seq = 2 WHERE seq = 3; "
      "UPDATE audit_events SET seq = 3 WHERE seq = 4;");
  auto rep = verify();
  EXPECT_FALSE(rep.ok);
  EXPECT_EQ(rep.bad_seq, 2);
}

TEST_F(VerifyChainTest, LastRowDeletedIsAChainHeadMismatch) {
  append_events(5);
  tamper("DELETE FROM audit_events WHERE seq = 5;");
  auto rep = verify();
  EXPECT_FALSE(rep.ok);
  EXPECT_EQ(rep.rows, 4);
  EXPECT_EQ(rep.head_seq, 4);
  EXPECT_EQ(rep.bad_seq, 5);
  EXPECT_NE(rep.problem.find("deleted from the end"), std::string::npos) << rep.problem;
}

TEST_F(VerifyChainTest, EveryRowDeletedIsFound) {
  append_events(3);
  tamper("DELETE FROM audit_events;");
  auto rep = verify();
  EXPECT_FALSE(rep.ok) << "a wiped log must not verify";
  EXPECT_EQ(rep.rows, 0);
}

TEST_F(VerifyChainTest, ForgedRowAppendedWithAValidHash) {
  append_events(3);
  std::string prev = text("SELECT hash FROM audit_log WHERE seq = 3");
  std::string at = "2026-01-01T01:00:00.000Z";
  std::string detail = R"({"description":"forged"})";
  std::string hash = chain_hash(prev, canonical_row(4, at, std::string("prod"), std::string("evil"),
                                                    "token_created", detail));
  exec(
      "INSERT INTO audit_events(seq, recorded_at, cluster, token_id, event, detail, prev_hash, "
      "hash) "
      "VALUES (4, '" +
      at + "', 'prod', 'evil', 'token_created', '" + detail + "', '" + prev + "', '" + hash + "')");
  auto rep = verify();
  EXPECT_FALSE(rep.ok) << "the chain head records seq 3";
  EXPECT_EQ(rep.rows, 4);
  EXPECT_NE(rep.problem.find("appended"), std::string::npos) << rep.problem;
  EXPECT_EQ(rep.bad_seq, 4) << "the first bad row is the forged one, not the last genuine row";
}

TEST_F(VerifyChainTest, ForgedRowWithABadHash) {
  append_events(2);
  exec(
      "INSERT INTO audit_events(seq, recorded_at, cluster, token_id, event, detail, prev_hash, "
      "hash) "
      "VALUES (3, 't', 'prod', 'evil', 'token_created', '{}', '" +
      text("SELECT hash FROM audit_log WHERE seq = 2") + "', 'deadbeef')");
  auto rep = verify();
  EXPECT_FALSE(rep.ok);
  EXPECT_EQ(rep.bad_seq, 3);
}

TEST_F(VerifyChainTest, DroppedTriggersAreReportedWithoutBreakingTheChain) {
  append_events(3);
  exec(kDropTriggers);
  auto rep = verify();
  EXPECT_TRUE(rep.ok) << rep.problem;
  EXPECT_FALSE(rep.append_only_triggers);

  exec(
      "DROP TABLE IF EXISTS x; CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
      "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;");
  EXPECT_FALSE(verify().append_only_triggers) << "one trigger of two is still a removal";
}

TEST_F(VerifyChainTest, MissingChainHeadIsReported) {
  append_events(2);
  exec("DELETE FROM chain_head");
  auto rep = verify();
  EXPECT_FALSE(rep.ok);
  EXPECT_NE(rep.problem.find("chain head"), std::string::npos) << rep.problem;
}

TEST_F(VerifyChainTest, FirstProblemWins) {
  append_events(6);
  tamper(
      "UPDATE audit_events SET detail = '{}' WHERE seq = 2; DELETE FROM audit_events WHERE seq = "
      "5;");
  auto rep = verify();
  EXPECT_FALSE(rep.ok);
  EXPECT_EQ(rep.bad_seq, 2);
  EXPECT_EQ(rep.rows, 5) << "verification continues counting after the first problem";
}

}  // namespace
}  // namespace tw::storage

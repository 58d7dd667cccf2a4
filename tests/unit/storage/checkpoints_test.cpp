// Tests for storage/checkpoint.h and storage/checkpoints.h: the checkpoint detail and its hostile
// forms, signing inside a write transaction, and verify_chain with a CheckpointVerifier against a
// real database that an attacker with file access rewrote (hashes recomputed), forged or edited.

#include "storage/checkpoints.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/base64.h"
#include "storage/chain.h"
#include "tests/unit/storage/store_fixture.h"

namespace tw::storage {
namespace {

using testing::StoreTest;

Checkpoint sample() {
  return Checkpoint{7,
                    std::string(64, 'a'),
                    "2026-01-01T00:00:00.000Z",
                    "0123456789abcdef",
                    "host-1",
                    base64_encode(std::string(64, 'x'))};
}

TEST(CheckpointDetail, RoundTrips) {
  Checkpoint c = sample();
  auto back = parse_checkpoint_detail(checkpoint_detail(c));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->head_seq, 7);
  EXPECT_EQ(back->head_hash, c.head_hash);
  EXPECT_EQ(back->signed_at, c.signed_at);
  EXPECT_EQ(back->key_id, c.key_id);
  EXPECT_EQ(back->host, c.host);
  EXPECT_EQ(back->signature, c.signature);
}

TEST(CheckpointDetail, MessageIsTheDocumentedText) {
  EXPECT_EQ(checkpoint_message(sample()),
            "tokenwarden checkpoint v1\nhead_seq=7\nhead_hash=" + std::string(64, 'a') +
                "\nsigned_at=2026-01-01T00:00:00.000Z\nkey_id=0123456789abcdef\nhost=host-1\n");
}

TEST(CheckpointDetail, HostileDetailsAreRejected) {
  for (
      const char* d :
      {"", "null", "[]", "{", "{}", "\"x\"", R"({"head_seq":"7"})",
       R"({"head_seq":7.5,"head_hash":"h","signed_at":"t","key_id":"k","host":"h","signature":"s"})",
       R"({"head_seq":7,"head_hash":1,"signed_at":"t","key_id":"k","host":"h","signature":"s"})",
       R"({"head_seq":7,"head_hash":"h","signed_at":"t","key_id":"k","host":"h"})",
       R"({"head_seq":7,"head_hash":"h","signed_at":"t","key_id":null,"host":"h","signature":"s"})"}) {
    EXPECT_FALSE(parse_checkpoint_detail(d).has_value()) << d;
  }
}

class CheckpointStoreTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    auto k = ed25519::PrivateKey::generate();
    ASSERT_TRUE(k.ok());
    key_.emplace(std::move(*k));
  }

  void events(int n) {
    auto txn = store_->begin();
    ASSERT_TRUE(txn.ok());
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(txn->append(NewEvent{EventKind::kDaemonStarted, "", "",
                                       "{\"n\":" + std::to_string(i) + "}"},
                              clock_.now())
                      .ok());
    }
    ASSERT_TRUE(txn->commit().ok());
    clock_.advance(std::chrono::seconds(1));
  }

  std::int64_t sign(const ed25519::PrivateKey& key) {
    auto txn = store_->begin();
    EXPECT_TRUE(txn.ok());
    auto s = sign_checkpoint(*txn, key, "host-1", clock_.now());
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    EXPECT_TRUE(txn->commit().ok());
    return s.ok() && *s ? (*s)->seq : 0;
  }

  CheckpointReport verify(std::vector<ed25519::PublicKey> keys, bool chain_ok = true) {
    CheckpointVerifier v(std::move(keys));
    auto db = raw();
    auto rep = verify_chain(*db, nullptr, nullptr, &v);
    EXPECT_TRUE(rep.ok());
    if (rep.ok()) {
      EXPECT_EQ(rep->ok, chain_ok) << rep->problem;
    }
    return v.report();
  }
  CheckpointReport verify() { return verify({key_->public_key()}); }

  // What an attacker with write access does: edit one row's detail, then recompute every
  // hash from it on and the chain head, so that plain verify passes.
  void rewrite(std::int64_t seq, const std::string& detail) {
    auto db = raw();
    ASSERT_TRUE(db->exec(testing::kDropTriggers).ok());
    auto upd = db->prepare("UPDATE audit_events SET detail = ? WHERE seq = ?");
    ASSERT_TRUE(upd.ok());
    upd->bind(1, detail).bind(2, seq);
    ASSERT_TRUE(upd->run().ok());
    recompute(*db, seq);
    ASSERT_TRUE(db->exec(testing::kRestoreTriggers).ok());
  }

  static void recompute(Db& db, std::int64_t from) {
    auto rows = db.prepare(
        "SELECT seq, recorded_at, cluster, token_id, event, detail, prev_hash FROM audit_events "
        "WHERE seq >= ? ORDER BY seq");
    ASSERT_TRUE(rows.ok());
    rows->bind(1, from);
    std::vector<std::pair<std::int64_t, std::string>> links;  // (seq, prev_hash)
    std::string prev;
    while (*rows->step()) {
      if (prev.empty()) prev = rows->text(6);
      links.emplace_back(rows->int64(0), prev);
      prev = chain_hash(prev, canonical_row(rows->int64(0), rows->text(1), rows->opt_text(2),
                                            rows->opt_text(3), rows->text(4), rows->text(5)));
    }
    for (std::size_t i = 0; i < links.size(); ++i) {
      const std::string& hash = i + 1 < links.size() ? links[i + 1].second : prev;
      auto u = db.prepare("UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?");
      ASSERT_TRUE(u.ok());
      u->bind(1, links[i].second).bind(2, hash).bind(3, links[i].first);
      ASSERT_TRUE(u->run().ok());
    }
    auto h = db.prepare("UPDATE chain_head SET hash = ? WHERE id = 1");
    ASSERT_TRUE(h.ok());
    h->bind(1, prev);
    ASSERT_TRUE(h->run().ok());
  }

  std::optional<ed25519::PrivateKey> key_;
};

TEST_F(CheckpointStoreTest, SignsTheHeadRightAfterIt) {
  events(4);
  std::int64_t seq = sign(*key_);
  EXPECT_EQ(seq, 5);
  auto last = read_last_checkpoint(store_->db());
  ASSERT_TRUE(last.ok() && last->has_value());
  EXPECT_EQ((*last)->seq, 5);
  auto c = parse_checkpoint_detail((*last)->detail);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->head_seq, 4);
  EXPECT_EQ(c->head_hash, (*last)->prev_hash);
  EXPECT_EQ(c->key_id, key_->key_id());
  EXPECT_EQ(c->host, "host-1");
  EXPECT_TRUE(chain_ok());
}

TEST_F(CheckpointStoreTest, NothingNewNothingSigned) {
  EXPECT_EQ(sign(*key_), 0);  // empty log
  events(2);
  EXPECT_EQ(sign(*key_), 3);
  EXPECT_EQ(sign(*key_), 0);
  EXPECT_EQ(events_of("checkpoint_signed"), 1);
}

TEST_F(CheckpointStoreTest, LastCheckpointQueryUsesTheEventIndex) {
  auto db = raw();
  auto plan = db->prepare(
      "EXPLAIN QUERY PLAN SELECT seq, recorded_at, prev_hash, detail FROM audit_events "
      "WHERE event = 'checkpoint_signed' ORDER BY seq DESC LIMIT 1");
  ASSERT_TRUE(plan.ok());
  std::string all;
  while (*plan->step()) all += plan->text(3) + "\n";
  EXPECT_NE(all.find("audit_events_by_event"), std::string::npos) << all;
  EXPECT_EQ(all.find("SCAN audit_events\n"), std::string::npos) << all;
}

TEST_F(CheckpointStoreTest, ValidCheckpointsProveTheHistory) {
  events(4);
  sign(*key_);  // seq 5 signs 4
  events(3);
  sign(*key_);  // seq 9 signs 8
  events(2);    // 10, 11 unsigned
  auto r = verify();
  EXPECT_TRUE(r.ok()) << r.problem;
  EXPECT_EQ(r.checkpoints, 2);
  EXPECT_EQ(r.proven_seq, 8);
  EXPECT_EQ(r.last_valid_seq, 9);
  EXPECT_EQ(r.unsigned_tail, 2);
  EXPECT_EQ(r.last_key_id, key_->key_id());
}

TEST_F(CheckpointStoreTest, RewriteWithRecomputedHashesIsFoundAtTheNextCheckpoint) {
  events(3);
  sign(*key_);  // 4
  events(4);    // 5..8
  sign(*key_);  // 9
  events(2);
  rewrite(6, R"({"n":"forged"})");
  auto r = verify();  // the chain itself verifies
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.bad_seq, 9);
  EXPECT_NE(r.problem.find("rewritten"), std::string::npos) << r.problem;
  EXPECT_EQ(r.proven_seq, 3);  // the checkpoint before the edit still holds
}

TEST_F(CheckpointStoreTest, CheckpointByAnotherKeyIsRejected) {
  auto other = ed25519::PrivateKey::generate();
  ASSERT_TRUE(other.ok());
  events(3);
  sign(*other);
  auto r = verify();
  EXPECT_EQ(r.bad_seq, 4);
  EXPECT_NE(r.problem.find("signed by another key"), std::string::npos) << r.problem;
  // Both keys given (a rotation): accepted.
  EXPECT_TRUE(verify({key_->public_key(), other->public_key()}).ok());
}

TEST_F(CheckpointStoreTest, TamperedSignatureIsRejected) {
  events(3);
  sign(*key_);
  auto c = parse_checkpoint_detail(text("SELECT detail FROM audit_events WHERE seq = 4"));
  ASSERT_TRUE(c.has_value());
  c->host = "elsewhere";  // the signed text changes; the signature does not
  rewrite(4, checkpoint_detail(*c));
  auto r = verify();
  EXPECT_EQ(r.bad_seq, 4);
  EXPECT_NE(r.problem.find("invalid signature"), std::string::npos) << r.problem;
}

TEST_F(CheckpointStoreTest, CheckpointMovedToAnotherHeadIsRejected) {
  events(3);
  sign(*key_);  // 4 signs 3
  std::string detail = text("SELECT detail FROM audit_events WHERE seq = 4");
  events(2);
  // A valid, signed detail copied later in the chain, hashes recomputed.
  {
    auto txn = store_->begin();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(
        txn->append(NewEvent{EventKind::kCheckpointSigned, "", "", detail}, clock_.now()).ok());
    ASSERT_TRUE(txn->commit().ok());
  }
  auto r = verify();
  EXPECT_EQ(r.bad_seq, 7);
  EXPECT_NE(r.problem.find("instead of the row before it"), std::string::npos) << r.problem;
}

TEST_F(CheckpointStoreTest, UnreadableDetailIsNamed) {
  events(2);
  {
    auto txn = store_->begin();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(
        txn->append(NewEvent{EventKind::kCheckpointSigned, "", "", "{}"}, clock_.now()).ok());
    ASSERT_TRUE(txn->commit().ok());
  }
  auto r = verify();
  EXPECT_EQ(r.bad_seq, 3);
  EXPECT_NE(r.problem.find("not a readable checkpoint"), std::string::npos);
}

TEST_F(CheckpointStoreTest, NoCheckpointProvesNothing) {
  events(3);
  auto r = verify();
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.checkpoints, 0);
  EXPECT_EQ(r.proven_seq, 0);
  EXPECT_EQ(r.unsigned_tail, 3);
}

}  // namespace
}  // namespace tw::storage

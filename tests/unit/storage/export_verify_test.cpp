// Tests for storage/export_verify.h: an exported copy (export lines of a real database) checked
// alone and against the database — intact, with at-least-once duplicates, a gap, a line whose
// content changed, a copy that starts mid-chain, a rewritten or truncated database, checkpoints.

#include "storage/export_verify.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "storage/export_log.h"
#include "tests/unit/storage/store_fixture.h"

namespace tw::storage {
namespace {

using testing::StoreTest;

class ExportVerifyTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    auto txn = store_->begin();
    ASSERT_TRUE(txn.ok());
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(txn->append(NewEvent{EventKind::kDaemonStarted, i % 2 ? "prod" : "", "",
                                       "{\"n\":" + std::to_string(i) + "}"},
                              clock_.now())
                      .ok());
    }
    ASSERT_TRUE(txn->commit().ok());
    auto rows = read_rows_after(store_->db(), 0, 100);
    ASSERT_TRUE(rows.ok());
    for (const auto& r : *rows) lines_.push_back(export_line(r));
  }

  ExportVerifyReport check(const std::vector<std::string>& lines, bool with_db = false) {
    std::string text;
    for (const auto& l : lines) text += l + "\n";
    std::istringstream in(text);
    ExportVerifyOptions o;
    if (with_db) o.db = &store_->db();
    auto rep = verify_export(in, o);
    EXPECT_TRUE(rep.ok());
    return rep.ok() ? *rep : ExportVerifyReport{};
  }

  std::vector<std::string> lines_;
};

TEST_F(ExportVerifyTest, IntactCopyPassesAloneAndAgainstTheDatabase) {
  auto r = check(lines_);
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.events, 10);
  EXPECT_EQ(r.first_seq, 1);
  EXPECT_EQ(r.last_seq, 10);
  EXPECT_FALSE(r.compared);
  auto d = check(lines_, true);
  EXPECT_TRUE(d.ok) << d.problem;
  EXPECT_TRUE(d.compared);
  EXPECT_EQ(d.db_head_seq, 10);
}

TEST_F(ExportVerifyTest, LeadingSpacesAndBlankLinesAreIgnored) {
  std::vector<std::string> l = {""};
  for (const auto& x : lines_) l.push_back(" " + x);
  l.push_back("   ");
  auto r = check(l);
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.events, 10);
}

TEST_F(ExportVerifyTest, IdenticalResentLinesAreCountedNotErrors) {
  std::vector<std::string> l(lines_.begin(), lines_.begin() + 6);
  l.insert(l.end(), lines_.begin() + 3, lines_.end());  // 4..6 sent again after a crash
  auto r = check(l, true);
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.duplicates, 3);
  EXPECT_EQ(r.events, 10);
}

TEST_F(ExportVerifyTest, DuplicateWithOtherContentIsAnError) {
  std::vector<std::string> l(lines_.begin(), lines_.begin() + 5);
  auto row = parse_export_line(lines_[2]);
  ASSERT_TRUE(row.ok());
  row->detail = "{\"n\":99}";
  l.push_back(export_line(*row));
  auto r = check(l);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_line, 6);
  EXPECT_NE(r.problem.find("repeats seq 3 with a different content"), std::string::npos)
      << r.problem;
}

TEST_F(ExportVerifyTest, GapIsNamed) {
  std::vector<std::string> l(lines_.begin(), lines_.begin() + 3);
  l.insert(l.end(), lines_.begin() + 7, lines_.end());
  auto r = check(l);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.problem.find("seq 4..7 missing"), std::string::npos) << r.problem;
}

TEST_F(ExportVerifyTest, EditedLineIsNamed) {
  auto l = lines_;
  auto row = parse_export_line(l[4]);
  ASSERT_TRUE(row.ok());
  row->detail = "{\"n\":\"edited\"}";
  l[4] = export_line(*row);
  auto r = check(l);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_line, 5);
  EXPECT_NE(r.problem.find("(seq 5) was modified"), std::string::npos) << r.problem;
}

TEST_F(ExportVerifyTest, GarbageLineIsNamed) {
  auto l = lines_;
  l[1] = "{\"seq\":2";
  auto r = check(l);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_line, 2);
  EXPECT_NE(r.problem.find("not an export line"), std::string::npos) << r.problem;
}

TEST_F(ExportVerifyTest, CopyMayStartMidChain) {
  std::vector<std::string> l(lines_.begin() + 4, lines_.end());
  auto r = check(l, true);
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.first_seq, 5);
  EXPECT_EQ(r.events, 6);
}

TEST_F(ExportVerifyTest, RewrittenDatabaseDivergesAtTheFirstChangedSeq) {
  // The attacker recomputes the database's chain from seq 4 on: every later hash changes.
  tamper("UPDATE audit_events SET hash = 'x' || substr(hash, 2) WHERE seq >= 4;");
  auto r = check(lines_, true);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.problem.find("the database's seq 4 differs from the exported copy"),
            std::string::npos)
      << r.problem;
}

TEST_F(ExportVerifyTest, ARowEditedInPlaceWithItsHashLeftAloneDiverges) {
  // Not a rewrite of the chain: one detail changed, every hash as it was.
  tamper("UPDATE audit_events SET detail = '{\"n\":99}' WHERE seq = 6;");
  auto r = check(lines_, true);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.problem.find("the database's seq 6 differs from the exported copy"),
            std::string::npos)
      << r.problem;
}

TEST_F(ExportVerifyTest, AResentLineFromBeforeTheCopyStartsIsAnError) {
  std::vector<std::string> lines(lines_.begin() + 4, lines_.end());
  lines.push_back(lines_[2]);  // seq 3, which this copy never held
  auto r = check(lines);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.problem.find("goes back to seq 3, before the copy's first seq 5"), std::string::npos)
      << r.problem;
}

TEST_F(ExportVerifyTest, TruncatedDatabaseIsAnError) {
  tamper("DELETE FROM audit_events WHERE seq > 7;");
  auto r = check(lines_, true);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.problem.find("ends before seq 8"), std::string::npos) << r.problem;
}

TEST_F(ExportVerifyTest, DatabaseAheadOfTheCopyIsFine) {
  std::vector<std::string> l(lines_.begin(), lines_.begin() + 6);  // the sink lags
  auto r = check(l, true);
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.db_head_seq, 10);
}

TEST_F(ExportVerifyTest, CheckpointsInTheCopyAreChecked) {
  auto key = ed25519::PrivateKey::generate();
  ASSERT_TRUE(key.ok());
  {
    auto txn = store_->begin();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(sign_checkpoint(*txn, *key, "h", clock_.now()).ok());
    ASSERT_TRUE(txn->commit().ok());
  }
  auto rows = read_rows_after(store_->db(), 10, 10);
  ASSERT_TRUE(rows.ok() && rows->size() == 1u);
  auto l = lines_;
  l.push_back(export_line(rows->front()));
  std::vector<ed25519::PublicKey> keys = {key->public_key()};
  std::string text;
  for (const auto& x : l) text += x + "\n";
  std::istringstream in(text);
  ExportVerifyOptions o;
  o.keys = &keys;
  auto r = verify_export(in, o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ok) << r->problem;
  ASSERT_TRUE(r->checkpoints.has_value());
  EXPECT_EQ(r->checkpoints->proven_seq, 10);

  auto other = ed25519::PrivateKey::generate();
  ASSERT_TRUE(other.ok());
  std::vector<ed25519::PublicKey> wrong = {other->public_key()};
  std::istringstream in2(text);
  o.keys = &wrong;
  auto bad = verify_export(in2, o);
  ASSERT_TRUE(bad.ok());
  EXPECT_FALSE(bad->ok);
  EXPECT_NE(bad->problem.find("signed by another key"), std::string::npos) << bad->problem;
}

}  // namespace
}  // namespace tw::storage

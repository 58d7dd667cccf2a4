// Tests for storage/pipeline.h: every row in order across batch boundaries, NULLs as empty,
// stopping early, and an empty result.

#include "storage/pipeline.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/core/test_support.h"

namespace tw::storage {
namespace {

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = Db::open(dir_.file("p.db"), Db::Mode::kReadWrite);
    ASSERT_TRUE(db.ok());
    db_ = std::move(*db);
    ASSERT_TRUE(
        db_->exec(
               "CREATE TABLE t(n INTEGER PRIMARY KEY, s TEXT); "
               "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 10000) "
               "INSERT INTO t SELECT i, CASE WHEN i % 7 = 0 THEN NULL ELSE 'row ' || i END FROM c")
            .ok());
  }
  tw::testing::TempDir dir_;
  std::unique_ptr<Db> db_;
};

TEST_F(PipelineTest, EveryRowInOrder) {
  auto st = db_->prepare("SELECT n, s FROM t ORDER BY n");
  ASSERT_TRUE(st.ok());
  std::int64_t expected = 1;
  auto s = pipelined_rows(*st, 2, [&](const std::string_view* f) {
    EXPECT_EQ(f[0], std::to_string(expected));
    EXPECT_EQ(f[1], expected % 7 == 0 ? std::string() : "row " + std::to_string(expected));
    ++expected;
    return true;
  });
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(expected, 10001);
}

TEST_F(PipelineTest, StopsEarly) {
  auto st = db_->prepare("SELECT n FROM t ORDER BY n");
  ASSERT_TRUE(st.ok());
  int seen = 0;
  auto s = pipelined_rows(*st, 1, [&](const std::string_view*) { return ++seen < 3000; });
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(seen, 3000);
}

TEST_F(PipelineTest, NoRows) {
  auto st = db_->prepare("SELECT n FROM t WHERE n < 0");
  ASSERT_TRUE(st.ok());
  int seen = 0;
  EXPECT_TRUE(pipelined_rows(*st, 1, [&](const std::string_view*) { return ++seen > 0; }).ok());
  EXPECT_EQ(seen, 0);
}

// A statement that fails part-way: the rows before the failure are processed, then its error
// is returned.
TEST_F(PipelineTest, ReadErrorAfterTheRowsBeforeIt) {
  auto st = db_->prepare(
      "SELECT CASE WHEN n = 5000 THEN json_extract('not json', '$') ELSE n END FROM t ORDER BY n");
  ASSERT_TRUE(st.ok());
  int seen = 0;
  auto s = pipelined_rows(*st, 1, [&](const std::string_view*) { return ++seen > 0; });
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(seen, 4999);
}

}  // namespace
}  // namespace tw::storage

// Tests for storage/read_txn.h beyond the snapshot itself (report_queries_test.cpp): open() on a
// file that is missing, unreadable, a directory, not a database or empty — each an error value
// naming the file, never a crash — and end() and a move that leave nothing to roll back twice.

#include "storage/read_txn.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "storage/report_queries.h"
#include "storage/sqlite.h"
#include "tests/unit/storage/store_fixture.h"

namespace tw::storage {
namespace {

using tw::testing::TempDir;

void expect_clear_error(const Result<ReadTxn>& txn, const std::string& path, ErrorCode code) {
  ASSERT_FALSE(txn.ok()) << path;
  EXPECT_EQ(txn.error().code, code) << txn.error().message;
  EXPECT_NE(txn.error().message.find(path), std::string::npos) << txn.error().message;
  EXPECT_EQ(txn.error().message.find('\n'), std::string::npos) << txn.error().message;
}

TEST(ReadTxnOpen, AMissingFileIsNotFoundAndNotCreated) {
  TempDir dir;
  const std::string path = dir.file("missing.db");
  auto txn = ReadTxn::open(path);
  expect_clear_error(txn, path, ErrorCode::kNotFound);
  EXPECT_NE(txn.error().message.find("does not exist"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(path)) << "a reader never creates the database";
  expect_clear_error(ReadTxn::open(dir.file("no-dir/audit.db")), dir.file("no-dir/audit.db"),
                     ErrorCode::kNotFound);
}

TEST(ReadTxnOpen, AnUnreadableFileIsADatabaseError) {
  TempDir dir;
  const std::string path = dir.write("audit.db", "", 0000);
  if (::access(path.c_str(), R_OK) == 0) GTEST_SKIP() << "running as root: mode 0 is readable";
  auto txn = ReadTxn::open(path);
  expect_clear_error(txn, path, ErrorCode::kDatabase);
  EXPECT_NE(txn.error().message.find("cannot read database"), std::string::npos)
      << txn.error().message;
}

TEST(ReadTxnOpen, ADirectoryIsADatabaseError) {
  TempDir dir;
  expect_clear_error(ReadTxn::open(dir.path().string()), dir.path().string(), ErrorCode::kDatabase);
}

TEST(ReadTxnOpen, AFileThatIsNotADatabaseIsADatabaseError) {
  TempDir dir;
  const std::string path = dir.write("audit.db", std::string(4096, 'x'));
  auto txn = ReadTxn::open(path);
  expect_clear_error(txn, path, ErrorCode::kDatabase);
  EXPECT_NE(txn.error().message.find("not a database"), std::string::npos) << txn.error().message;
}

TEST(ReadTxnOpen, AnEmptyFileOpensButItsReadsFail) {
  // SQLite takes a 0-byte file for an empty database: the snapshot opens, and the first query
  // says what is missing instead of crashing.
  TempDir dir;
  const std::string path = dir.write("audit.db", "");
  auto txn = ReadTxn::open(path);
  ASSERT_TRUE(txn.ok()) << txn.error().message;
  auto head = chain_head_seq(*txn);
  ASSERT_FALSE(head.ok());
  EXPECT_EQ(head.error().code, ErrorCode::kDatabase);
}

class ReadTxnLifetime : public testing::StoreTest {};

TEST_F(ReadTxnLifetime, EndIsIdempotentAndAMovedFromTxnEndsNothing) {
  auto txn = ReadTxn::open(path_);
  ASSERT_TRUE(txn.ok()) << txn.error().message;
  ReadTxn moved(std::move(*txn));
  EXPECT_EQ(moved.path(), path_);
  ASSERT_TRUE(moved.end().ok());
  EXPECT_TRUE(moved.end().ok()) << "a second end() is a no-op";
  // A transaction on a borrowed connection: a new one can begin once it ended.
  auto first = ReadTxn::begin(store_->db());
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_FALSE(ReadTxn::begin(store_->db()).ok()) << "no nested transactions";
  ASSERT_TRUE(first->end().ok());
  auto second = ReadTxn::begin(store_->db());
  EXPECT_TRUE(second.ok()) << second.error().message;
}

}  // namespace
}  // namespace tw::storage

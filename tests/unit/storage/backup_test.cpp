// Tests for storage/backup.h and the safety checks of opening a database (storage/schema.h,
// storage/sqlite.h): a verified rollback-journal copy, never over an existing file unless asked,
// another application's database never adopted, damaged files named in errors.

#include "storage/backup.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "storage/schema.h"
#include "tests/unit/storage/store_fixture.h"

namespace tw::storage {
namespace {

using testing::kDropTriggers;
using testing::StoreTest;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class BackupTest : public StoreTest {
 protected:
  void append_events(int n) {
    for (int i = 0; i < n; ++i) {
      auto txn = store_->begin();
      ASSERT_TRUE(txn.ok()) << txn.error().message;
      NewEvent e{EventKind::kTokenCreated, "prod", "tok-" + std::to_string(i),
                 R"({"description":"d"})"};
      ASSERT_TRUE(txn->append(e, clock_.now()).ok());
      ASSERT_TRUE(txn->commit().ok());
      clock_.advance(std::chrono::seconds(1));
    }
  }
  // Closes the store, then overwrites the root page of audit_events with garbage.
  void damage_audit_events() {
    const std::int64_t page_size = count("PRAGMA page_size");
    const std::int64_t root =
        count("SELECT rootpage FROM sqlite_master WHERE name = 'audit_events'");
    store_.reset();  // the last connection: the WAL is checkpointed into the file
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp((root - 1) * page_size);
    std::string junk(static_cast<std::size_t>(page_size), '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  // Names in the backup directory other than `keep` (temp files left behind).
  std::vector<std::string> leftovers(const std::string& keep) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(backups_)) {
      if (e.path().filename() != keep) out.push_back(e.path().filename().string());
    }
    return out;
  }
  std::string backups_ = [this] {
    auto d = dir_.file("backups");
    std::filesystem::create_directory(d);
    return d;
  }();
};

TEST_F(BackupTest, WritesAVerifiedRollbackJournalCopyWithMode0600) {
  append_events(7);
  const std::string target = backups_ + "/b.db";
  auto r = backup_database(path_, target, false);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->chain.ok) << r->chain.problem;
  EXPECT_EQ(r->chain.rows, 7);
  EXPECT_EQ(r->chain.head_seq, 7);
  EXPECT_EQ(r->chain.head_hash, text("SELECT hash FROM audit_log WHERE seq = 7"));
  struct stat st {};
  ASSERT_EQ(::stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(r->bytes, static_cast<std::uint64_t>(st.st_size));
  // File format bytes 18 and 19: 1 = rollback journal (2 would be WAL).
  std::string header = read_file(target).substr(0, 100);
  EXPECT_EQ(header.substr(0, 16), std::string("SQLite format 3\0", 16));
  EXPECT_EQ(header[18], 1);
  EXPECT_EQ(header[19], 1);
  EXPECT_TRUE(leftovers("b.db").empty());
  // The copy opens as a current tokenwarden database and holds the same rows.
  auto copy = AuditStore::open(target, AuditStore::Mode::kReadOnly);
  ASSERT_TRUE(copy.ok()) << copy.error().message;
  auto rep = verify_chain((*copy)->db());
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(rep->head_hash, r->chain.head_hash);
}

TEST_F(BackupTest, WhileAWriteTransactionIsOpenTheCopyHasOnlyCommittedRows) {
  append_events(3);
  auto txn = store_->begin();
  ASSERT_TRUE(txn.ok());
  ASSERT_TRUE(txn->append({EventKind::kTokenCreated, "prod", "late", "{}"}, clock_.now()).ok());
  // The daemon holds its write transaction; the online backup reads the last commit.
  auto r = backup_database(path_, backups_ + "/b.db", false);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->chain.ok);
  EXPECT_EQ(r->chain.rows, 3);
  ASSERT_TRUE(txn->commit().ok());
}

TEST_F(BackupTest, RefusesAnExistingFileUnlessOverwriting) {
  append_events(2);
  const std::string target = backups_ + "/b.db";
  { std::ofstream(target) << "keep me"; }
  auto r = backup_database(path_, target, false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message.find(target), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("--force"), std::string::npos) << r.error().message;
  EXPECT_EQ(read_file(target), "keep me");
  EXPECT_TRUE(leftovers("b.db").empty());

  auto forced = backup_database(path_, target, true);
  ASSERT_TRUE(forced.ok()) << forced.error().message;
  EXPECT_EQ(forced->chain.rows, 2);
  EXPECT_EQ(read_file(target).substr(0, 15), "SQLite format 3");
}

TEST_F(BackupTest, RefusesADirectoryAndTheDatabaseItself) {
  auto dir = backup_database(path_, backups_, true);
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(dir.error().message.find("is a directory"), std::string::npos);
  auto self = backup_database(path_, path_, true);
  ASSERT_FALSE(self.ok());
  EXPECT_EQ(self.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(self.error().message.find("the database itself"), std::string::npos);
}

TEST_F(BackupTest, MissingSourceOrDirectoryWritesNothing) {
  auto missing = backup_database(dir_.file("nope.db"), backups_ + "/b.db", false);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(leftovers("").empty());
  auto no_dir = backup_database(path_, dir_.file("no/such/dir/b.db"), false);
  ASSERT_FALSE(no_dir.ok());
  EXPECT_EQ(no_dir.error().code, ErrorCode::kIo);
  EXPECT_NE(no_dir.error().message.find("no/such/dir"), std::string::npos)
      << no_dir.error().message;
}

TEST_F(BackupTest, ABrokenChainIsCopiedAndReported) {
  append_events(4);
  exec(std::string(kDropTriggers) + "UPDATE audit_events SET detail = '{}' WHERE seq = 2;");
  auto r = backup_database(path_, backups_ + "/b.db", false);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->chain.ok);
  EXPECT_EQ(r->chain.bad_seq, 2);
  EXPECT_FALSE(r->chain.append_only_triggers);
  EXPECT_TRUE(std::filesystem::exists(backups_ + "/b.db"));
}

TEST_F(BackupTest, ADamagedSourceFailsTheIntegrityCheckAndWritesNothing) {
  append_events(300);
  damage_audit_events();
  auto r = backup_database(path_, backups_ + "/b.db", false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kDatabase);
  EXPECT_NE(r.error().message.find(path_), std::string::npos) << r.error().message;
  EXPECT_TRUE(leftovers("").empty());
}

// --- opening: ownership, application_id, damaged files -----------------------------------------

TEST_F(StoreTest, MigrationMarksTheFileWithTheApplicationId) {
  EXPECT_EQ(count("PRAGMA application_id"), kApplicationId);
}

TEST(OpenSafety, AnotherApplicationsDatabaseIsNeverAdopted) {
  tw::testing::TempDir dir;
  const std::string path = dir.file("other.db");
  {
    auto db = Db::open(path, Db::Mode::kReadWrite);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)
                    ->exec("CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT); "
                           "INSERT INTO customers(name) VALUES ('acme');")
                    .ok());
  }
  const std::string before = read_file(path);
  for (auto mode : {AuditStore::Mode::kReadWrite, AuditStore::Mode::kReadOnly}) {
    auto s = AuditStore::open(path, mode);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, ErrorCode::kDatabase);
    EXPECT_NE(s.error().message.find(path), std::string::npos) << s.error().message;
    EXPECT_NE(s.error().message.find("not a tokenwarden audit database"), std::string::npos)
        << s.error().message;
    EXPECT_NE(s.error().message.find("customers"), std::string::npos) << s.error().message;
  }
  EXPECT_EQ(read_file(path), before) << "the file was changed (journal mode, tables)";
  EXPECT_FALSE(std::filesystem::exists(path + "-wal"));
}

TEST(OpenSafety, AnotherApplicationsUserVersionDoesNotMakeItOurs) {
  tw::testing::TempDir dir;
  const std::string path = dir.file("other.db");
  {
    auto db = Db::open(path, Db::Mode::kReadWrite);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->exec("CREATE TABLE meta(k TEXT); PRAGMA user_version = 1;").ok());
  }
  auto s = AuditStore::open(path, AuditStore::Mode::kReadWrite);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("not a tokenwarden audit database"), std::string::npos)
      << s.error().message;
}

TEST(OpenSafety, AForeignApplicationIdIsRefused) {
  tw::testing::TempDir dir;
  const std::string path = dir.file("other.db");
  {
    auto db = Db::open(path, Db::Mode::kReadWrite);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->exec("PRAGMA application_id = 1234").ok());
  }
  auto s = AuditStore::open(path, AuditStore::Mode::kReadWrite);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("another application"), std::string::npos) << s.error().message;
}

TEST(OpenSafety, AnEmptyFileBecomesATokenwardenDatabase) {
  tw::testing::TempDir dir;
  const std::string path = dir.write("audit.db", "");
  auto s = AuditStore::open(path, AuditStore::Mode::kReadWrite);
  ASSERT_TRUE(s.ok()) << s.error().message;
}

TEST(OpenSafety, ATextFileIsNamedInTheError) {
  tw::testing::TempDir dir;
  const std::string path = dir.write("garbage.db", std::string(4096, 'x'));
  auto s = AuditStore::open(path, AuditStore::Mode::kReadOnly);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find(path), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("not a database"), std::string::npos) << s.error().message;
}

TEST_F(BackupTest, ADamagedTableIsNamedWithItsFileWhenRead) {
  append_events(300);
  damage_audit_events();
  auto s = AuditStore::open(path_, AuditStore::Mode::kReadOnly);
  ASSERT_TRUE(s.ok()) << s.error().message;
  auto rep = verify_chain((*s)->db());
  ASSERT_FALSE(rep.ok()) << "read a damaged table without an error";
  EXPECT_NE(rep.error().message.find(path_), std::string::npos) << rep.error().message;
  EXPECT_NE(rep.error().message.find("malformed"), std::string::npos) << rep.error().message;
}

}  // namespace
}  // namespace tw::storage

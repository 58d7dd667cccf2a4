#pragma once
// A thin RAII layer over the SQLite C API for the storage module (sqlite3.h stays out of headers).
//
// Db owns a connection and a cache of prepared statements; Stmt binds parameters (never string
// concatenation) and steps; Transaction rolls back unless committed. Destructors never throw.
//
// Thread safety: a Db is used by one thread at a time (the AuditStore serializes access).
// Errors: kDatabase with SQLite's message and the operation; "database or disk is full" and
// "database is locked" are reported as such.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace tw::storage {

class Stmt {
 public:
  Stmt() = default;
  Stmt(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Stmt(Stmt&& other) noexcept;
  Stmt& operator=(Stmt&& other) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  Stmt& bind(int index, std::string_view value);
  Stmt& bind(int index, const char* value) { return bind(index, std::string_view(value)); }
  Stmt& bind(int index, const std::string& value) { return bind(index, std::string_view(value)); }
  Stmt& bind(int index, std::int64_t value);
  Stmt& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
  Stmt& bind(int index, const std::optional<std::string>& value);
  Stmt& bind_null(int index);

  // true: a row is available; false: done.
  Result<bool> step();
  // Steps to completion, ignoring rows.
  Status run();
  void reset();

  std::int64_t int64(int col) const;
  std::string text(int col) const;
  // The text without a copy: valid until the next step(), reset() or column call on `col`.
  std::string_view view(int col) const;
  std::optional<std::string> opt_text(int col) const;
  bool is_null(int col) const;

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

class Db {
 public:
  enum class Mode { kReadWrite, kReadOnly };
  // kReadWrite creates the file (mode 0600) if needed (an existing file keeps its mode); kReadOnly
  // requires it to exist, reads its schema before returning, and opens a WAL-mode file whose -shm
  // cannot be created (a copy in a read-only directory or on read-only media) as immutable, unless
  // a non-empty -wal (commits) or -journal (an interrupted transaction) lies beside it: then it
  // fails, saying so.
  static Result<std::unique_ptr<Db>> open(const std::string& path, Mode mode);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  Status exec(std::string_view sql);
  Result<Stmt> prepare(std::string_view sql);
  // A cached statement, reset and with bindings cleared. Valid until the Db is destroyed.
  Result<Stmt*> cached(const std::string& sql);
  std::int64_t last_insert_rowid() const;
  // Copies this database into `target` with SQLite's online backup API: one consistent
  // snapshot, while other connections keep writing (WAL). Retries briefly while locked.
  Status backup_into(Db& target);
  const std::string& path() const { return path_; }

 private:
  Db(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
  std::unordered_map<std::string, Stmt> cache_;
};

// BEGIN IMMEDIATE on construction (via begin), ROLLBACK in the destructor unless committed.
class Transaction {
 public:
  static Result<Transaction> begin(Db& db);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  Status commit();

 private:
  explicit Transaction(Db* db) : db_(db) {}
  Db* db_;
};

Error db_error(sqlite3* db, int rc, std::string_view what);

// Takes group and other permissions off a file this user owns (the audit database is 0600;
// SQLite gives its -wal and -shm the same mode).
void restrict_to_owner(const std::string& path);

}  // namespace tw::storage

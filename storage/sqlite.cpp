#include "storage/sqlite.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "core/strings.h"

namespace tw::storage {

Error db_error(sqlite3* db, int rc, std::string_view what) {
  std::string msg(what);
  int primary = rc & 0xFF;
  // A damaged or unreadable file: name it (SQLite's own messages do not), unless `what` does.
  if (db != nullptr && (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB ||
                        primary == SQLITE_CANTOPEN || primary == SQLITE_IOERR)) {
    const char* file = sqlite3_db_filename(db, "main");
    if (file != nullptr && *file != '\0' && msg.find(file) == std::string::npos) {
      msg += " on \"" + printable(file, 200) + "\"";
    }
  }
  msg += ": ";
  if (primary == SQLITE_FULL) {
    msg += "database or disk is full";
  } else if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    msg += "database is locked by another process (timed out after 5s)";
  } else if (db != nullptr) {
    msg += sqlite3_errmsg(db);
  } else {
    msg += sqlite3_errstr(rc);
  }
  return make_error(ErrorCode::kDatabase, std::move(msg));
}

Stmt::Stmt(Stmt&& other) noexcept : db_(other.db_), stmt_(other.stmt_) { other.stmt_ = nullptr; }

Stmt& Stmt::operator=(Stmt&& other) noexcept {
  if (this != &other) {
    if (stmt_ != nullptr) sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = other.stmt_;
    other.stmt_ = nullptr;
  }
  return *this;
}

Stmt::~Stmt() {
  if (stmt_ != nullptr) sqlite3_finalize(stmt_);
}

Stmt& Stmt::bind(int index, std::string_view value) {
  sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}

Stmt& Stmt::bind(int index, std::int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Stmt& Stmt::bind(int index, const std::optional<std::string>& value) {
  if (value) return bind(index, std::string_view(*value));
  return bind_null(index);
}

Stmt& Stmt::bind_null(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

Result<bool> Stmt::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_error(db_, rc, "database statement failed");
}

Status Stmt::run() {
  while (true) {
    auto r = step();
    if (!r.ok()) return r.take_error();
    if (!*r) return ok_status();
  }
}

void Stmt::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::int64_t Stmt::int64(int col) const { return sqlite3_column_int64(stmt_, col); }

std::string Stmt::text(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  if (p == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
}

std::string_view Stmt::view(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  if (p == nullptr) return {};
  return std::string_view(reinterpret_cast<const char*>(p),
                          static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
}

std::optional<std::string> Stmt::opt_text(int col) const {
  if (is_null(col)) return std::nullopt;
  return text(col);
}

bool Stmt::is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

namespace {

// "file:" URI for `path` (RFC 3986 percent-encoding of everything but unreserved bytes and '/').
std::string file_uri(const std::string& path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string uri = "file:";
  for (char ch : path) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
        c == '-' || c == '_' || c == '.' || c == '~') {
      uri += static_cast<char>(c);
    } else {
      uri += '%';
      uri += kHex[c >> 4];
      uri += kHex[c & 0xF];
    }
  }
  return uri;
}

// Opens and reads the schema, so that an unreadable file fails here rather than at the first query.
int open_and_probe(const std::string& name, int flags, sqlite3** out) {
  int rc = sqlite3_open_v2(name.c_str(), out, flags, nullptr);
  if (rc != SQLITE_OK) return rc;
  sqlite3_extended_result_codes(*out, 1);
  sqlite3_busy_timeout(*out, 5000);
  return sqlite3_exec(*out, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr);
}

// A WAL-mode file can only be read where its -shm index exists or can be created: a copy in
// a read-only directory or on read-only media cannot. Such a file is opened immutable, which
// is exact as long as no -wal file holds commits that are not in the main file yet.
bool needs_immutable(int rc) {
  int primary = rc & 0xFF;
  return primary == SQLITE_CANTOPEN || primary == SQLITE_READONLY;
}

// Settings for the whole library, made before its first connection (afterwards SQLite refuses
// them). Memory statistics, which tokenwarden never reads, take a global mutex around every
// allocation SQLite makes: a few percent of a poll that writes 100k rows.
void configure_library() {
  static std::once_flag once;
  std::call_once(once, [] { (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}

}  // namespace

Result<std::unique_ptr<Db>> Db::open(const std::string& path, Mode mode) {
  configure_library();
  if (mode == Mode::kReadWrite) {
    // Create the file ourselves so it starts with mode 0600; SQLite gives -wal/-shm the same mode.
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return make_error(ErrorCode::kDatabase, "cannot open database \"" + printable(path, 200) +
                                                  "\": " + std::strerror(errno));
    }
    ::close(fd);
  } else if (::access(path.c_str(), F_OK) != 0) {
    return make_error(ErrorCode::kNotFound, "database \"" + printable(path, 200) +
                                                "\" does not exist (has tokenwarden polled yet?)");
  } else if (::access(path.c_str(), R_OK) != 0) {
    return make_error(ErrorCode::kDatabase, "cannot read database \"" + printable(path, 200) +
                                                "\": " + std::strerror(errno));
  }
  const std::string where = "cannot open database \"" + printable(path, 200) + "\"";
  sqlite3* db = nullptr;
  if (mode == Mode::kReadWrite) {
    int rc =
        sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      Error e = db_error(db, rc, where);
      sqlite3_close(db);
      return e;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, 5000);
    return std::unique_ptr<Db>(new Db(db, path));
  }
  int rc = open_and_probe(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, &db);
  if (rc != SQLITE_OK && needs_immutable(rc)) {
    Error plain = db_error(db, rc, where);
    sqlite3_close(db);
    db = nullptr;
    struct stat side {};
    if (::stat((path + "-wal").c_str(), &side) == 0 && side.st_size > 0) {
      return make_error(
          ErrorCode::kDatabase,
          where +
              ": it is in WAL mode, its -wal file holds commits not yet in the main "
              "file, and its -shm index cannot be created here (read-only directory "
              "or media); copy it with its -wal file to a writable directory and read it "
              "there, or turn it into a backup with `tokenwarden backup --db`");
    }
    if (::stat((path + "-journal").c_str(), &side) == 0 && side.st_size > 0) {
      return make_error(ErrorCode::kDatabase,
                        where +
                            ": a -journal file beside it holds an interrupted transaction that "
                            "cannot be rolled back here (read-only directory or media); read it "
                            "where it was written");
    }
    rc = open_and_probe(file_uri(path) + "?mode=ro&immutable=1",
                        SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, &db);
    if (rc != SQLITE_OK) {
      sqlite3_close(db);
      return plain;
    }
    return std::unique_ptr<Db>(new Db(db, path));
  }
  if (rc != SQLITE_OK) {
    Error e = db_error(db, rc, where);
    sqlite3_close(db);
    return e;
  }
  return std::unique_ptr<Db>(new Db(db, path));
}

void restrict_to_owner(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0 && st.st_uid == ::geteuid()) {
    ::chmod(path.c_str(), 0600);
  }
}

Db::~Db() {
  cache_.clear();
  sqlite3_close(db_);
}

Status Db::exec(std::string_view sql) {
  char* err = nullptr;
  std::string s(sql);
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    sqlite3_free(err);
    return db_error(db_, rc, "database command failed");
  }
  return ok_status();
}

Result<Stmt> Db::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return db_error(db_, rc, "cannot prepare a database statement");
  return Stmt(db_, stmt);
}

Result<Stmt*> Db::cached(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    auto stmt = prepare(sql);
    if (!stmt.ok()) return stmt.take_error();
    it = cache_.emplace(sql, std::move(*stmt)).first;
  }
  it->second.reset();
  return &it->second;
}

std::int64_t Db::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

Status Db::backup_into(Db& target) {
  for (int attempt = 0;; ++attempt) {
    sqlite3_backup* b = sqlite3_backup_init(target.db_, "main", db_, "main");
    if (b == nullptr)
      return db_error(target.db_, sqlite3_errcode(target.db_), "cannot start the backup");
    int rc = sqlite3_backup_step(b, -1);  // every page in one step: one read transaction
    int finished = sqlite3_backup_finish(b);
    if (rc == SQLITE_DONE && finished == SQLITE_OK) return ok_status();
    if (rc == SQLITE_DONE) rc = finished;
    int primary = rc & 0xFF;
    if ((primary != SQLITE_BUSY && primary != SQLITE_LOCKED) || attempt >= 50) {
      // sqlite3_backup_finish leaves the error on the destination connection.
      return db_error(primary == SQLITE_BUSY || primary == SQLITE_LOCKED ? nullptr : target.db_, rc,
                      "cannot copy database \"" + printable(path_, 200) + "\"");
    }
    sqlite3_sleep(100);
  }
}

Result<Transaction> Transaction::begin(Db& db) {
  auto s = db.exec("BEGIN IMMEDIATE");
  if (!s.ok()) return s.take_error();
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_ != nullptr) (void)db_->exec("ROLLBACK");
}

Status Transaction::commit() {
  auto s = db_->exec("COMMIT");
  if (!s.ok()) {
    return s;  // the destructor rolls back
  }
  db_ = nullptr;
  return ok_status();
}

}  // namespace tw::storage

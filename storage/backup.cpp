#include "storage/backup.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "core/strings.h"
#include "storage/audit_store.h"
#include "storage/schema.h"
#include "storage/sqlite.h"

namespace tw::storage {
namespace {

std::string quoted(const std::string& path) { return "\"" + printable(path, 200) + "\""; }

Error io_error(const std::string& what, const std::string& path, int err) {
  return make_error(ErrorCode::kIo, what + " " + quoted(path) + ": " + std::strerror(err));
}

std::string directory_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// The temporary copy: removed (with any journal SQLite left) unless it was renamed into place.
class TempCopy {
 public:
  explicit TempCopy(const std::string& target) : path_(target + ".tmp-XXXXXX") {}
  ~TempCopy() {
    if (fd_ >= 0) ::close(fd_);
    if (created_ && !kept_) {
      ::unlink(path_.c_str());
      ::unlink((path_ + "-journal").c_str());
      ::unlink((path_ + "-wal").c_str());
      ::unlink((path_ + "-shm").c_str());
    }
  }
  TempCopy(const TempCopy&) = delete;
  TempCopy& operator=(const TempCopy&) = delete;

  Status create() {
    fd_ = ::mkstemp(path_.data());  // mode 0600
    if (fd_ < 0) return io_error("cannot create a file in", directory_of(path_), errno);
    created_ = true;
    ::fchmod(fd_, 0600);
    return ok_status();
  }
  Status sync() {
    if (::fsync(fd_) != 0) return io_error("cannot write", path_, errno);
    return ok_status();
  }
  // The header's file format bytes (offsets 18, 19): 1 = rollback journal, 2 = WAL.
  bool rollback_journal() const {
    unsigned char v[2] = {0, 0};
    return ::pread(fd_, v, 2, 18) == 2 && v[0] == 1 && v[1] == 1;
  }
  const std::string& path() const { return path_; }
  void keep() { kept_ = true; }

 private:
  std::string path_;
  int fd_ = -1;
  bool created_ = false;
  bool kept_ = false;
};

// Moves the copy into place; without `overwrite`, never replaces a file that appeared meanwhile.
Status publish(const std::string& from, const std::string& to, bool overwrite) {
  if (overwrite) {
    if (::rename(from.c_str(), to.c_str()) != 0)
      return io_error("cannot rename the backup into", to, errno);
    return ok_status();
  }
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0)
    return ok_status();
  int err = errno;
  if (err == EINVAL || err == ENOSYS || err == ENOTSUP) {  // a file system without RENAME_NOREPLACE
    if (::link(from.c_str(), to.c_str()) == 0) {
      ::unlink(from.c_str());
      return ok_status();
    }
    err = errno;
  }
  if (err == EEXIST) {
    return make_error(ErrorCode::kInvalidArgument,
                      quoted(to) + " appeared while the backup was taken; nothing was replaced");
  }
  return io_error("cannot rename the backup into", to, err);
}

void sync_directory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

Result<BackupResult> backup_database(const std::string& source, const std::string& target,
                                     bool overwrite) {
  struct stat st {};
  if (::stat(target.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      return make_error(ErrorCode::kInvalidArgument,
                        quoted(target) + " is a directory; name the backup file");
    }
    char a[PATH_MAX], b[PATH_MAX];
    if (::realpath(source.c_str(), a) != nullptr && ::realpath(target.c_str(), b) != nullptr &&
        std::strcmp(a, b) == 0) {
      return make_error(ErrorCode::kInvalidArgument, quoted(target) + " is the database itself");
    }
    if (!overwrite) {
      return make_error(
          ErrorCode::kInvalidArgument,
          quoted(target) + " already exists; choose a new name or add --force to replace it");
    }
  }

  // The source must be a readable tokenwarden database of a version this build reads.
  auto store = AuditStore::open(source, AuditStore::Mode::kReadOnly);
  if (!store.ok()) return store.take_error();

  TempCopy tmp(target);
  TW_RETURN_IF_ERROR(tmp.create());
  {
    auto copy = Db::open(tmp.path(), Db::Mode::kReadWrite);
    if (!copy.ok()) return copy.take_error();
    TW_RETURN_IF_ERROR((*store)->db().backup_into(**copy));
    store->reset();  // the read transaction on the live database ends here
    // The page copy keeps the source's WAL flag; a rollback-journal copy needs no -wal/-shm
    // beside it and so stays readable on read-only media.
    TW_RETURN_IF_ERROR((*copy)->exec("PRAGMA journal_mode = DELETE"));
  }
  TW_RETURN_IF_ERROR(tmp.sync());
  if (!tmp.rollback_journal()) {
    return make_error(ErrorCode::kDatabase, "the copy " + quoted(tmp.path()) +
                                                " did not switch to rollback-journal mode");
  }

  BackupResult result;
  {
    auto check = AuditStore::open(tmp.path(), AuditStore::Mode::kReadOnly);
    if (!check.ok()) return check.take_error();
    auto problem = integrity_problem((*check)->db());
    if (!problem.ok()) return problem.take_error();
    if (!problem->empty()) {
      return make_error(ErrorCode::kDatabase,
                        "the copy of " + quoted(source) + " fails SQLite's integrity check (" +
                            printable(*problem, 200) +
                            "): the database may be damaged; no backup was written");
    }
    auto chain = verify_chain((*check)->db());
    if (!chain.ok()) return chain.take_error();
    result.chain = std::move(*chain);
  }

  TW_RETURN_IF_ERROR(publish(tmp.path(), target, overwrite));
  tmp.keep();
  sync_directory(directory_of(target));
  if (::stat(target.c_str(), &st) == 0) result.bytes = static_cast<std::uint64_t>(st.st_size);
  return result;
}

}  // namespace tw::storage

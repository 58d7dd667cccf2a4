#include "export/file_sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "storage/export_log.h"

namespace tw::exporting {

namespace {

Error io_error(const std::string& path, const std::string& what, int err) {
  return make_error(ErrorCode::kIo,
                    "cannot " + what + " the export file " + path + ": " + std::strerror(err));
}

// The offset just after the last "\n" in the file's first `size` bytes (0 if there is none).
Result<off_t> end_of_last_line(int fd, off_t size, const std::string& path) {
  char buf[8192];
  off_t end = size;
  while (end > 0) {
    const off_t start =
        end > static_cast<off_t>(sizeof buf) ? end - static_cast<off_t>(sizeof buf) : 0;
    const auto n = ::pread(fd, buf, static_cast<std::size_t>(end - start), start);
    if (n < 0) return io_error(path, "read", errno);
    for (auto i = n; i > 0; --i) {
      if (buf[i - 1] == '\n') return start + static_cast<off_t>(i);
    }
    end = start;
  }
  return off_t{0};
}

}  // namespace

FileSink::FileSink(std::string path) : path_(std::move(path)) {}

FileSink::~FileSink() { close_file(); }

void FileSink::close_file() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

// Opens (creating with 0640) and cuts a torn last line off.
Status FileSink::open_file() {
  if (reopen_.exchange(false)) close_file();
  if (fd_ >= 0) return ok_status();
  // A new file gets 0640 whatever the umask (the service's may be 0077); an existing one keeps
  // the mode its owner (logrotate's `create`) gave it.
  int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
  if (fd >= 0) {
    ::fchmod(fd, 0640);
  } else if (errno == EEXIST) {
    fd = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
  }
  if (fd < 0) return io_error(path_, "open", errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return io_error(path_, "stat", err);
  }
  auto end = end_of_last_line(fd, st.st_size, path_);
  if (!end.ok()) {
    ::close(fd);
    return end.take_error();
  }
  if (*end != st.st_size && ::ftruncate(fd, *end) != 0) {
    const int err = errno;
    ::close(fd);
    return io_error(path_, "truncate the torn last line of", err);
  }
  fd_ = fd;
  return ok_status();
}

Status FileSink::deliver(std::span<const storage::AuditRow> rows) {
  TW_RETURN_IF_ERROR(open_file());
  std::string buf;
  for (const auto& row : rows) {
    buf += storage::export_line(row);
    buf += '\n';
  }
  std::size_t done = 0;
  while (done < buf.size()) {
    const auto n = ::write(fd_, buf.data() + done, buf.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close_file();  // reopening cuts off what was written of this batch
      return io_error(path_, "write", err);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fdatasync(fd_) != 0) {
    const int err = errno;
    close_file();
    return io_error(path_, "sync", err);
  }
  return ok_status();
}

std::optional<std::int64_t> FileSink::resume_point() {
  if (!open_file().ok()) return std::nullopt;
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || st.st_size == 0) return std::nullopt;
  // The file ends with "\n" (open_file cut anything after it): the last line starts after the
  // "\n" before that one.
  auto start = end_of_last_line(fd_, st.st_size - 1, path_);
  if (!start.ok()) return std::nullopt;
  std::string line(static_cast<std::size_t>(st.st_size - 1 - *start), '\0');
  if (::pread(fd_, line.data(), line.size(), *start) != static_cast<ssize_t>(line.size())) {
    return std::nullopt;
  }
  auto row = storage::parse_export_line(line);
  if (!row.ok()) return std::nullopt;
  return row->seq;
}

}  // namespace tw::exporting

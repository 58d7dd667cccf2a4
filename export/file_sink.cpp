#include "export/file_sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

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

// The complete line that ends at `end` - 1 (a "\n"), without it.
Result<std::string> line_before(int fd, off_t end, const std::string& path) {
  auto start = end_of_last_line(fd, end - 1, path);
  if (!start.ok()) return start.take_error();
  std::string line(static_cast<std::size_t>(end - 1 - *start), '\0');
  if (::pread(fd, line.data(), line.size(), *start) != static_cast<ssize_t>(line.size())) {
    return io_error(path, "read", errno == 0 ? EIO : errno);
  }
  return line;
}

// A longer incomplete last line is not a torn export line (details are far smaller).
constexpr off_t kMaxTornBytes = off_t{16} << 20;

// Whether the bytes from `end` to `size` look like the torn line of an interrupted delivery of
// ours: they start like an export line and follow an export line (or nothing).
Result<bool> torn_line_is_ours(int fd, off_t end, off_t size, const std::string& path) {
  if (size - end > kMaxTornBytes) return false;
  constexpr std::string_view kStart = "{\"seq\":";
  std::string head(std::min<std::size_t>(kStart.size(), static_cast<std::size_t>(size - end)),
                   '\0');
  if (::pread(fd, head.data(), head.size(), end) != static_cast<ssize_t>(head.size())) {
    return io_error(path, "read", errno == 0 ? EIO : errno);
  }
  if (!kStart.starts_with(head)) return false;
  if (end == 0) return true;
  auto before = line_before(fd, end, path);
  if (!before.ok()) return before.take_error();
  return storage::parse_export_line(*before).ok();
}

// A new file's directory entry reaches the disk before the first delivery counts as done.
Status sync_directory(const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io_error(dir, "open the directory of", errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return io_error(path, "sync the directory of", err);
  return ok_status();
}

}  // namespace

FileSink::FileSink(std::string path) : path_(std::move(path)) {}

FileSink::~FileSink() { close_file(); }

void FileSink::close_file() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

// Opens (creating with 0640, the directory synced) and cuts a torn last line of ours off.
Status FileSink::open_file() {
  if (reopen_.exchange(false)) close_file();
  if (fd_ >= 0) return ok_status();
  // A new file gets 0640 whatever the umask (the service's may be 0077); an existing one keeps
  // the mode its owner (logrotate's `create`) gave it.
  int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
  if (fd >= 0) {
    ::fchmod(fd, 0640);
    if (Status s = sync_directory(path_); !s.ok()) {
      ::close(fd);
      return s;
    }
  } else if (errno == EEXIST) {
    fd = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
  }
  if (fd < 0) return io_error(path_, "open", errno);
  Status s = cut_torn_line(fd);
  if (!s.ok()) {
    ::close(fd);
    return s;
  }
  fd_ = fd;
  return ok_status();
}

// A delivery cut short leaves a line without its "\n": it is cut off, but only if it looks
// like ours; anything else is refused, so a file that is not an export is never truncated.
Status FileSink::cut_torn_line(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return io_error(path_, "stat", errno);
  auto end = end_of_last_line(fd, st.st_size, path_);
  if (!end.ok()) return end.take_error();
  if (*end == st.st_size) return ok_status();
  auto ours = torn_line_is_ours(fd, *end, st.st_size, path_);
  if (!ours.ok()) return ours.take_error();
  if (!*ours) {
    return make_error(ErrorCode::kIo, "the export file " + path_ +
                                          " ends with an incomplete line that is not a torn "
                                          "export line: refusing to cut it; move the file away");
  }
  if (::ftruncate(fd, *end) != 0) return io_error(path_, "truncate the torn last line of", errno);
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

Result<std::optional<Sink::ResumePoint>> FileSink::resume_point() {
  TW_RETURN_IF_ERROR(open_file());
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return io_error(path_, "stat", errno);
  if (st.st_size == 0) return std::optional<ResumePoint>();
  // The file ends with "\n" (open_file cut anything after it).
  auto line = line_before(fd_, st.st_size, path_);
  if (!line.ok()) return line.take_error();
  auto row = storage::parse_export_line(*line);
  if (!row.ok()) {
    return make_error(ErrorCode::kIo, "the export file " + path_ +
                                          " does not end with an export line: refusing to "
                                          "append to it; move the file away");
  }
  return std::optional<ResumePoint>(ResumePoint{row->seq, row->hash});
}

}  // namespace tw::exporting

#pragma once
// The `file` export sink: the audit log as JSON lines (storage/export_log.h), one event a line,
// appended to a file that `tokenwarden verify --export` reads (docs/audit-export.md).
//
// Each delivery is one write() of the whole batch followed by fdatasync() (and, for a new file,
// an fsync of its directory), so a delivery that returned ok is on disk. A crash can leave a
// torn last line: when the file is opened again it is cut off, but only if it looks like ours
// (it starts with {"seq":, is shorter than 16 MiB, and follows an export line or nothing);
// any other incomplete last line is refused (the file is never truncated). resume_point()
// returns the seq and hash of the last complete line (an error if it is not an export line); the
// exporter checks them against the audit database, so the file gets each event exactly once
// even after a crash between the write and the cursor's update. A new file gets mode 0640
// whatever the umask; an existing one keeps its mode.
//
// reopen() (SIGHUP, after logrotate moved the file away) closes the file; the next delivery
// opens the path again — a new, empty file when it was rotated — and the exporter then resumes
// from its cursor.
//
// Thread safety: one exporter thread; reopen() from any thread. Errors: kIo naming the path.

#include <atomic>
#include <optional>
#include <string>

#include "export/sink.h"

namespace tw::exporting {

class FileSink : public Sink {
 public:
  explicit FileSink(std::string path);
  ~FileSink() override;
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  Status deliver(std::span<const storage::AuditRow> rows) override;
  Result<std::optional<ResumePoint>> resume_point() override;
  void reopen() override { reopen_.store(true); }
  std::string target() const override { return "file:" + path_; }

 private:
  Status open_file();
  Status cut_torn_line(int fd);
  void close_file();
  std::string path_;
  int fd_ = -1;
  std::atomic<bool> reopen_{false};
};

}  // namespace tw::exporting

#pragma once
// The `file` export sink: the audit log as JSON lines (storage/export_log.h), one event a line,
// appended to a file that `tokenwarden verify --export` reads (docs/audit-export.md).
//
// Each delivery is one write() of the whole batch followed by fdatasync(), so a delivery that
// returned ok is on disk. A crash can leave a torn last line: it is cut off (the file truncated
// after its last "\n") when the file is opened again, before anything else is appended.
// resume_point() reads the seq of the last complete line, so the exporter resumes exactly after
// what the file holds: no event is written twice, even after a crash between the write and the
// cursor's update. A new file gets mode 0640 whatever the umask; an existing one keeps its mode.
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
  std::optional<std::int64_t> resume_point() override;
  void reopen() override { reopen_.store(true); }
  std::string target() const override { return "file:" + path_; }

 private:
  Status open_file();
  void close_file();
  std::string path_;
  int fd_ = -1;
  std::atomic<bool> reopen_{false};
};

}  // namespace tw::exporting

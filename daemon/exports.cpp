#include "daemon/exports.h"

#include "export/file_sink.h"
#include "export/journald_sink.h"
#include "export/syslog_sink.h"
#include "storage/sqlite.h"

namespace tw::daemon {

std::unique_ptr<exporting::Sink> make_sink(const ExportSinkConfig& c) {
  switch (c.type) {
    case ExportType::kSyslog:
      return std::make_unique<exporting::SyslogSink>(exporting::SyslogOptions{
          .address = c.address,
          .tls = c.tls,
          .ca_file = c.ca_file,
          .cert_file = c.cert_file,
          .key_file = c.key_file,
      });
    case ExportType::kJournald:
      return std::make_unique<exporting::JournaldSink>(c.socket);
    case ExportType::kFile:
      return std::make_unique<exporting::FileSink>(c.path);
  }
  return nullptr;
}

Result<std::unique_ptr<Exports>> Exports::create(const Config& config, const Clock& clock,
                                                 const std::shared_ptr<LogSink>& sink,
                                                 metrics::Metrics* metrics) {
  std::unique_ptr<Exports> out(new Exports(clock, config.audit.export_max_lag));
  for (const auto& e : config.audit.exports) {
    auto db = storage::Db::open(config.daemon.database, storage::Db::Mode::kReadWrite);
    if (!db.ok())
      return make_error(db.error().code, "export " + e.name + ": " + db.error().message);
    out->exporters_.push_back(std::make_unique<exporting::Exporter>(
        exporting::ExporterOptions{.name = e.name, .target = e.target()}, make_sink(e),
        std::move(*db), clock, Logger("export", sink), metrics));
    out->view_.push_back(out->exporters_.back().get());
  }
  return out;
}

Exports::~Exports() = default;

void Exports::start() {
  for (auto& e : exporters_)
    threads_.push_back(std::make_unique<exporting::ExportThread>(std::move(e)));
  exporters_.clear();
}

void Exports::notify() {
  for (auto& t : threads_) t->notify();
}

void Exports::reopen() {
  for (auto& t : threads_) t->reopen();
}

void Exports::drain_and_stop(Duration grace) {
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (auto& t : threads_) {
    const auto left = deadline - std::chrono::steady_clock::now();
    t->drain_and_stop(std::max<Duration>(Duration(0), std::chrono::duration_cast<Duration>(left)));
  }
}

std::optional<std::string> export_gate_reason(const exporting::ExportStatus& st, Timestamp now,
                                              Duration max_lag) {
  const std::string sink = "export sink " + st.name;
  if (!st.reported || !st.last_ok) return sink + " has not reported its position yet";
  const Duration bound = std::min<Duration>(max_lag, std::chrono::seconds(30)) +
                         exporting::export_backoff(st.failures);
  if (now - *st.last_ok > bound) {
    return sink + " has not read the audit log for " + format_duration(now - *st.last_ok) +
           " (stuck or failing; the bound is " + format_duration(bound) + ")";
  }
  if (!st.oldest_known) return sink + " failed and cannot tell what it has not delivered";
  if (st.oldest_undelivered && now - *st.oldest_undelivered > max_lag) {
    return sink + " has not delivered events recorded " +
           format_duration(now - *st.oldest_undelivered) + " ago (export_max_lag " +
           format_duration(max_lag) + ")";
  }
  return std::nullopt;
}

void Exports::refresh_metrics(Timestamp now) const {
  for (const exporting::Exporter* e : view_) e->refresh_lag_metric(now);
}

std::optional<std::string> Exports::blocking_reason(Timestamp now) const {
  for (const exporting::Exporter* e : view_) {
    if (auto why = export_gate_reason(e->status(), now, max_lag_)) return why;
  }
  return std::nullopt;
}

}  // namespace tw::daemon

// tw-bench-export: measures the audit export's throughput (export/exporter.h).
//
//   tw-bench-export --events N --to syslog://HOST:PORT | file:PATH [--batch B] [--wait-file F]
//
// Fills a fresh audit database (in a temp dir) with N events shaped like a first poll's
// token_discovered events (about 300 bytes of detail each), then drains it through one exporter
// and its sink on this thread, as the daemon's exporter thread does (read a batch after the
// cursor, deliver, write the cursor). --wait-file: then waits until F (the collector's output)
// holds N lines, for the end-to-end time. Prints a table: events, seconds, events/s, and this
// thread's CPU.
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "core/log.h"
#include "core/time.h"
#include "export/exporter.h"
#include "export/file_sink.h"
#include "export/syslog_sink.h"
#include "storage/audit_store.h"
#include "storage/sqlite.h"

namespace {

using namespace tw;

double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void fill(const std::string& db, long events) {
  auto store = storage::AuditStore::open(db, storage::AuditStore::Mode::kReadWrite);
  if (!store.ok()) throw std::runtime_error(store.error().message);
  SystemClock clock;
  for (long done = 0; done < events;) {
    auto txn = (*store)->begin();
    if (!txn.ok()) throw std::runtime_error(txn.error().message);
    for (int i = 0; i < 10000 && done < events; ++i, ++done) {
      const std::string id = "tok-" + std::to_string(done);
      const std::string detail =
          R"({"description":"svc-ingest-)" + std::to_string(done % 97) +
          R"( writer for the telemetry pipeline","permissions":[{"action":"write","resource":"telemetry"},{"action":"read","resource":"telemetry"}],"created_at":"2026-01-01T00:00:00.000Z","expires_at":"2027-01-01T00:00:00.000Z","revoked_at":null,"status":"active"})";
      auto seq = txn->append({EventKind::kTokenDiscovered, "prod-eu", id, detail}, clock.now());
      if (!seq.ok()) throw std::runtime_error(seq.error().message);
    }
    if (auto s = txn->commit(); !s.ok()) throw std::runtime_error(s.error().message);
  }
}

long lines_in(const std::string& path) {
  std::ifstream in(path);
  long n = 0;
  std::string line;
  while (std::getline(in, line)) ++n;
  return n;
}

std::unique_ptr<exporting::Sink> sink_for(const std::string& to) {
  if (to.rfind("syslog://", 0) == 0) {
    exporting::SyslogOptions o;
    o.address = to.substr(9);
    return std::make_unique<exporting::SyslogSink>(o);
  }
  if (to.rfind("file:", 0) == 0) return std::make_unique<exporting::FileSink>(to.substr(5));
  throw std::runtime_error("--to: expected syslog://HOST:PORT or file:PATH");
}

}  // namespace

int main(int argc, char** argv) {
  long events = 100000;
  long batch = 2000;
  std::string to, wait_file;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--events") events = std::atol(argv[i + 1]);
    if (a == "--batch") batch = std::atol(argv[i + 1]);
    if (a == "--to") to = argv[i + 1];
    if (a == "--wait-file") wait_file = argv[i + 1];
  }
  try {
    const auto dir =
        std::filesystem::temp_directory_path() / ("tw-bench-export-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const std::string db = (dir / "audit.db").string();
    fill(db, events);
    auto conn = storage::Db::open(db, storage::Db::Mode::kReadWrite);
    if (!conn.ok()) throw std::runtime_error(conn.error().message);
    SystemClock clock;
    auto log = std::make_shared<StreamLogSink>(stderr, LogFormat::kText, clock);
    exporting::Exporter ex({"bench", to, batch}, sink_for(to), std::move(*conn), clock,
                           Logger("export", log), nullptr);
    const double t0 = now_s(), c0 = thread_cpu_s();
    exporting::StepResult r;
    while ((r = ex.step()) == exporting::StepResult::kDelivered) {
    }
    const double sent = now_s() - t0, cpu = thread_cpu_s() - c0;
    if (r == exporting::StepResult::kFailed || ex.delivered_seq() != events) {
      std::fprintf(stderr, "tw-bench-export: the export failed at seq %lld\n",
                   static_cast<long long>(ex.delivered_seq()));
      return 1;
    }
    double stored = 0;
    if (!wait_file.empty()) {
      while (lines_in(wait_file) < events && now_s() - t0 < 300) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      stored = now_s() - t0;
    }
    std::filesystem::remove_all(dir);
    std::printf("| sink | events | batch | sent in s | events/s sent | exporter CPU s |%s\n",
                wait_file.empty() ? "" : " stored by the collector in s | events/s end to end |");
    std::printf("|---|---|---|---|---|---|%s\n", wait_file.empty() ? "" : "---|---|");
    std::printf("| %s | %ld | %ld | %.2f | %.0f | %.2f |", to.substr(0, to.find(':')).c_str(),
                events, batch, sent, static_cast<double>(events) / sent, cpu);
    if (!wait_file.empty())
      std::printf(" %.2f | %.0f |", stored, static_cast<double>(events) / stored);
    std::printf("\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tw-bench-export: %s\n", e.what());
    return 1;
  }
  return 0;
}

// tw-bench-report: builds a large audit database with the real recorder and enforcer, then
// measures `tokenwarden report` (every format) and `tokenwarden tokens --at` on it.
//
//   tw-bench-report --make-db PATH [--tokens N] [--events N] [--clusters K]
//       Polls simulated token stores (tokenwarden-sim's generator, in-process, no HTTP) with a
//       manual clock advancing one hour per poll and 1-2% churn per poll, with the 50 benchmark
//       policies and 20 exemptions, until the audit log holds --events events. Prints a JSON
//       summary.
//   tw-bench-report --measure PATH --tokenwarden BIN [--repeat N]
//       Runs the commands as child processes over the whole history (output to a file), N times
//       each (default 3); prints one JSON line per command with the median wall time and the
//       largest peak RSS of the child (wait4).
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "bench/bench_policies.h"
#include "core/json_writer.h"
#include "core/time.h"
#include "daemon/poller.h"
#include "sim/token_store.h"
#include "storage/audit_store.h"
#include "storage/recorder.h"
#include "storage/sqlite.h"

namespace {

using namespace tw;

// A cluster client over an in-process simulator store: the poll path without HTTP.
class StoreClient final : public influx::ClusterClient {
 public:
  explicit StoreClient(sim::TokenStore& store) : store_(store) {}
  Result<influx::TokenList> list_tokens(const influx::CallContext&) override {
    influx::TokenList l;
    l.tokens = store_.list(true);
    return l;
  }
  Result<std::optional<Token>> get_token(const std::string& id,
                                         const influx::CallContext&) override {
    return store_.get(id);
  }
  Result<influx::RevokeOutcome> revoke(const std::string& id, const influx::CallContext&) override {
    auto r = store_.revoke(id);
    if (!r.ok()) return influx::RevokeOutcome::kAlreadyGone;
    return influx::RevokeOutcome::kRevoked;
  }
  Status restrict(const std::string& id, const std::vector<Permission>& p,
                  const influx::CallContext&) override {
    auto r = store_.update(id, std::nullopt, p);
    if (!r.ok()) return r.take_error();
    return ok_status();
  }
  std::string describe() const override { return "in-process store"; }

 private:
  sim::TokenStore& store_;
};

std::int64_t count_events(storage::AuditStore& store) {
  auto st = store.db().prepare("SELECT max(seq) FROM audit_events");
  if (!st.ok() || !st->step().ok()) return 0;
  return st->int64(0);
}

int make_db(const std::string& path, std::size_t tokens, std::int64_t events, int clusters) {
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
  const Timestamp start = make_timestamp(2026, 1, 5);
  ManualClock clock(start);
  auto store = storage::AuditStore::open(path, storage::AuditStore::Mode::kReadWrite);
  if (!store.ok()) {
    std::fprintf(stderr, "tw-bench-report: %s\n", store.error().message.c_str());
    return 1;
  }
  storage::InventoryRecorder recorder(**store);
  std::vector<std::unique_ptr<sim::TokenStore>> sims;
  std::vector<std::unique_ptr<daemon::ClusterPoller>> pollers;
  auto log = std::make_shared<MemoryLogSink>();
  log->set_level(LogLevel::kError);
  std::vector<std::string> ids;
  for (int c = 0; c < clusters; ++c) {
    auto s = std::make_unique<sim::TokenStore>("", "", &clock);
    s->freeze_clock(start);
    s->generate(tokens / static_cast<std::size_t>(clusters), static_cast<std::uint64_t>(100 + c));
    for (const auto& t : s->list(true)) {
      if (ids.size() < 200) ids.push_back(t.id);
    }
    sims.push_back(std::move(s));
  }
  auto policies =
      policy::PolicySet::compile(bench::fifty_policies(), bench::twenty_exemptions(ids, start));
  if (!policies.ok()) {
    std::fprintf(stderr, "tw-bench-report: %s\n", policies.error().message.c_str());
    return 1;
  }
  for (int c = 0; c < clusters; ++c) {
    daemon::ClusterConfig cc;
    cc.name = "cluster-" + std::to_string(c);
    cc.poll_interval = std::chrono::hours(1);
    cc.labels = {{"env", c == 0 ? "prod" : "staging"}};
    auto enforcer = std::make_unique<daemon::Enforcer>(cc, clock, Logger("policy", log), nullptr);
    daemon::EnforcementSettings es;
    enforcer->configure(*policies, es);
    pollers.push_back(std::make_unique<daemon::ClusterPoller>(
        cc, std::make_unique<StoreClient>(*sims[static_cast<std::size_t>(c)]), recorder, clock,
        Logger("poller", log), std::move(enforcer)));
  }
  const auto t0 = std::chrono::steady_clock::now();
  int polls = 0;
  std::uint64_t seed = 1;
  while (count_events(**store) < events) {
    for (std::size_t c = 0; c < pollers.size(); ++c) {
      if (polls > 0) sims[c]->churn(polls % 7 == 0 ? 2.0 : 1.0, ++seed);
      daemon::RunOptions ro;
      auto rep = pollers[c]->run_once(ro);
      if (!rep.recorded) {
        std::fprintf(stderr, "tw-bench-report: poll not recorded: %s\n", rep.error.c_str());
        return 1;
      }
    }
    ++polls;
    clock.advance(std::chrono::hours(1));
    for (auto& s : sims) s->freeze_clock(clock.now());
    if (polls % 50 == 0) {
      std::fprintf(stderr, "  %d polls, %lld events\n", polls,
                   static_cast<long long>(count_events(**store)));
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  (void)(*store)->db().exec("PRAGMA wal_checkpoint(TRUNCATE)");
  std::string out;
  JsonWriter(out)
      .begin_object()
      .field("database", path)
      .field("events", count_events(**store))
      .field("polls_per_cluster", static_cast<std::int64_t>(polls))
      .field("clusters", static_cast<std::int64_t>(clusters))
      .field("from", format_timestamp(start))
      .field("to", format_timestamp(clock.now()))
      .field("bytes", static_cast<std::int64_t>(std::filesystem::file_size(path)))
      .field("build_seconds", secs)
      .end_object();
  std::printf("%s\n", out.c_str());
  return 0;
}

struct Run {
  double wall_s = 0;
  long peak_rss_kb = 0;
  int status = -1;
  std::uintmax_t output_bytes = 0;
};

Run run(const std::vector<std::string>& args, const std::string& output) {
  Run r;
  const auto t0 = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) dup2(fd, 1);
    int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 2);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.peak_rss_kb = ru.ru_maxrss;
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::error_code ec;
  r.output_bytes = std::filesystem::file_size(output, ec);
  return r;
}

// The period of the history in `db`: its first and last recorded events.
bool history_span(const std::string& db, std::string& from, std::string& to, std::string& mid) {
  auto d = storage::Db::open(db, storage::Db::Mode::kReadOnly);
  if (!d.ok()) return false;
  auto st = (*d)->prepare("SELECT min(recorded_at), max(recorded_at) FROM audit_events");
  if (!st.ok() || !st->step().ok() || st->is_null(0)) return false;
  auto a = parse_rfc3339(st->text(0));
  auto b = parse_rfc3339(st->text(1));
  if (!a.ok() || !b.ok()) return false;
  from = format_timestamp(*a);
  to = format_timestamp(*b);
  mid = format_timestamp(*a + (*b - *a) / 2);
  return true;
}

int measure(const std::string& db, const std::string& tw, int repeat) {
  std::string from, to, mid;
  if (!history_span(db, from, to, mid)) {
    std::fprintf(stderr, "tw-bench-report: cannot read the history of %s\n", db.c_str());
    return 1;
  }
  const std::string out = db + ".out";
  // Median wall time and the largest peak RSS of `repeat` runs; the output goes to a file.
  auto emit = [&](const std::string& what, const std::vector<std::string>& args) {
    std::vector<double> walls;
    Run worst;
    for (int i = 0; i < repeat; ++i) {
      Run r = run(args, out);
      walls.push_back(r.wall_s);
      if (r.status != 0)
        worst.status = r.status;
      else if (worst.status == -1)
        worst.status = 0;
      worst.peak_rss_kb = std::max(worst.peak_rss_kb, r.peak_rss_kb);
      worst.output_bytes = r.output_bytes;
    }
    std::sort(walls.begin(), walls.end());
    std::string line;
    JsonWriter(line)
        .begin_object()
        .field("command", what)
        .field("wall_s", walls[walls.size() / 2])
        .field("peak_rss_mb", static_cast<double>(worst.peak_rss_kb) / 1024.0)
        .field("exit", static_cast<std::int64_t>(worst.status))
        .field("output_mb", static_cast<double>(worst.output_bytes) / 1e6)
        .field("runs", static_cast<std::int64_t>(repeat))
        .end_object();
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  };
  for (const char* format : {"json", "csv", "md", "html"}) {
    emit(std::string("report --format ") + format,
         {tw, "report", "--db", db, "--from", from, "--to", to, "--format", format});
  }
  emit("report --format md --at (mid-history)",
       {tw, "report", "--db", db, "--from", from, "--to", to, "--at", mid, "--format", "md"});
  emit("tokens --at (mid-history)", {tw, "tokens", "--db", db, "--at", mid, "--format", "csv"});
  emit("tokens --at (end)", {tw, "tokens", "--db", db, "--at", to, "--format", "csv"});
  emit("verify", {tw, "verify", "--db", db});
  std::filesystem::remove(out);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  auto opt = [&](const std::string& name, const std::string& def) {
    for (std::size_t i = 0; i + 1 < a.size(); ++i) {
      if (a[i] == name) return a[i + 1];
    }
    return def;
  };
  if (!opt("--make-db", "").empty()) {
    return make_db(opt("--make-db", ""), std::stoul(opt("--tokens", "100000")),
                   std::stoll(opt("--events", "1000000")), std::stoi(opt("--clusters", "2")));
  }
  if (!opt("--measure", "").empty()) {
    return measure(opt("--measure", ""), opt("--tokenwarden", "build/release/bin/tokenwarden"),
                   std::stoi(opt("--repeat", "3")));
  }
  std::fprintf(stderr,
               "usage: tw-bench-report --make-db PATH [--tokens N] [--events N] [--clusters K]\n"
               "       tw-bench-report --measure PATH --tokenwarden BIN [--repeat N]\n");
  return 2;
}

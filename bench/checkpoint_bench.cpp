// tw-bench-checkpoint: what signed checkpoints cost (docs/performance.md "Signed checkpoints").
//
//   tw-bench-checkpoint [--events N] [--checkpoints K]
//
// Measures Ed25519 key generation, signing and verifying a checkpoint message (medians of many
// runs), then builds an audit database of N events (default 100,000) in a temp dir with a
// checkpoint every N/K events (K default 10) and reports the median time of one checkpoint
// append (sign_checkpoint + commit, synchronous=FULL) and of verify_chain over the whole log
// with and without the checkpoint pass. Prints a Markdown table.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/ed25519.h"
#include "core/time.h"
#include "storage/audit_store.h"
#include "storage/chain.h"
#include "storage/checkpoints.h"

namespace {

using namespace tw;
using Steady = std::chrono::steady_clock;

double micros(Steady::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Median microseconds of `runs` calls of f.
double time_each(int runs, const std::function<void()>& f) {
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    auto start = Steady::now();
    f();
    t.push_back(micros(Steady::now() - start));
  }
  return median(t);
}

void row(const char* what, double us, const std::string& note) {
  std::printf("| %s | %.1f | %s |\n", what, us, note.c_str());
}

ed25519::PrivateKey must_generate() {
  auto k = ed25519::PrivateKey::generate();
  if (!k.ok()) {
    std::fprintf(stderr, "keygen failed: %s\n", k.error().message.c_str());
    std::exit(1);
  }
  return std::move(*k);
}

// Appends `n` events in transactions of 1000, as polls do.
void append_events(storage::AuditStore& store, std::int64_t n, Timestamp at) {
  while (n > 0) {
    auto txn = store.begin();
    const std::int64_t batch = std::min<std::int64_t>(n, 1000);
    for (std::int64_t i = 0; i < batch; ++i) {
      (void)txn->append(
          NewEvent{EventKind::kTokenDiscovered, "prod", "tok-" + std::to_string(n - i),
                   R"({"description":"svc","permissions":[{"action":"read","resource":"db1"}]})"},
          at);
    }
    (void)txn->commit();
    n -= batch;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t events = 100000;
  int checkpoints = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--events") == 0) events = std::atoll(argv[i + 1]);
    if (std::strcmp(argv[i], "--checkpoints") == 0) checkpoints = std::atoi(argv[i + 1]);
  }
  if (events < 1 || checkpoints < 1) return 2;
  std::printf("| operation | median µs | notes |\n|---|---|---|\n");
  row("Ed25519 key generation", time_each(200, [] { must_generate(); }), "200 runs");
  ed25519::PrivateKey key = must_generate();
  storage::Checkpoint c{
      123456, std::string(64, 'a'), "2026-01-01T00:00:00.000Z", key.key_id(), "host", ""};
  const std::string msg = storage::checkpoint_message(c);
  std::string sig;
  row("sign a checkpoint message", time_each(2000, [&] { sig = key.sign(msg); }), "2000 runs");
  row("verify a checkpoint signature",
      time_each(2000, [&] { (void)key.public_key().verify(msg, sig); }), "2000 runs");

  const auto dir =
      std::filesystem::temp_directory_path() / ("tw-bench-cp-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    auto store = storage::AuditStore::open((dir / "audit.db").string(),
                                           storage::AuditStore::Mode::kReadWrite);
    if (!store.ok()) return 1;
    const Timestamp at = SystemClock().now();
    std::vector<double> appends, commits;
    for (int k = 0; k < checkpoints; ++k) {
      append_events(**store, events / checkpoints, at);
      auto start = Steady::now();
      auto txn = (*store)->begin();
      auto s = storage::sign_checkpoint(*txn, key, "bench-host", at);
      if (!s.ok() || !*s) return 1;
      auto signed_at = Steady::now();
      if (!txn->commit().ok()) return 1;
      appends.push_back(micros(signed_at - start));
      commits.push_back(micros(Steady::now() - signed_at));
    }
    const std::string where =
        std::to_string(checkpoints) + " checkpoints into " + std::to_string(events) + " events";
    row("checkpoint in the write transaction (head, last checkpoint, sign, append)",
        median(appends), where);
    row("its commit (synchronous=FULL: fsync of the WAL)", median(commits), where);
    std::vector<ed25519::PublicKey> keys = {key.public_key()};
    double plain = time_each(3, [&] { (void)storage::verify_chain((*store)->db()); });
    double with = time_each(3, [&] {
      storage::CheckpointVerifier v(keys);
      (void)storage::verify_chain((*store)->db(), nullptr, nullptr, &v);
      if (v.report().checkpoints != checkpoints) std::exit(1);
    });
    row("verify_chain, whole log", plain,
        std::to_string(events + checkpoints) + " rows; median of 3");
    row("verify_chain + checkpoint pass", with,
        std::to_string(checkpoints) + " signatures; median of 3");
  }
  std::filesystem::remove_all(dir);
  return 0;
}

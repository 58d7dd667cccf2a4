// tw-bench-policy: evaluates N generated tokens against 50 policies (every kind, scopes, 20
// exemptions) on one thread and prints one JSON object with the median time.
//
//   tw-bench-policy [--tokens N] [--runs K]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <string>
#include <vector>

#include "bench/bench_policies.h"
#include "core/json_writer.h"
#include "policy/engine.h"
#include "sim/generator.h"

namespace {

double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double wall_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tw;
  std::size_t n = 100000;
  int runs = 7;
  bool unscoped = false;  // every policy judges every token: the worst case
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--tokens" && i + 1 < argc) n = std::stoul(argv[++i]);
    if (a == "--runs" && i + 1 < argc) runs = std::stoi(argv[++i]);
    if (a == "--unscoped") unscoped = true;
  }
  const Timestamp now = make_timestamp(2026, 11, 28, 12);
  sim::Rng rng(42);
  std::vector<Token> tokens;
  tokens.reserve(n);
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < n; ++i) {
    tokens.push_back(sim::generate_token(rng, now));
    ids.push_back(tokens.back().id);
  }
  std::vector<policy::Subject> subjects;
  for (const auto& t : tokens) subjects.push_back({&t, now - std::chrono::hours(24 * 30)});
  auto specs = bench::fifty_policies();
  if (unscoped) {
    for (auto& p : specs) p.scope = {};
  }
  auto set = policy::PolicySet::compile(std::move(specs), bench::twenty_exemptions(ids, now));
  if (!set.ok()) {
    std::fprintf(stderr, "tw-bench-policy: %s\n", set.error().message.c_str());
    return 1;
  }
  policy::ClusterInfo cluster{"bench-eu", {{"env", "prod"}}};
  std::vector<double> wall, cpu;
  policy::Evaluation last;
  for (int r = 0; r < runs; ++r) {
    double w0 = wall_ms(), c0 = thread_cpu_ms();
    last = policy::evaluate(**set, cluster, subjects, now);
    cpu.push_back(thread_cpu_ms() - c0);
    wall.push_back(wall_ms() - w0);
  }
  std::sort(wall.begin(), wall.end());
  std::sort(cpu.begin(), cpu.end());
  std::size_t exempt = 0;
  for (const auto& f : last.findings) {
    if (f.exempt()) ++exempt;
  }
  std::map<std::string, std::int64_t> by_kind;
  for (const auto& f : last.findings) {
    if (!f.exempt()) ++by_kind[std::string(policy::to_string((*set)->specs()[f.policy].kind))];
  }
  std::string kinds;
  JsonWriter kw(kinds);
  kw.begin_object();
  for (const auto& [k, v] : by_kind) kw.field(k, v);
  kw.end_object();
  std::string out;
  JsonWriter(out)
      .begin_object()
      .field("tokens", static_cast<std::int64_t>(n))
      .field("scopes", !unscoped)
      .field("policies", static_cast<std::int64_t>((*set)->specs().size()))
      .field("exemptions", static_cast<std::int64_t>((*set)->exemptions().size()))
      .field("judged_pairs", static_cast<std::int64_t>(last.judged))
      .field("violations", static_cast<std::int64_t>(last.findings.size() - exempt))
      .field("exempted", static_cast<std::int64_t>(exempt))
      .field("median_wall_ms", wall[wall.size() / 2])
      .field("median_cpu_ms", cpu[cpu.size() / 2])
      .field("min_cpu_ms", cpu.front())
      .key("violations_by_kind")
      .raw(kinds)
      .end_object();
  std::puts(out.c_str());
  return 0;
}

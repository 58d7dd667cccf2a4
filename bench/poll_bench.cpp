// tw-bench-poll: measures one cluster's poll cycle against a tokenwarden-sim process.
//
//   tw-bench-poll --tokens N [--policies [--unscoped]] [--sim PATH] [--tokenwarden PATH]
//                 [--steady K] [--churn K] [--growth K] [--one-shot K] [--no-trim]
//                 [--export syslog://HOST:PORT | file:PATH] [--ha http://ETCD:PORT] [--owners]
//
// --owners: four [[owners]] rules (two regexes with named groups, a glob, a catch-all) resolve
// every token at the first poll and every changed one after, as the daemon does.
//
// --ha: the poller's enforcer acts through a real HaCoordinator leading on that etcd (as a
// daemon with [ha] does; its renewal thread runs beside the cycles), to show what high
// availability costs the cycle; the JSON gains the etcd calls made during the steady cycles.
//
// --export: an exporter thread (as the daemon runs one per [[audit.export]] sink) delivers the
// audit log to that sink while the cycles run, woken after each commit, to show what it costs
// the poll cycle.
//
// --no-trim: no malloc_trim after a decoded list (RunOptions::trim_heap), to measure what it
// costs and what it returns.
//
// The simulator runs as a separate process so that the figures are the daemon's alone: CPU time
// is this thread's (the cycle runs entirely on it: HTTP, parsing, diff, SQLite), peak RSS is this
// process's, page faults (minor) this process's during the first poll. --unscoped drops the
// policies' scopes: every policy judges every token (the worst first poll). At the end,
// `tokenwarden poll` runs K times as a child process against the same database and the unchanged
// list (a one-shot steady poll, two policies and the default 10 s timeout in its configuration):
// its CPU (user + sys), wall time and page faults are the child's own (wait4). Prints one JSON
// object; bench/run formats the tables.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bench/bench_policies.h"
#include "cli/cli.h"
#include "core/json_writer.h"
#include "daemon/exports.h"
#include "daemon/ha.h"
#include "daemon/poller.h"
#include "influx/http_client.h"
#include "influx/subprocess.h"
#include "metrics/metrics.h"
#include "storage/audit_store.h"
#include "storage/export_log.h"
#include "storage/sqlite.h"

namespace {

using namespace tw;

double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// The tokenwarden_ha_etcd_requests_total lines of `m`, "op=n op=n …" (op and result).
std::string etcd_calls(const metrics::Metrics& m) {
  std::string out;
  const std::string text = m.render();
  std::size_t pos = 0;
  while ((pos = text.find("\ntokenwarden_ha_etcd_requests_total{", pos)) != std::string::npos) {
    auto end = text.find('\n', pos + 1);
    std::string line = text.substr(pos + 1, end - pos - 1);
    auto op = line.find("op=\"");
    auto result = line.find("result=\"");
    auto space = line.rfind(' ');
    if (op != std::string::npos && result != std::string::npos && space != std::string::npos) {
      if (!out.empty()) out += ' ';
      out += line.substr(op + 4, line.find('"', op + 4) - op - 4) + "/" +
             line.substr(result + 8, line.find('"', result + 8) - result - 8) + "=" +
             line.substr(space + 1);
    }
    pos = end;
  }
  return out;
}

double wall_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Usage {
  double cpu_ms = 0;  // user + sys
  long minflt = 0, majflt = 0, maxrss_kb = 0;
};

Usage usage_of(const rusage& ru) {
  auto ms = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_usec) / 1e3;
  };
  return {ms(ru.ru_utime) + ms(ru.ru_stime), ru.ru_minflt, ru.ru_majflt, ru.ru_maxrss};
}

long minor_faults() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

long peak_rss_kb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

std::uintmax_t file_size(const std::string& p) {
  std::error_code ec;
  auto n = std::filesystem::file_size(p, ec);
  return ec ? 0 : n;
}

struct Sample {
  double wall = 0, cpu = 0;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

[[noreturn]] void die(const std::string& m) {
  std::fprintf(stderr, "tw-bench-poll: %s\n", m.c_str());
  std::exit(1);
}

}  // namespace

// --owners: rules shaped like a real deployment's (regexes with named groups, a glob, a
// catch-all), so that every generated token is resolved and owned (the worst first poll).
std::shared_ptr<const policy::OwnerRules> bench_owner_rules() {
  std::vector<policy::OwnerRuleSpec> rules(4);
  rules[0].name = "services";
  rules[0].description_regex = "^svc-(?P<team>[a-z]+)-";
  rules[1].name = "grafana";
  rules[1].description_regex = "^grafana (?P<team>[a-z]+)$";
  rules[1].owner = "grafana";
  rules[2].name = "telegraf";
  rules[2].description_glob = "telegraf writer *";
  rules[2].team = "observability";
  rules[3].name = "rest";
  rules[3].description_glob = "*";
  rules[3].team = "admins";
  auto compiled = policy::OwnerRules::compile(std::move(rules));
  if (!compiled.ok()) die(compiled.error().message);
  return *compiled;
}

int main(int argc, char** argv) {
  cli::configure_process();  // as tokenwarden itself does
  std::size_t tokens = 1000;
  int steady = 10, churn = 5, growth = 200;
  int one_shots = 5;
  bool with_policies = false, unscoped = false;
  bool with_owners = false;  // --owners: four [[owners]] rules, the last matching every token
  bool trim_heap = true;
  bool keep = false;  // --keep: leave the database (and the rest) in its temporary directory
  std::string sim_path = std::filesystem::path(argv[0]).parent_path() / "tokenwarden-sim";
  std::string tw_path = std::filesystem::path(argv[0]).parent_path() / "tokenwarden";
  std::string export_to;    // --export: syslog://HOST:PORT or file:PATH
  std::string ha_endpoint;  // --ha: an etcd client URL
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string v = i + 1 < argc ? argv[i + 1] : "";
    if (a == "--policies") {
      with_policies = true;
      continue;
    }
    if (a == "--unscoped") {
      unscoped = true;
      continue;
    }
    if (a == "--owners") {
      with_owners = true;
      continue;
    }
    if (a == "--keep") {
      keep = true;
      continue;
    }
    if (a == "--no-trim") {
      trim_heap = false;
      continue;
    }
    ++i;
    if (a == "--tokens")
      tokens = std::stoul(v);
    else if (a == "--sim")
      sim_path = v;
    else if (a == "--steady")
      steady = std::stoi(v);
    else if (a == "--churn")
      churn = std::stoi(v);
    else if (a == "--growth")
      growth = std::stoi(v);
    else if (a == "--one-shot")
      one_shots = std::stoi(v);
    else if (a == "--tokenwarden")
      tw_path = v;
    else if (a == "--export")
      export_to = v;
    else if (a == "--ha")
      ha_endpoint = v;
    else
      die("unknown argument " + a);
  }
  char tmpl[] = "/tmp/tw-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) die("mkdtemp failed");
  std::string dir = tmpl;
  std::string token_file = dir + "/mgmt.token";
  std::ofstream(token_file) << "bench-management-token\n";
  std::string port_file = dir + "/port";

  // The simulator, seeded with N tokens, in its own process.
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    std::string n = std::to_string(tokens);
    execl(sim_path.c_str(), sim_path.c_str(), "--listen", "127.0.0.1:0", "--token-file",
          token_file.c_str(), "--seed-tokens", n.c_str(), "--seed", "42", "--port-file",
          port_file.c_str(), nullptr);
    _exit(127);
  }
  std::string port;
  for (int i = 0; i < 600 && port.empty(); ++i) {
    std::ifstream in(port_file);
    std::getline(in, port);
    if (port.empty()) usleep(50'000);
  }
  if (port.empty()) die("the simulator did not start (" + sim_path + ")");

  daemon::ClusterConfig cluster;
  cluster.name = "bench";
  cluster.source.cluster = "bench";
  cluster.source.url = "http://127.0.0.1:" + port + "/api/v0";
  cluster.source.token_file = token_file;
  cluster.source.timeout = std::chrono::seconds(60);
  auto client = influx::make_cluster_client(cluster.source, "");
  if (!client.ok()) die(client.error().message);
  std::string db_path = dir + "/audit.db";
  auto store = storage::AuditStore::open(db_path, storage::AuditStore::Mode::kReadWrite);
  if (!store.ok()) die(store.error().message);
  storage::InventoryRecorder recorder(**store);
  SystemClock clock;
  std::unique_ptr<exporting::ExportThread> exporter;
  if (!export_to.empty()) {
    daemon::ExportSinkConfig sink;
    sink.name = "bench";
    if (export_to.rfind("syslog://", 0) == 0) {
      sink.type = daemon::ExportType::kSyslog;
      sink.address = export_to.substr(9);
    } else {
      sink.type = daemon::ExportType::kFile;
      sink.path = export_to.substr(export_to.find(':') + 1);
    }
    auto conn = storage::Db::open(db_path, storage::Db::Mode::kReadWrite);
    if (!conn.ok()) die(conn.error().message);
    exporter = std::make_unique<exporting::ExportThread>(std::make_unique<exporting::Exporter>(
        exporting::ExporterOptions{.name = "bench", .target = sink.target()},
        daemon::make_sink(sink), std::move(*conn), clock, null_logger(), nullptr));
    (*store)->on_commit([x = exporter.get()](const EventCounts&) { x->notify(); });
  }
  // With --policies: the 50 policies of the evaluation benchmark (all `alert`: cycles plan no
  // action), evaluated inside every poll as the daemon does.
  std::unique_ptr<daemon::Enforcer> enforcer;
  if (with_policies) {
    auto specs = bench::fifty_policies();
    if (unscoped) {
      for (auto& p : specs) p.scope = {};
    }
    auto set =
        policy::PolicySet::compile(std::move(specs), bench::twenty_exemptions({}, clock.now()));
    if (!set.ok()) die(set.error().message);
    enforcer = std::make_unique<daemon::Enforcer>(cluster, clock, null_logger(), nullptr);
    enforcer->configure(*set, daemon::EnforcementSettings{});
  }
  // --ha: a leading HaCoordinator (its own metrics count the calls to etcd).
  metrics::Metrics ha_metrics("bench");
  std::unique_ptr<daemon::HaCoordinator> ha;
  if (!ha_endpoint.empty()) {
    if (!enforcer) {
      enforcer = std::make_unique<daemon::Enforcer>(cluster, clock, null_logger(), nullptr);
      auto set = policy::PolicySet::compile({}, {});
      if (!set.ok()) die(set.error().message);
      enforcer->configure(*set, daemon::EnforcementSettings{});
    }
    daemon::HaSection hs;
    hs.enabled = true;
    hs.endpoints = {ha_endpoint};
    hs.instance = "bench";
    hs.key_prefix = "/tw-bench-" + std::to_string(::getpid()) + "/";
    daemon::HaDeps hd;
    hd.clock = &clock;
    hd.sink = nullptr;  // no log
    hd.metrics = &ha_metrics;
    auto h = daemon::HaCoordinator::create(hs, **store, std::move(hd));
    if (!h.ok()) die(h.error().message);
    ha = std::move(*h);
    ha->start();
    const double t0 = wall_ms();
    while (!ha->leading()) {
      if (wall_ms() - t0 > 30'000) die("--ha: no leadership within 30 s (is etcd up?)");
      usleep(20'000);
    }
    enforcer->set_fence(ha.get());
  }
  daemon::ClusterPoller poller(cluster, std::move(*client), recorder, clock, null_logger(),
                               std::move(enforcer));
  if (with_owners) poller.set_owner_rules(bench_owner_rules());
  daemon::RunOptions opts;
  opts.trim_heap = trim_heap;

  int evaluations = 0;  // cycles in which the policies were evaluated again
  int opened = 0;       // violations opened by the last cycle
  auto cycle = [&](const char* what) {
    double w0 = wall_ms(), c0 = thread_cpu_ms();
    auto rep = poller.run_once(opts);
    if (rep.enforcement.evaluated) ++evaluations;
    opened = rep.enforcement.opened;
    Sample s{wall_ms() - w0, thread_cpu_ms() - c0};
    if (!rep.recorded || rep.summary.outcome != storage::PollOutcome::kOk) {
      die(std::string(what) + " poll failed: " + rep.error);
    }
    return s;
  };
  auto checkpoint = [&] {
    auto s = (*store)->db().exec("PRAGMA wal_checkpoint(TRUNCATE)");
    if (!s.ok()) die(s.error().message);
  };
  auto db_bytes = [&] { return file_size(db_path) + file_size(db_path + "-wal"); };

  const long faults_before_first = minor_faults();
  Sample first = cycle("first");
  const long first_faults = minor_faults() - faults_before_first;
  const int first_opened = opened;
  std::int64_t violating_tokens = 0;
  {
    auto st = (*store)->db().prepare(
        "SELECT COUNT(DISTINCT token_id) FROM violation_records WHERE state != 'resolved'");
    if (!st.ok()) die(st.error().message);
    (void)st->step();
    violating_tokens = st->int64(0);
  }
  if (exporter) {  // steady cycles are measured once the first poll's events are exported
    const double t0 = wall_ms();
    auto head = storage::read_chain_head((*store)->db());
    if (!head.ok()) die(head.error().message);
    while (exporter->exporter().delivered_seq() < head->seq) {
      if (wall_ms() - t0 > 300'000) die("the export did not catch up within 5 minutes");
      usleep(20'000);
    }
    std::fprintf(stderr, "tw-bench-poll: the first poll's events exported %.0f ms after it\n",
                 wall_ms() - t0);
  }
  long rss_after_first = peak_rss_kb();
  checkpoint();
  auto size_after_first = db_bytes();

  std::vector<double> sw, sc, fw, fc;
  evaluations = 0;
  const std::string ha_before = ha ? etcd_calls(ha_metrics) : std::string();
  const double steady_start = wall_ms();
  for (int i = 0; i < steady; ++i) {
    auto s = cycle("steady");
    sw.push_back(s.wall);
    sc.push_back(s.cpu);
  }
  const double steady_seconds = (wall_ms() - steady_start) / 1000;
  const std::string ha_after = ha ? etcd_calls(ha_metrics) : std::string();
  // The same unchanged list, decoded and compared in full (what a list that differs in bytes but
  // not in content, or the first poll after a restart, costs).
  opts.full_compare = true;
  for (int i = 0; i < steady; ++i) {
    auto s = cycle("full compare");
    fw.push_back(s.wall);
    fc.push_back(s.cpu);
  }
  opts.full_compare = false;
  long rss_after_full = peak_rss_kb();
  const int steady_evaluations = evaluations;
  checkpoint();
  auto before_growth = db_bytes();
  for (int i = 0; i < growth; ++i) cycle("growth");
  checkpoint();
  auto after_growth = db_bytes();

  influx::Url control;
  control.scheme = "http";
  control.host = "127.0.0.1";
  control.port = port;
  std::vector<double> cw, cc;
  std::int64_t churn_events = 0;
  for (int i = 0; i < churn; ++i) {
    influx::HttpRequest req;
    req.method = "POST";
    req.target = "/_sim/churn";
    req.body = "{\"percent\":1,\"seed\":" + std::to_string(100 + i) + "}";
    auto r = influx::http_request(control, req, {});
    if (!r.ok() || r->status != 200) die("churn request failed");
    std::int64_t before = 0;
    {
      auto st = (*store)->db().prepare("SELECT COUNT(*) FROM audit_events");
      (void)st->step();
      before = st->int64(0);
    }
    auto s = cycle("churn");
    auto st = (*store)->db().prepare("SELECT COUNT(*) FROM audit_events");
    (void)st->step();
    churn_events += st->int64(0) - before;
    cw.push_back(s.wall);
    cc.push_back(s.cpu);
  }
  checkpoint();

  // 1% of the active tokens deleted outright: the poll reads them directly before recording
  // their removal (all of them up to storage::kRemovalSample, else that sample).
  std::vector<std::string> doomed;
  {
    auto st = (*store)->db().prepare(
        "SELECT token_id FROM tokens WHERE status = 'active' ORDER BY token_id");
    if (!st.ok()) die(st.error().message);
    std::vector<std::string> active;
    while (true) {
      auto row = st->step();
      if (!row.ok()) die(row.error().message);
      if (!*row) break;
      active.push_back(st->text(0));
    }
    const std::size_t n = std::max<std::size_t>(1, active.size() / 100);
    for (std::size_t i = 0; i < n && i < active.size(); ++i)
      doomed.push_back(active[i * active.size() / n]);
  }
  for (const auto& id : doomed) {
    influx::HttpRequest req;
    req.method = "DELETE";
    req.target = "/_sim/tokens/" + id;
    auto r = influx::http_request(control, req, {});
    if (!r.ok() || r->status / 100 != 2) die("removing a token through the control API failed");
  }
  Sample vanish = cycle("vanish");

  // One-shot steady polls: `tokenwarden poll` as a new process, the list unchanged since the last
  // poll. The first one saves a checkpoint under its own configuration; the next are measured.
  std::string config_file = dir + "/tokenwarden.toml";
  std::ofstream(config_file) << "[daemon]\ndatabase = \"" << db_path
                             << "\"\nlog_level = \"warn\"\n\n[http]\nlisten = \"\"\n\n"
                             << "[[clusters]]\nname = \"bench\"\ntype = \"clustered\"\nurl = \""
                             << cluster.source.url << "\"\ntoken_file = \"" << token_file
                             << "\"\ntimeout = \"10s\"\n\n"
                             << "[[policies]]\nname = \"rotate-yearly\"\nkind = \"max_age\"\n"
                             << "max_age = \"365d\"\naction = \"alert\"\n\n"
                             << "[[policies]]\nname = \"no-global-write\"\n"
                             << "kind = \"all_databases_grant\"\nactions = [\"write\"]\n"
                             << "action = \"alert\"\n";
  auto one_shot = [&](double& wall) {
    double w0 = wall_ms();
    pid_t child = fork();
    if (child == 0) {
      int devnull = ::open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      dup2(devnull, 2);
      execl(tw_path.c_str(), tw_path.c_str(), "--config", config_file.c_str(), "poll", nullptr);
      _exit(127);
    }
    int st = 0;
    rusage ru{};
    wait4(child, &st, 0, &ru);
    wall = wall_ms() - w0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) die("tokenwarden poll failed (" + tw_path + ")");
    return usage_of(ru);
  };
  std::vector<double> ow, oc, of;
  Usage first_one_shot{};
  double first_one_shot_wall = 0;
  long one_shot_rss = 0;
  if (one_shots > 0) first_one_shot = one_shot(first_one_shot_wall);
  for (int i = 0; i < one_shots; ++i) {
    double w = 0;
    Usage u = one_shot(w);
    ow.push_back(w);
    oc.push_back(u.cpu_ms);
    of.push_back(static_cast<double>(u.minflt));
    one_shot_rss = std::max(one_shot_rss, u.maxrss_kb);
  }

  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);

  std::string out;
  JsonWriter w(out);
  w.begin_object()
      .field("tokens", static_cast<std::int64_t>(tokens))
      .field("policies", with_policies ? 50 : 0)
      .field("owners", with_owners)
      .field("evaluations_in_unchanged_cycles", steady_evaluations)
      .field("first_wall_ms", first.wall)
      .field("first_cpu_ms", first.cpu)
      .field("first_minor_faults", static_cast<std::int64_t>(first_faults))
      .field("first_violations_opened", first_opened)
      .field("violating_tokens", violating_tokens)
      .field("unscoped", unscoped)
      .field("steady_wall_ms", median(sw))
      .field("steady_cpu_ms", median(sc))
      .field("full_compare_wall_ms", median(fw))
      .field("full_compare_cpu_ms", median(fc))
      .field("churn_wall_ms", median(cw))
      .field("churn_cpu_ms", median(cc))
      .field("churn_events_per_poll", churn > 0 ? churn_events / churn : 0)
      .field("vanish_wall_ms", vanish.wall)
      .field("vanish_cpu_ms", vanish.cpu)
      .field("vanished", static_cast<std::int64_t>(doomed.size()))
      .field("peak_rss_kb_after_first", static_cast<std::int64_t>(rss_after_first))
      .field("peak_rss_kb_after_full_compare", static_cast<std::int64_t>(rss_after_full))
      .field("peak_rss_kb", static_cast<std::int64_t>(peak_rss_kb()))
      .field("db_bytes_after_first", static_cast<std::int64_t>(size_after_first))
      .field("db_growth_per_unchanged_poll",
             growth > 0
                 ? (static_cast<double>(after_growth) - static_cast<double>(before_growth)) / growth
                 : 0.0)
      .field("db_bytes_final", static_cast<std::int64_t>(db_bytes()))
      .field("one_shots", one_shots)
      .field("one_shot_first_cpu_ms", first_one_shot.cpu_ms)
      .field("one_shot_first_wall_ms", first_one_shot_wall)
      .field("one_shot_wall_ms", median(ow))
      .field("one_shot_cpu_ms", median(oc))
      .field("one_shot_minor_faults", median(of))
      .field("one_shot_peak_rss_kb", static_cast<std::int64_t>(one_shot_rss))
      .field("ha", ha != nullptr)
      .field("steady_seconds", steady_seconds)
      .field("ha_etcd_calls_before_steady", ha_before)
      .field("ha_etcd_calls_after_steady", ha_after)
      .end_object();
  if (ha) ha->stop();
  std::puts(out.c_str());
  if (keep) {
    std::fprintf(stderr, "kept %s\n", dir.c_str());
  } else {
    std::filesystem::remove_all(dir);
  }
  return 0;
}

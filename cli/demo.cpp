// `tokenwarden demo`: the daemon against three built-in simulated servers (Clustered, Dedicated,
// InfluxDB 3 Core/Enterprise) whose tokens change between cycles, narrated on stdout.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "cli/commands.h"
#include "core/strings.h"
#include "daemon/config.h"
#include "daemon/service.h"
#include "sim/server.h"
#include "storage/audit_store.h"
#include "storage/chain.h"
#include "storage/enforcement.h"
#include "storage/queries.h"

namespace tw::cli {
namespace {

// The demo's listen address: as asked, or the same host on a free port if that port is taken
// (a second demo, or a real tokenwarden on 9464). "" disables the endpoint.
std::string demo_listen(const std::string& wanted) {
  if (wanted.empty()) return wanted;
  auto colon = wanted.rfind(':');
  if (colon == std::string::npos) return wanted;  // the service reports the bad address
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  const std::string host = wanted.substr(0, colon);
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) return wanted;
  const long port = std::strtol(wanted.c_str() + colon + 1, nullptr, 10);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return wanted;
  const bool free = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return free ? wanted : host + ":0";
}

namespace fs = std::filesystem;

std::string random_hex(std::size_t bytes) {
  std::random_device rd;
  std::string out;
  static constexpr char kHex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < bytes; ++i) {
    auto b = static_cast<unsigned>(rd()) & 0xFFu;
    out += kHex[b >> 4];
    out += kHex[b & 0xF];
  }
  return out;
}

struct DemoCluster {
  std::string name;
  sim::Flavor flavor;
  std::unique_ptr<sim::SimServer> server;
};

// Everything the event loop reports, for the main thread to narrate.
struct Progress {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::vector<daemon::CycleReport>> reports;
  bool stop = false;

  std::size_t completed_cycles() {
    std::size_t n = SIZE_MAX;
    for (auto& [name, v] : reports) n = std::min(n, v.size());
    return n == SIZE_MAX ? 0 : n;
  }
};

std::string short_id(const std::string& id) { return id.substr(0, 8); }

std::string counts_line(const daemon::CycleReport& r) {
  const auto& e = r.summary.events;
  auto n = [&](EventKind k) { return e[static_cast<std::size_t>(k)]; };
  std::vector<std::string> parts;
  for (auto [k, label] : {std::pair{EventKind::kTokenDiscovered, "discovered"},
                          std::pair{EventKind::kTokenCreated, "created"},
                          std::pair{EventKind::kTokenUpdated, "updated"},
                          std::pair{EventKind::kTokenRevoked, "revoked"},
                          std::pair{EventKind::kTokenExpired, "expired"},
                          std::pair{EventKind::kTokenRemoved, "removed"}}) {
    if (n(k) > 0) parts.push_back(std::to_string(n(k)) + " " + label);
  }
  return parts.empty() ? "no change" : join(parts, ", ");
}

// Applies the scripted changes that follow cycle `k` and says what they were.
std::vector<std::string> script_step(std::size_t k, std::vector<DemoCluster>& clusters) {
  std::vector<std::string> said;
  auto& prod = clusters[0].server->store();
  auto& ded = clusters[1].server->store();
  auto& core = clusters[2].server->store();
  auto active = [](sim::TokenStore& s) {
    std::vector<Token> out;
    for (auto& t : s.list(false)) {
      if (!t.expires_at || *t.expires_at > s.now()) out.push_back(t);
    }
    return out;
  };
  if (k == 1) {
    auto created = prod.create("ci pipeline (temporary)",
                               {{"read", "metrics_prod"}, {"write", "metrics_prod"}}, std::nullopt);
    said.push_back(
        "prod-eu: someone creates \"ci pipeline (temporary)\" with write on metrics_prod, no "
        "expiry");
    auto a = active(prod);
    if (a.size() >= 3) {
      auto perms = a[0].permissions;
      perms.push_back({"write", "*"});
      (void)prod.update(a[0].id, std::nullopt, perms);
      said.push_back("prod-eu: token " + short_id(a[0].id) +
                     " is widened to write on every database (*)");
      (void)prod.revoke(a[1].id);
      said.push_back("prod-eu: token " + short_id(a[1].id) + " is revoked");
      prod.remove(a[2].id);
      said.push_back("prod-eu: token " + short_id(a[2].id) + " disappears from the list entirely");
    }
    (void)created;
    ded.create("grafana <script>alert(1)</script>\n\x1b[31mred\x1b[0m", {{"read", "*"}},
               ded.now() + std::chrono::hours(24 * 30));
    said.push_back(
        "dedicated-us: a token with a hostile description (HTML, a newline, ANSI colours) appears");
    (void)core.create_named("deploy-bot", {{"admin", "*"}, {"read", "*"}, {"write", "*"}},
                            std::nullopt);
    said.push_back(
        "core-local: someone creates a named admin token \"deploy-bot\" (*:*:*, no expiry)");
  } else if (k == 2) {
    sim::FaultSpec f;
    f.kind = sim::FaultKind::kStatus;
    f.status = 500;
    f.count = 1;
    ded.add_fault(f);
    said.push_back("dedicated-us: the Management API will answer 500 Internal Server Error once");
    auto a = active(prod);
    if (!a.empty()) {
      (void)prod.update(a[0].id, std::string("svc-ingest (owner: data-platform)"), std::nullopt);
      said.push_back("prod-eu: token " + short_id(a[0].id) + " gets a new description");
    }
  } else if (k == 3) {
    auto r = prod.churn(10, 7);
    said.push_back("prod-eu: churn — " + std::to_string(r.created) + " created, " +
                   std::to_string(r.updated) + " updated, " + std::to_string(r.revoked) +
                   " revoked");
  }
  return said;
}

std::string perms_text(const nlohmann::json& j) {
  if (!j.is_array() || j.empty()) return "(no permissions)";
  std::vector<std::string> parts;
  for (const auto& p : j) {
    parts.push_back(p.value("action", std::string("?")) + ":" +
                    p.value("resource", std::string("?")));
  }
  return join(parts, " ");
}

// One readable line per event (the JSON detail is in `tokenwarden history`).
std::string describe_event(const storage::AuditRow& r) {
  auto d = nlohmann::json::parse(r.detail, nullptr, false);
  if (d.is_discarded() || !d.is_object()) return printable(r.detail, 70);
  auto str = [&](const nlohmann::json& j, const char* k) {
    return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string("-");
  };
  if (r.event == "token_discovered" || r.event == "token_created") {
    return "\"" + printable(str(d, "description"), 40) + "\" " +
           perms_text(d.value("permissions", nlohmann::json())) +
           (d.contains("expires_at") && d["expires_at"].is_null() ? ", never expires" : "");
  }
  if (r.event == "token_updated") {
    std::vector<std::string> parts;
    const auto& b = d.value("before", nlohmann::json::object());
    const auto& a = d.value("after", nlohmann::json::object());
    for (const auto& [k, v] : a.items()) {
      if (k == "permissions") {
        parts.push_back("permissions " + perms_text(b.value(k, nlohmann::json())) + " -> " +
                        perms_text(v));
      } else {
        parts.push_back(k + " " + printable(b.value(k, nlohmann::json()).dump(), 30) + " -> " +
                        printable(v.dump(), 30));
      }
    }
    return join(parts, "; ");
  }
  if (r.event == "token_revoked") return "revoked at " + str(d, "revoked_at");
  if (r.event == "token_expired") return "expired at " + str(d, "expires_at");
  if (r.event == "token_removed")
    return "gone (was " + str(d, "previous_status") + "), confirmed by " + str(d, "confirmed_by");
  if (r.event == "token_reappeared") return "listed again after its removal";
  if (r.event == "poll_failed") return printable(str(d, "error"), 90);
  if (r.event == "poll_suspect") {
    return "held: " + (d.contains("reason")
                           ? printable(str(d, "reason"), 80)
                           : std::to_string(d.value("vanished", 0)) + " tokens vanished");
  }
  if (r.event == "violation_opened") {
    std::string due = d.contains("action_due_at") && d["action_due_at"].is_string()
                          ? ", " + str(d, "action") + " due " + str(d, "action_due_at")
                          : "";
    return str(d, "policy") + ": " + printable(str(d, "reason"), 60) + due;
  }
  if (r.event == "violation_resolved") return str(d, "policy") + ": " + str(d, "resolution");
  if (r.event == "action_planned") {
    return str(d, "action") + " planned for " + str(d, "policy") +
           (d.value("awaiting_approval", false) ? " (awaits approval)" : "");
  }
  if (r.event == "action_skipped")
    return str(d, "action") + " skipped (" + str(d, "reason") + ") for " + str(d, "policy");
  if (r.event == "action_succeeded") return str(d, "action") + " done: " + str(d, "outcome");
  if (r.event == "action_failed")
    return str(d, "action") + " failed: " + printable(str(d, "error"), 60);
  if (r.event == "enforcement_halted")
    return "halted: " + std::to_string(d.value("planned", 0)) + " actions exceed the limits";
  if (r.event == "exemption_applied")
    return str(d, "policy") + " exempted: " + printable(str(d, "reason"), 60);
  return printable(r.detail, 70);
}

// Lower is shown first: what tokenwarden did, then what it found, then the inventory churn.
int priority(const std::string& event) {
  if (starts_with(event, "action_") || event == "enforcement_halted") return 0;
  if (event == "violation_resolved" || event == "exemption_applied" || starts_with(event, "poll_"))
    return 1;
  if (starts_with(event, "token_") && event != "token_discovered") return 2;
  if (event == "violation_opened") return 3;
  return 4;
}

void print_events(storage::Db& db, std::int64_t& last_seq, std::size_t max_lines) {
  storage::HistoryFilter f;
  auto rows = storage::query_history(db, f);
  if (!rows.ok()) return;
  std::vector<const storage::AuditRow*> fresh;
  std::map<std::string, int> counts;
  for (const auto& r : *rows) {
    if (r.seq <= last_seq) continue;
    last_seq = r.seq;
    if (r.event == "daemon_started" || r.event == "config_applied") continue;
    fresh.push_back(&r);
    ++counts[r.event];
  }
  if (fresh.empty()) return;
  std::vector<std::string> parts;
  for (const auto& [event, n] : counts) parts.push_back(std::to_string(n) + " " + event);
  std::printf("    recorded: %s\n", join(parts, ", ").c_str());
  std::stable_sort(fresh.begin(), fresh.end(), [](const auto* a, const auto* b) {
    return priority(a->event) < priority(b->event);
  });
  std::size_t shown = 0;
  for (const auto* r : fresh) {
    if (shown == max_lines) break;
    ++shown;
    std::printf("      %-18s %-13s %-8s %s\n", r->event.c_str(), r->cluster.value_or("-").c_str(),
                r->token_id ? short_id(*r->token_id).c_str() : "-", describe_event(*r).c_str());
  }
  if (fresh.size() > shown)
    std::printf("      … %zu more in `tokenwarden history`\n", fresh.size() - shown);
}

}  // namespace

int cmd_demo(const GlobalOptions&, const DemoOptions& o) {
  // Signals are taken by a dedicated thread (sigwait), so block them before any thread starts.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  std::string dir = o.dir;
  if (dir.empty()) {
    std::string tmpl = (fs::temp_directory_path() / "tokenwarden-demo-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      print_error("cannot create a temporary directory for the demo");
      return kExitFailure;
    }
    dir = tmpl;
  } else {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (fs::exists(fs::path(dir) / "audit.db")) {
      print_error("--dir " + dir +
                  " already holds a demo database; remove it or choose another directory");
      return kExitUsage;
    }
  }
  ::chmod(dir.c_str(), 0700);
  const std::string token = "demo-" + random_hex(24);
  const std::string token_file = dir + "/management.token";
  {
    std::ofstream(token_file) << token << "\n";
    ::chmod(token_file.c_str(), 0600);
  }

  std::vector<DemoCluster> clusters;
  for (auto [name, flavor] : {std::pair{"prod-eu", sim::Flavor::kClustered},
                              std::pair{"dedicated-us", sim::Flavor::kDedicated},
                              std::pair{"core-local", sim::Flavor::kInfluxdb3}}) {
    sim::SimOptions so;
    so.flavor = flavor;
    so.management_token = token;
    auto server = sim::SimServer::start(so);
    if (!server.ok()) {
      print_error("cannot start the simulated cluster: " + server.error().message);
      return kExitFailure;
    }
    if (flavor == sim::Flavor::kInfluxdb3) {  // the operator token comes first: id 0, `_admin`
      (void)(*server)->store().create_named(
          "_admin", {{"admin", "*"}, {"read", "*"}, {"write", "*"}}, std::nullopt);
    }
    (*server)->store().generate(static_cast<std::size_t>(o.tokens), name[0] == 'p'   ? 11
                                                                    : name[0] == 'd' ? 23
                                                                                     : 31);
    clusters.push_back({name, flavor, std::move(*server)});
  }

  SystemClock clock;
  const Timestamp demo_started = clock.now();
  const std::string listen = demo_listen(o.listen);
  std::string cfg =
      "[daemon]\ndatabase = \"" + dir + "/audit.db\"\npoll_interval = \"" +
      format_duration(o.interval) +
      "\"\npoll_jitter = \"0s\"\nmode = \"enforce\"\nlog_level = \"error\"\n\n[http]\nlisten = \"" +
      listen + "\"\n\n[safety]\nmax_actions_per_cycle = 10\nmax_actions_percent = 25\n";
  for (const auto& c : clusters) {
    cfg += "\n[[clusters]]\nname = \"" + c.name + "\"\ntype = \"" + sim::to_string(c.flavor) +
           "\"\nurl = \"" + c.server->base_url() + "\"\ntoken_file = \"" + token_file +
           "\"\ntimeout = \"5s\"\n";
    if (c.flavor == sim::Flavor::kDedicated) {
      cfg += "account_id = \"" + c.server->account_id() + "\"\ncluster_id = \"" +
             c.server->cluster_id() + "\"\n";
    }
    const char* env = c.name == "prod-eu" ? "prod" : c.name == "core-local" ? "dev" : "staging";
    cfg += std::string("labels = { env = \"") + env + "\" }\n";
  }
  cfg += R"toml(
# The simulated clusters are disposable, so the demo enforces right away (grace 0s).
# InfluxDB 3 Core/Enterprise cannot restrict a token, so the restricting policy is scoped away from
# core-local, where a second policy deletes such tokens instead.
[[policies]]
name = "no-global-write"
kind = "all_databases_grant"
actions = ["write"]
severity = "critical"
action = "restrict"
grace_period = "0s"
scope = { clusters = ["prod-*", "dedicated-*"] }

[[policies]]
name = "no-global-write-on-core"
kind = "all_databases_grant"
actions = ["write"]
severity = "critical"
action = "revoke"
grace_period = "0s"
scope = { clusters = ["core-*"] }

[[policies]]
name = "no-temporary-ci-on-prod"
kind = "forbidden_grant"
actions = ["write"]
databases = ["metrics_prod*"]
severity = "critical"
action = "revoke"
grace_period = "0s"
scope = { clusters = ["prod-*"], description = '^ci pipeline \(temporary\)' }

[[policies]]
name = "must-expire-within-1y"
kind = "max_lifetime"
max_lifetime = "365d"
severity = "warning"
action = "alert"

[[policies]]
name = "owner-in-description"
kind = "description_pattern"
pattern = "^(svc-|telegraf |grafana |ci )"
severity = "info"
action = "revoke"
mode = "monitor"
grace_period = "0s"

[[exemptions]]
policy = "must-expire-within-1y"
description = "^grafana"
reason = "dashboards are read-only; reviewed quarterly (demo)"
expires = )toml" +
         format_timestamp(clock.now() + std::chrono::hours(24 * 90)) + R"toml(

# The operator token (_admin, id 0) is the admin token tokenwarden itself polls core-local with.
[[exemptions]]
policy = "*"
token_id = "0"
cluster = "core-local"
reason = "tokenwarden's own admin token (demo)"
expires = )toml" +
         format_timestamp(clock.now() + std::chrono::hours(24 * 90)) + "\n";
  const std::string config_path = dir + "/tokenwarden.toml";
  std::ofstream(config_path) << cfg;
  auto load = daemon::load_config_string(cfg, config_path, clock.now());
  if (!load.config) {
    print_error("demo configuration is invalid: " + (load.errors.empty() ? "" : load.errors[0]));
    return kExitFailure;
  }

  std::printf("tokenwarden demo — three simulated InfluxDB 3 clusters, polled every %s\n\n",
              format_duration(o.interval).c_str());
  for (const auto& c : clusters) {
    std::printf("  %-13s %-10s %-42s %zu tokens\n", c.name.c_str(), sim::to_string(c.flavor),
                c.server->base_url().c_str(), c.server->store().size());
  }
  std::printf("  database      %s/audit.db\n  config        %s\n\n", dir.c_str(),
              config_path.c_str());
  std::fflush(stdout);

  // The narrative is the demo's output; the daemon's own log shows only errors here.
  auto sink = std::make_shared<StreamLogSink>(stderr, LogFormat::kText, clock);
  sink->set_level(LogLevel::kError);
  daemon::ServiceDeps deps;
  deps.clock = &clock;
  deps.sink = sink;
  deps.handle_signals = false;
  auto service = daemon::Service::create(std::move(*load.config), deps);
  if (!service.ok()) {
    print_error(service.error().message);
    return kExitFailure;
  }
  Progress progress;
  for (const auto& c : clusters) progress.reports[c.name];
  (*service)->on_cycle([&](const daemon::CycleReport& r) {
    std::lock_guard lock(progress.mu);
    progress.reports[r.cluster].push_back(r);
    progress.cv.notify_all();
  });
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    std::lock_guard lock(progress.mu);
    progress.stop = true;
    progress.cv.notify_all();
  });
  int rc = 0;
  std::thread runner([&] { rc = (*service)->run(); });

  auto store = storage::AuditStore::open(dir + "/audit.db", storage::AuditStore::Mode::kReadOnly);
  for (int i = 0; i < 200 && !store.ok(); ++i) {  // the daemon creates it on start
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    store = storage::AuditStore::open(dir + "/audit.db", storage::AuditStore::Mode::kReadOnly);
  }
  for (int i = 0; i < 200 && !listen.empty() && (*service)->endpoint_url().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!listen.empty() && !(*service)->endpoint_url().empty()) {
    const std::string u = (*service)->endpoint_url();
    std::printf("  metrics       %s/metrics  (also /healthz, /readyz)\n\n", u.c_str());
    std::fflush(stdout);
  }
  std::int64_t last_seq = 0;
  bool interrupted = false;
  for (std::size_t k = 1; k <= static_cast<std::size_t>(o.cycles); ++k) {
    std::unique_lock lock(progress.mu);
    progress.cv.wait(lock, [&] { return progress.stop || progress.completed_cycles() >= k; });
    if (progress.stop) {
      interrupted = true;
      break;
    }
    std::printf("cycle %zu\n", k);
    for (const auto& c : clusters) {
      const daemon::CycleReport& r = progress.reports[c.name][k - 1];
      std::string outcome(storage::to_string(r.summary.outcome));
      std::printf("  %-13s %-8s %5zu tokens  %s\n", c.name.c_str(), outcome.c_str(),
                  r.summary.token_count,
                  r.error.empty() ? counts_line(r).c_str() : printable(r.error, 110).c_str());
    }
    lock.unlock();
    if (store.ok()) print_events((*store)->db(), last_seq, 10);
    if (k < static_cast<std::size_t>(o.cycles)) {
      for (const auto& line : script_step(k, clusters)) std::printf("   ~ %s\n", line.c_str());
    }
    std::printf("\n");
    std::fflush(stdout);
  }

  if (!interrupted && store.ok()) {
    std::printf("inventory (tokenwarden tokens)\n");
    auto rows = storage::query_inventory((*store)->db(), {});
    if (rows.ok()) {
      std::map<std::string, std::map<std::string, int>> counts;
      for (const auto& r : *rows) counts[r.cluster][std::string(to_string(r.status))]++;
      for (const auto& [cl, m] : counts) {
        std::printf(
            "  %-13s active %d, expired %d, revoked %d, removed %d\n", cl.c_str(),
            m.count("active") ? m.at("active") : 0, m.count("expired") ? m.at("expired") : 0,
            m.count("revoked") ? m.at("revoked") : 0, m.count("removed") ? m.at("removed") : 0);
      }
    }
    auto viol = storage::query_violations((*store)->db(), {});
    auto acts = storage::query_actions((*store)->db(), "");
    if (viol.ok() && acts.ok()) {
      std::map<std::string, int> open_by_policy, actions_by_state;
      int resolved = 0;
      for (const auto& v : *viol) {
        if (v.state == storage::ViolationState::kResolved)
          ++resolved;
        else
          ++open_by_policy[v.policy];
      }
      for (const auto& a : *acts)
        actions_by_state[a.action + " " + std::string(to_string(a.state))]++;
      std::vector<std::string> open_parts, action_parts;
      for (const auto& [p, n] : open_by_policy) open_parts.push_back(p + " " + std::to_string(n));
      for (const auto& [k, n] : actions_by_state)
        action_parts.push_back(k + " " + std::to_string(n));
      std::printf("\nviolations (tokenwarden violations): %d resolved; open: %s\n", resolved,
                  open_parts.empty() ? "none" : join(open_parts, ", ").c_str());
      std::printf("actions: %s\n",
                  action_parts.empty() ? "none" : join(action_parts, ", ").c_str());
    }
    auto v = storage::verify_chain((*store)->db());
    if (v.ok()) {
      std::printf("\naudit log: %lld events, hash chain %s, head seq %lld hash %s\n",
                  static_cast<long long>(v->rows), v->ok ? "intact" : "BROKEN",
                  static_cast<long long>(v->head_seq), v->head_hash.c_str());
    }
    // The compliance report over the demo's history (SPEC §7).
    {
      GlobalOptions rg{config_path, true};
      ReportOptions ro;
      ro.from = format_timestamp(demo_started);
      ro.output = dir + "/report.html";
      if (cmd_report(rg, ro) == 0) {
        std::printf("\ncompliance report (tokenwarden report): %s\n", ro.output.c_str());
      }
    }
    std::printf(
        "\nexplore it:\n"
        "  tokenwarden --config %s tokens\n"
        "  tokenwarden --config %s violations --open\n"
        "  tokenwarden --config %s history --since 10m\n"
        "  tokenwarden --config %s tokens --at <a time from the history>\n"
        "  tokenwarden --config %s verify\n"
        "  tokenwarden --config %s report --from 1h -o report.md\n",
        config_path.c_str(), config_path.c_str(), config_path.c_str(), config_path.c_str(),
        config_path.c_str(), config_path.c_str());
    if (!o.once) {
      std::printf(
          "\nthe daemon keeps polling (the simulators keep changing a little); Ctrl-C stops it\n");
    }
    std::fflush(stdout);
  }

  if (!o.once && !interrupted) {
    // Keep going until interrupted, with a little churn so the history keeps growing.
    std::uint64_t seed = 1000;
    std::unique_lock lock(progress.mu);
    std::size_t seen = progress.completed_cycles();
    while (!progress.stop) {
      progress.cv.wait(lock, [&] { return progress.stop || progress.completed_cycles() > seen; });
      if (progress.stop) break;
      seen = progress.completed_cycles();
      lock.unlock();
      if (seen % 5 == 0) clusters[0].server->store().churn(1, ++seed);
      lock.lock();
    }
  }

  (*service)->request_stop();
  runner.join();
  // Wake the signal thread if it is still waiting.
  {
    std::lock_guard lock(progress.mu);
    if (!progress.stop) pthread_kill(signal_thread.native_handle(), SIGTERM);
  }
  signal_thread.join();
  for (auto& c : clusters) c.server->stop();
  std::printf("demo stopped; its files stay in %s\n", dir.c_str());
  return rc;
}

}  // namespace tw::cli

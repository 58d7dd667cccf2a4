// `tokenwarden demo`: the daemon against three simulated servers (Clustered, Dedicated, InfluxDB 3
// Core/Enterprise), each a tokenwarden-sim child process whose tokens the demo changes between
// cycles through the simulator's control API; narrated on stdout.
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
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <thread>

#include "cli/command_support.h"
#include "cli/commands.h"
#include "cli/sim_process.h"
#include "core/ed25519.h"
#include "core/strings.h"
#include "daemon/config.h"
#include "daemon/service.h"
#include "storage/audit_store.h"
#include "storage/chain.h"
#include "storage/checkpoints.h"
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

// One simulated cluster: a tokenwarden-sim child process and what the config says about it.
struct DemoCluster {
  std::string name;
  std::string flavor;  // clustered, dedicated, influxdb3 (also the config's `type`)
  std::uint64_t seed;  // of its generated tokens
  std::unique_ptr<SimProcess> sim;
  std::string account_id, cluster_id;  // dedicated
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

// --- the simulators ----------------------------------------------------------------------------

using json = nlohmann::json;

// What went wrong with a scripted change, as a line of the narrative.
void note(const Result<std::string>& r, const std::string& cluster,
          std::vector<std::string>& said) {
  if (!r.ok())
    said.push_back(cluster + ": the simulator refused: " + printable(r.error().message, 100));
}

// The simulator's tokens that are neither revoked nor expired, in the order they were created.
std::vector<json> active_tokens(const SimProcess& sim) {
  std::vector<json> out;
  auto body = sim.call("GET", "/_sim/tokens");
  if (!body.ok()) return out;
  auto all = json::parse(*body, nullptr, false);
  if (!all.is_array()) return out;
  const Timestamp now = SystemClock().now();
  for (auto& t : all) {
    if (t.contains("revokedAt")) continue;
    if (t.contains("expiresAt")) {
      auto at = parse_rfc3339(t.value("expiresAt", std::string()));
      if (at.ok() && *at <= now) continue;
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::size_t token_count(const SimProcess& sim) {
  auto body = sim.call("GET", "/_sim/info");
  if (!body.ok()) return 0;
  auto info = json::parse(*body, nullptr, false);
  return info.is_object() ? info.value("tokens", std::size_t{0}) : 0;
}

// Replaces a token's whole state (PUT /_sim/tokens/{id}).
Result<std::string> put_token(const SimProcess& sim, const json& token) {
  return sim.call("PUT", "/_sim/tokens/" + token.value("id", std::string()), token.dump());
}

json permission(const char* action, const char* resource) {
  return {{"action", action}, {"resource", resource}};
}

// After cycle 1: a temporary CI token, a widened, a revoked and a vanished token on prod-eu; a
// hostile description on dedicated-us; a named admin token on core-local.
void after_first_cycle(std::vector<DemoCluster>& clusters, std::vector<std::string>& said) {
  const SimProcess& prod = *clusters[0].sim;
  json ci = {{"description", "ci pipeline (temporary)"},
             {"permissions", json::array({permission("read", "metrics_prod"),
                                          permission("write", "metrics_prod")})}};
  note(prod.call("POST", "/_sim/tokens", ci.dump()), "prod-eu", said);
  said.push_back(
      "prod-eu: someone creates \"ci pipeline (temporary)\" with write on metrics_prod, no "
      "expiry");
  auto a = active_tokens(prod);
  if (a.size() >= 3) {
    const std::string widened = a[0].value("id", ""), revoked = a[1].value("id", "");
    const std::string removed = a[2].value("id", "");
    a[0]["permissions"].push_back(permission("write", "*"));
    note(put_token(prod, a[0]), "prod-eu", said);
    said.push_back("prod-eu: token " + short_id(widened) +
                   " is widened to write on every database (*)");
    note(prod.call("DELETE", "/api/v0/tokens/" + revoked, {}, true), "prod-eu", said);
    said.push_back("prod-eu: token " + short_id(revoked) + " is revoked");
    note(prod.call("DELETE", "/_sim/tokens/" + removed), "prod-eu", said);
    said.push_back("prod-eu: token " + short_id(removed) + " disappears from the list entirely");
  }
  json hostile = {
      {"description", "grafana <script>alert(1)</script>\n\x1b[31mred\x1b[0m"},
      {"permissions", json::array({permission("read", "*")})},
      {"expiresAt", format_timestamp(SystemClock().now() + std::chrono::hours(24 * 30))}};
  note(clusters[1].sim->call("POST", "/_sim/tokens", hostile.dump()), "dedicated-us", said);
  said.push_back(
      "dedicated-us: a token with a hostile description (HTML, a newline, ANSI colours) appears");
  note(clusters[2].sim->call("POST", "/api/v3/configure/token/named_admin",
                             R"({"token_name":"deploy-bot"})", true),
       "core-local", said);
  said.push_back(
      "core-local: someone creates a named admin token \"deploy-bot\" (*:*:*, no expiry)");
}

// After cycle 2: one 500 from dedicated-us; a new description on prod-eu.
void after_second_cycle(std::vector<DemoCluster>& clusters, std::vector<std::string>& said) {
  note(clusters[1].sim->call("POST", "/_sim/faults", R"({"kind":"status","status":500,"count":1})"),
       "dedicated-us", said);
  said.push_back("dedicated-us: the Management API will answer 500 Internal Server Error once");
  auto a = active_tokens(*clusters[0].sim);
  if (!a.empty()) {
    a[0]["description"] = "svc-ingest (owner: data-platform)";
    note(put_token(*clusters[0].sim, a[0]), "prod-eu", said);
    said.push_back("prod-eu: token " + short_id(a[0].value("id", "")) + " gets a new description");
  }
}

// After cycle 3: churn on prod-eu.
void after_third_cycle(std::vector<DemoCluster>& clusters, std::vector<std::string>& said) {
  auto r = clusters[0].sim->call("POST", "/_sim/churn", R"({"percent":10,"seed":7})");
  if (!r.ok()) return note(r, "prod-eu", said);
  auto counts = json::parse(*r, nullptr, false);
  auto n = [&](const char* key) {
    return std::to_string(counts.is_object() ? counts.value(key, 0) : 0);
  };
  said.push_back("prod-eu: churn — " + n("created") + " created, " + n("updated") + " updated, " +
                 n("revoked") + " revoked");
}

// Applies the scripted changes that follow cycle `k` and says what they were.
std::vector<std::string> script_step(std::size_t k, std::vector<DemoCluster>& clusters) {
  std::vector<std::string> said;
  if (k == 1) after_first_cycle(clusters, said);
  if (k == 2) after_second_cycle(clusters, said);
  if (k == 3) after_third_cycle(clusters, said);
  return said;
}

// Starts the three simulators and seeds them: core-local's operator token (`_admin`, id 0)
// first, then `tokens` generated tokens each.
Result<std::vector<DemoCluster>> start_clusters(const std::string& token_file,
                                                const std::string& token, int tokens) {
  auto program = find_sim_program();
  if (!program.ok()) return program.error();
  std::vector<DemoCluster> clusters;
  for (auto [name, flavor, seed] :
       {std::tuple{"prod-eu", "clustered", 11}, std::tuple{"dedicated-us", "dedicated", 23},
        std::tuple{"core-local", "influxdb3", 31}}) {
    auto sim = SimProcess::start(*program, flavor, token_file, token);
    if (!sim.ok()) return sim.error();
    DemoCluster c{name, flavor, static_cast<std::uint64_t>(seed), std::move(*sim), {}, {}};
    if (c.flavor == "influxdb3") {
      auto admin = c.sim->call("POST", "/api/v3/configure/token/admin", {}, true);
      if (!admin.ok()) return admin.error();
    }
    json generate = {{"generate", tokens}, {"seed", c.seed}};
    if (auto g = c.sim->call("POST", "/_sim/tokens", generate.dump()); !g.ok()) return g.error();
    if (c.flavor == "dedicated") {
      auto info = json::parse(c.sim->call("GET", "/_sim/info").value_or("{}"), nullptr, false);
      c.account_id = info.value("accountId", "");
      c.cluster_id = info.value("clusterId", "");
    }
    clusters.push_back(std::move(c));
  }
  return clusters;
}

// --- the configuration -------------------------------------------------------------------------

constexpr const char* kDemoPolicies = R"toml(
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
)toml";

std::string demo_exemptions(Timestamp now) {
  const std::string expires = format_timestamp(now + std::chrono::hours(24 * 90));
  return R"toml(
[[exemptions]]
policy = "must-expire-within-1y"
description = "^grafana"
reason = "dashboards are read-only; reviewed quarterly (demo)"
expires = )toml" +
         expires + R"toml(

# The operator token (_admin, id 0) is the admin token tokenwarden itself polls core-local with.
[[exemptions]]
policy = "*"
token_id = "0"
cluster = "core-local"
reason = "tokenwarden's own admin token (demo)"
expires = )toml" +
         expires + "\n";
}

std::string demo_config(const std::string& dir, const DemoOptions& o, const std::string& listen,
                        const std::vector<DemoCluster>& clusters, const std::string& token_file,
                        Timestamp now) {
  std::string cfg =
      "[daemon]\ndatabase = \"" + dir + "/audit.db\"\npoll_interval = \"" +
      format_duration(o.interval) +
      "\"\npoll_jitter = \"0s\"\nmode = \"enforce\"\nlog_level = \"error\"\n\n[http]\nlisten = \"" +
      listen + "\"\n\n[safety]\nmax_actions_per_cycle = 10\nmax_actions_percent = 25\n";
  for (const auto& c : clusters) {
    cfg += "\n[[clusters]]\nname = \"" + c.name + "\"\ntype = \"" + c.flavor + "\"\nurl = \"" +
           c.sim->base_url() + "\"\ntoken_file = \"" + token_file + "\"\ntimeout = \"5s\"\n";
    if (c.flavor == "dedicated") {
      cfg += "account_id = \"" + c.account_id + "\"\ncluster_id = \"" + c.cluster_id + "\"\n";
    }
    const char* env = c.name == "prod-eu" ? "prod" : c.name == "core-local" ? "dev" : "staging";
    cfg += std::string("labels = { env = \"") + env + "\" }\n";
  }
  return cfg + kDemoPolicies + demo_exemptions(now);
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

// --- the run -----------------------------------------------------------------------------------

// One demo from start to stop; run() is the ordered list of steps, and the destructor stops
// whatever was started (the daemon, the signal thread, the simulators) in reverse order.
class Demo {
 public:
  explicit Demo(DemoOptions o) : o_(std::move(o)) {}
  ~Demo() { stop(); }
  Demo(const Demo&) = delete;
  Demo& operator=(const Demo&) = delete;

  int run();

 private:
  int prepare_dir();
  int start_simulators();
  int write_config();
  void print_banner() const;
  int start_daemon();
  void wait_for_daemon();
  bool narrate_cycles();  // false: interrupted
  void print_summary();
  void print_enforcement(storage::Db& db) const;
  void print_audit(storage::Db& db) const;
  void write_report() const;
  void keep_polling();
  void stop();

  DemoOptions o_;
  SystemClock clock_;
  sigset_t sigs_{};
  std::string dir_, token_, token_file_, config_path_, listen_;
  Timestamp started_{};
  std::vector<DemoCluster> clusters_;
  std::optional<daemon::Config> config_;
  std::unique_ptr<daemon::Service> service_;
  std::unique_ptr<storage::AuditStore> store_;
  Progress progress_;
  std::thread signal_thread_, runner_;
  int rc_ = kExitOk;
};

int Demo::run() {
  // Signals are taken by a dedicated thread (sigwait), so block them before any thread starts.
  sigemptyset(&sigs_);
  sigaddset(&sigs_, SIGINT);
  sigaddset(&sigs_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs_, nullptr);
  for (auto step : {&Demo::prepare_dir, &Demo::start_simulators, &Demo::write_config}) {
    if (int rc = (this->*step)(); rc != kExitOk) return rc;
  }
  print_banner();
  if (int rc = start_daemon(); rc != kExitOk) return rc;
  wait_for_daemon();
  const bool completed = narrate_cycles();
  if (completed && store_) print_summary();
  if (completed && !o_.once) keep_polling();
  stop();
  std::printf("demo stopped; its files stay in %s\n", dir_.c_str());
  return rc_;
}

int Demo::prepare_dir() {
  dir_ = o_.dir;
  if (dir_.empty()) {
    std::string tmpl = (fs::temp_directory_path() / "tokenwarden-demo-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      print_error("cannot create a temporary directory for the demo");
      return kExitFailure;
    }
    dir_ = tmpl;
  } else {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (fs::exists(fs::path(dir_) / "audit.db")) {
      print_error("--dir " + dir_ +
                  " already holds a demo database; remove it or choose another directory");
      return kExitUsage;
    }
  }
  ::chmod(dir_.c_str(), 0700);
  token_ = "demo-" + random_hex(24);
  token_file_ = dir_ + "/management.token";
  std::ofstream(token_file_) << token_ << "\n";
  ::chmod(token_file_.c_str(), 0600);
  return kExitOk;
}

int Demo::start_simulators() {
  auto clusters = start_clusters(token_file_, token_, o_.tokens);
  if (!clusters.ok()) {
    print_error("cannot start the simulated cluster: " + clusters.error().message);
    return kExitFailure;
  }
  clusters_ = std::move(*clusters);
  return kExitOk;
}

namespace {

// The demo's signing key pair (as `tokenwarden keygen` writes it) and the [audit] section that
// signs checkpoints with it and exports the history to a JSON-lines file beside the database.
std::optional<std::string> demo_audit(const std::string& dir) {
  auto key = ed25519::PrivateKey::generate();
  if (!key.ok()) return std::nullopt;
  const std::string key_path = dir + "/checkpoint.key", pub_path = dir + "/checkpoint.pub";
  {
    std::ofstream out(key_path);
    out << key->pem();
    if (!out) return std::nullopt;
  }
  ::chmod(key_path.c_str(), 0600);
  std::ofstream(pub_path) << key->public_key().pem();
  return "\n[audit]\nsigning_key_file = \"" + key_path + "\"\npublic_key_file = \"" + pub_path +
         "\"\ncheckpoint_events = 100\n\n[[audit.export]]\nname = \"copy\"\ntype = \"file\"\n"
         "path = \"" +
         dir + "/audit-export.jsonl\"\n";
}

}  // namespace

int Demo::write_config() {
  started_ = clock_.now();
  listen_ = demo_listen(o_.listen);
  auto audit = demo_audit(dir_);
  if (!audit) {
    print_error("cannot write the demo's checkpoint key into " + dir_);
    return kExitFailure;
  }
  const std::string cfg = demo_config(dir_, o_, listen_, clusters_, token_file_, started_) + *audit;
  config_path_ = dir_ + "/tokenwarden.toml";
  std::ofstream(config_path_) << cfg;
  auto load = daemon::load_config_string(cfg, config_path_, started_);
  if (!load.config) {
    print_error("demo configuration is invalid: " + (load.errors.empty() ? "" : load.errors[0]));
    return kExitFailure;
  }
  config_ = std::move(load.config);
  return kExitOk;
}

void Demo::print_banner() const {
  std::printf("tokenwarden demo — three simulated InfluxDB 3 clusters, polled every %s\n\n",
              format_duration(o_.interval).c_str());
  for (const auto& c : clusters_) {
    std::printf("  %-13s %-10s %-42s %zu tokens\n", c.name.c_str(), c.flavor.c_str(),
                c.sim->base_url().c_str(), token_count(*c.sim));
  }
  std::printf("  database      %s/audit.db\n  config        %s\n\n", dir_.c_str(),
              config_path_.c_str());
  std::fflush(stdout);
}

int Demo::start_daemon() {
  // The narrative is the demo's output; the daemon's own log shows only errors here.
  auto sink = std::make_shared<StreamLogSink>(stderr, LogFormat::kText, clock_);
  sink->set_level(LogLevel::kError);
  daemon::ServiceDeps deps;
  deps.clock = &clock_;
  deps.sink = sink;
  deps.handle_signals = false;
  auto service = daemon::Service::create(std::move(*config_), deps);
  if (!service.ok()) {
    print_error(service.error().message);
    return kExitFailure;
  }
  service_ = std::move(*service);
  for (const auto& c : clusters_) progress_.reports[c.name];
  service_->on_cycle([this](const daemon::CycleReport& r) {
    std::lock_guard lock(progress_.mu);
    progress_.reports[r.cluster].push_back(r);
    progress_.cv.notify_all();
  });
  signal_thread_ = std::thread([this] {
    int sig = 0;
    sigwait(&sigs_, &sig);
    std::lock_guard lock(progress_.mu);
    progress_.stop = true;
    progress_.cv.notify_all();
  });
  runner_ = std::thread([this] { rc_ = service_->run(); });
  return kExitOk;
}

// Until the daemon has created the database and (if asked) bound its endpoint, at most 4 s.
void Demo::wait_for_daemon() {
  const std::string db = dir_ + "/audit.db";
  for (int i = 0; i < 200 && !store_; ++i) {  // the daemon creates it on start
    auto store = storage::AuditStore::open(db, storage::AuditStore::Mode::kReadOnly);
    if (store.ok()) {
      store_ = std::move(*store);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  for (int i = 0; i < 200 && !listen_.empty() && service_->endpoint_url().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!listen_.empty() && !service_->endpoint_url().empty()) {
    const std::string u = service_->endpoint_url();
    std::printf("  metrics       %s/metrics  (also /healthz, /readyz)\n\n", u.c_str());
    std::fflush(stdout);
  }
}

bool Demo::narrate_cycles() {
  std::int64_t last_seq = 0;
  for (std::size_t k = 1; k <= static_cast<std::size_t>(o_.cycles); ++k) {
    std::unique_lock lock(progress_.mu);
    progress_.cv.wait(lock, [&] { return progress_.stop || progress_.completed_cycles() >= k; });
    if (progress_.stop) return false;
    std::printf("cycle %zu\n", k);
    for (const auto& c : clusters_) {
      const daemon::CycleReport& r = progress_.reports[c.name][k - 1];
      std::string outcome(storage::to_string(r.summary.outcome));
      std::printf("  %-13s %-8s %5zu tokens  %s\n", c.name.c_str(), outcome.c_str(),
                  r.summary.token_count,
                  r.error.empty() ? counts_line(r).c_str() : printable(r.error, 110).c_str());
    }
    lock.unlock();
    if (store_) print_events(store_->db(), last_seq, 10);
    if (k < static_cast<std::size_t>(o_.cycles)) {
      for (const auto& line : script_step(k, clusters_)) std::printf("   ~ %s\n", line.c_str());
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  return true;
}

void Demo::print_summary() {
  storage::Db& db = store_->db();
  std::printf("inventory (tokenwarden tokens)\n");
  if (auto rows = storage::query_inventory(db, {}); rows.ok()) {
    std::map<std::string, std::map<std::string, int>> counts;
    for (const auto& r : *rows) counts[r.cluster][std::string(to_string(r.status))]++;
    for (auto& [cl, m] : counts) {
      std::printf("  %-13s active %d, expired %d, revoked %d, removed %d\n", cl.c_str(),
                  m["active"], m["expired"], m["revoked"], m["removed"]);
    }
  }
  print_enforcement(db);
  print_audit(db);
  write_report();
  const char* c = config_path_.c_str();
  std::printf(
      "\nexplore it:\n"
      "  tokenwarden --config %s tokens\n"
      "  tokenwarden --config %s violations --open\n"
      "  tokenwarden --config %s history --since 10m\n"
      "  tokenwarden --config %s tokens --at <a time from the history>\n"
      "  tokenwarden --config %s verify            # with [audit] public_key_file: the signatures "
      "too\n"
      "  tokenwarden --config %s verify --export %s/audit-export.jsonl\n"
      "  tokenwarden --config %s report --from 1h -o report.md\n",
      c, c, c, c, c, c, dir_.c_str(), c);
  if (!o_.once) {
    std::printf(
        "\nthe daemon keeps polling (the simulators keep changing a little); Ctrl-C stops it\n");
  }
  std::fflush(stdout);
}

// The chain, the signed checkpoints (verified with the demo's public key) and the exported copy.
void Demo::print_audit(storage::Db& db) const {
  auto pub = ed25519::PublicKey::load(dir_ + "/checkpoint.pub");
  if (!pub.ok()) return;
  storage::CheckpointVerifier checkpoints({*pub});
  auto v = storage::verify_chain(db, nullptr, nullptr, &checkpoints);
  if (!v.ok()) return;
  std::printf("\naudit log: %lld events, hash chain %s, head seq %lld hash %s\n",
              static_cast<long long>(v->rows), v->ok ? "intact" : "BROKEN",
              static_cast<long long>(v->head_seq), v->head_hash.c_str());
  const auto c = checkpoints.report();
  std::printf(
      "signed checkpoints: %lld (key %s), history proven up to seq %lld, %lld events after it\n"
      "exported copy: %s/audit-export.jsonl (JSON lines, one per event)\n",
      static_cast<long long>(c.checkpoints), pub->key_id().c_str(),
      static_cast<long long>(c.proven_seq), static_cast<long long>(c.unsigned_tail), dir_.c_str());
}

void Demo::print_enforcement(storage::Db& db) const {
  auto viol = storage::query_violations(db, {});
  auto acts = storage::query_actions(db, "");
  if (!viol.ok() || !acts.ok()) return;
  std::map<std::string, int> open_by_policy, actions_by_state;
  int resolved = 0;
  for (const auto& v : *viol) {
    if (v.state == storage::ViolationState::kResolved)
      ++resolved;
    else
      ++open_by_policy[v.policy];
  }
  for (const auto& a : *acts) actions_by_state[a.action + " " + std::string(to_string(a.state))]++;
  std::vector<std::string> open_parts, action_parts;
  for (const auto& [p, n] : open_by_policy) open_parts.push_back(p + " " + std::to_string(n));
  for (const auto& [k, n] : actions_by_state) action_parts.push_back(k + " " + std::to_string(n));
  std::printf("\nviolations (tokenwarden violations): %d resolved; open: %s\n", resolved,
              open_parts.empty() ? "none" : join(open_parts, ", ").c_str());
  std::printf("actions: %s\n", action_parts.empty() ? "none" : join(action_parts, ", ").c_str());
}

// The compliance report over the demo's history (SPEC §7).
void Demo::write_report() const {
  GlobalOptions rg{config_path_, true};
  ReportOptions ro;
  ro.from = format_timestamp(started_);
  ro.output = dir_ + "/report.html";
  if (cmd_report(rg, ro) == 0) {
    std::printf("\ncompliance report (tokenwarden report): %s\n", ro.output.c_str());
  }
}

// Until interrupted, with a little churn on prod-eu every 5 cycles so the history keeps growing.
void Demo::keep_polling() {
  std::uint64_t seed = 1000;
  std::unique_lock lock(progress_.mu);
  std::size_t seen = progress_.completed_cycles();
  while (!progress_.stop) {
    progress_.cv.wait(lock, [&] { return progress_.stop || progress_.completed_cycles() > seen; });
    if (progress_.stop) break;
    seen = progress_.completed_cycles();
    lock.unlock();
    if (seen % 5 == 0) {
      json churn = {{"percent", 1}, {"seed", ++seed}};
      (void)clusters_[0].sim->call("POST", "/_sim/churn", churn.dump());
    }
    lock.lock();
  }
}

// The daemon first (it polls the simulators), then the signal thread, then the simulators.
void Demo::stop() {
  if (runner_.joinable()) {
    service_->request_stop();
    runner_.join();
  }
  if (signal_thread_.joinable()) {
    {
      std::lock_guard lock(progress_.mu);  // wake it if it is still waiting
      if (!progress_.stop) pthread_kill(signal_thread_.native_handle(), SIGTERM);
    }
    signal_thread_.join();
  }
  store_.reset();
  for (auto& c : clusters_) c.sim->stop();
}

}  // namespace

int cmd_demo(const GlobalOptions&, const DemoOptions& o) { return Demo(o).run(); }

}  // namespace tw::cli

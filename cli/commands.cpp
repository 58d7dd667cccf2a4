#include "cli/commands.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <utility>

#include "cli/command_support.h"
#include "core/json_writer.h"
#include "core/log.h"
#include "core/strings.h"
#include "daemon/config.h"
#include "daemon/export_gate.h"
#include "daemon/preflight.h"
#include "daemon/runtime.h"
#include "daemon/service.h"
#include "influx/management_token.h"
#include "storage/anomalies.h"
#include "storage/audit_store.h"
#include "storage/chain.h"
#include "storage/queries.h"
#include "storage/sqlite.h"

namespace tw::cli {
namespace {

// Under systemd (JOURNAL_STREAM set) text lines carry a priority prefix and no timestamp.
std::shared_ptr<StreamLogSink> make_sink(const SystemClock& clock, LogFormat format,
                                         LogLevel level) {
  bool journald = !env("JOURNAL_STREAM").empty();
  auto sink = std::make_shared<StreamLogSink>(stderr, format, clock, journald);
  sink->set_level(level);
  return sink;
}

std::string brief_permissions(const std::vector<Permission>& perms) {
  if (perms.empty()) return "(none)";
  std::vector<std::string> parts;
  for (const auto& p : perms) parts.push_back(p.action + ":" + p.resource);
  return join(parts, " ");
}

std::int64_t count(const storage::EventCounts& c, EventKind k) {
  return c[static_cast<std::size_t>(k)];
}

// --cluster names a configured cluster, and the influxctl of each cluster polled is one we can
// read. Returns kExitOk, else kExitUsage after printing why.
int check_poll_target(const GlobalOptions& g, const PollOptions& o, const daemon::Config& config) {
  if (!o.cluster.empty() && config.find_cluster(o.cluster) == nullptr) {
    print_error("no cluster named \"" + printable(o.cluster, 64) + "\" in " + g.config_path);
    return kExitUsage;
  }
  if (auto versions = daemon::check_influxctl_versions(config, o.cluster);
      !versions.errors.empty()) {
    for (const auto& e : versions.errors) print_error(e);
    return kExitUsage;
  }
  return kExitOk;
}

// A row per cluster polled.
Table poll_table() {
  Table table;
  table.columns = {{"cluster"},
                   {"outcome"},
                   {"tokens"},
                   {"discovered", false},
                   {"created"},
                   {"updated"},
                   {"revoked"},
                   {"expired", false},
                   {"removed"},
                   {"violations_opened"},
                   {"violations_resolved"},
                   {"actions_planned"},
                   {"actions_awaiting_approval", false},
                   {"actions_skipped", false},
                   {"actions_halted", false},
                   {"actions_succeeded"},
                   {"actions_failed"},
                   {"duration_ms", false},
                   {"error", true, 100}};
  return table;
}

std::vector<Cell> poll_row(const daemon::CycleReport& rep) {
  const auto& s = rep.summary;
  const auto& e = rep.enforcement;
  std::string outcome(storage::to_string(s.outcome));
  if (!rep.recorded) outcome = "not recorded";
  return {Cell::str(rep.cluster),
          Cell::str(outcome),
          Cell::num(static_cast<long long>(s.token_count)),
          Cell::num(count(s.events, EventKind::kTokenDiscovered)),
          Cell::num(count(s.events, EventKind::kTokenCreated)),
          Cell::num(count(s.events, EventKind::kTokenUpdated)),
          Cell::num(count(s.events, EventKind::kTokenRevoked)),
          Cell::num(count(s.events, EventKind::kTokenExpired)),
          Cell::num(count(s.events, EventKind::kTokenRemoved)),
          Cell::num(e.opened),
          Cell::num(e.resolved),
          Cell::num(e.planned),
          Cell::num(e.awaiting_approval),
          Cell::num(e.skipped),
          Cell::num(e.halted),
          Cell::num(e.succeeded + e.reconciled),
          Cell::num(e.failed),
          Cell::num(static_cast<long long>(rep.total_time.count())),
          rep.error.empty() ? Cell::null() : Cell::str(rep.error)};
}

// --cluster and --status; a status that does not parse is printed and gives nullopt.
std::optional<storage::InventoryFilter> tokens_filter(const TokensOptions& o) {
  storage::InventoryFilter filter;
  filter.cluster = o.cluster;
  filter.owner = o.owner;
  filter.team = o.team;
  if (!o.status.empty()) {
    filter.status = parse_token_status(o.status);
    if (!filter.status) {
      print_error("--status must be active, expired, revoked or removed, not \"" +
                  printable(o.status, 40) + "\"");
      return std::nullopt;
    }
  }
  return filter;
}

std::vector<Column> token_columns() {
  return {{"cluster"},
          {"token_id"},
          {"status"},
          {"description", true, 40},
          {"permissions", true, 48},
          {"created_at", false},
          {"expires_at"},
          {"revoked_at", false},
          {"first_seen", false},
          {"last_seen"},
          {"anomalies"},
          {"owner", true, 24},
          {"team", true, 16},
          {"owner_rule", false}};
}

// The reasons of the time anomalies recorded per (cluster, token id).
using AnomalyReasons = std::map<std::pair<std::string, std::string>, std::vector<std::string>>;

// Time anomalies recorded for each token up to the instant shown (token_anomaly events); nullopt
// after printing a database error.
std::optional<AnomalyReasons> anomaly_reasons(storage::Db& db, const std::string& cluster,
                                              const std::optional<Timestamp>& at) {
  auto recorded = storage::recorded_anomalies(db, cluster, at);
  if (!recorded.ok()) {
    print_error(recorded.error().message);
    return std::nullopt;
  }
  AnomalyReasons anomalies;
  for (auto& a : *recorded)
    anomalies[{std::move(a.cluster), std::move(a.token_id)}].push_back(std::move(a.reason));
  return anomalies;
}

// An owner, team or rule: null when there is none.
Cell owner_cell(const std::string& value) {
  return value.empty() ? Cell::null() : Cell::str(value);
}

// A token's row; `table_format` adds the brief text of the JSON cells.
std::vector<Cell> token_cells(const storage::InventoryRow& r, const AnomalyReasons& anomalies,
                              bool table_format) {
  std::string reasons_json = "[]", reasons_brief = "-";
  if (auto it = anomalies.find({r.cluster, r.token.id}); it != anomalies.end()) {
    reasons_json.clear();
    JsonWriter w(reasons_json);
    w.begin_array();
    for (const auto& reason : it->second) w.value(reason);
    w.end_array();
    reasons_brief = join(it->second, ",");
  }
  return std::vector<Cell>{
      Cell::str(r.cluster),
      Cell::str(r.token.id),
      Cell::str(std::string(to_string(r.status))),
      Cell::str(r.token.description),
      Cell::json(permissions_json(r.token.permissions),
                 table_format ? brief_permissions(r.token.permissions) : std::string()),
      time_cell(r.token.created_at),
      time_cell(r.token.expires_at),
      time_cell(r.token.revoked_at),
      Cell::str(r.first_seen),
      Cell::str(r.last_seen),
      Cell::json(std::move(reasons_json), std::move(reasons_brief)),
      owner_cell(r.ownership.owner),
      owner_cell(r.ownership.team),
      owner_cell(r.ownership.rule)};
}

}  // namespace

int cmd_check_config(const GlobalOptions& g, bool print) {
  SystemClock clock;
  auto load = daemon::load_config_file(g.config_path, clock.now());
  // Everything `run` would load besides the file: TLS files, token files (read, never shown).
  daemon::RuntimeFileCheck files;
  if (load.config) files = daemon::check_runtime_files(*load.config, env("CREDENTIALS_DIRECTORY"));
  load.errors.insert(load.errors.end(), files.errors.begin(), files.errors.end());
  load.warnings.insert(load.warnings.end(), files.warnings.begin(), files.warnings.end());
  for (const auto& e : load.errors) std::fprintf(stderr, "%s\n", e.c_str());
  for (const auto& w : load.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  if (!load.errors.empty()) {
    std::fprintf(stderr, "%s: %zu problem(s) found\n", g.config_path.c_str(), load.errors.size());
    return kExitUsage;
  }
  const daemon::Config& c = *load.config;
  if (print) {
    write_stdout(daemon::render_config(c));
  } else {
    std::printf("%s: OK (%zu clusters, %zu policies, %zu exemptions)\n", g.config_path.c_str(),
                c.clusters.size(), c.policies.size(), c.exemptions.size());
  }
  return kExitOk;
}

int cmd_run(const GlobalOptions& g) {
  auto config = load_config(g);
  if (!config) return kExitUsage;
  // What check-config checks besides the file; refused here, before the database is opened.
  auto files = daemon::check_runtime_files(*config, env("CREDENTIALS_DIRECTORY"));
  for (const auto& e : files.errors) std::fprintf(stderr, "tokenwarden: error: %s\n", e.c_str());
  if (!files.errors.empty()) {
    std::fprintf(stderr, "tokenwarden: %zu problem(s) in %s\n", files.errors.size(),
                 g.config_path.c_str());
    return kExitUsage;
  }
  SystemClock clock;
  auto sink = make_sink(clock, config->daemon.log_format, config->daemon.log_level);
  // Logged as a reload logs them, in the configured format (JSON lines stay JSON).
  for (const auto& w : files.warnings) Logger("daemon", sink).warn("configuration: " + w);
  daemon::ServiceDeps deps;
  deps.clock = &clock;
  deps.sink = sink;
  deps.credentials_directory = env("CREDENTIALS_DIRECTORY");
  deps.set_log_format = [sink](LogFormat f) { sink->set_format(f); };
  auto service = daemon::Service::create(std::move(*config), deps);
  if (!service.ok()) {
    print_error(service.error().message);
    return kExitFailure;
  }
  return (*service)->run();
}

namespace {

// [audit] require_export in a one-shot poll: it runs no exporter, so its enforcers ask the
// cursors the daemon's exporters stored (daemon/export_gate.h) before they act.
bool gate_on_stored_export(const daemon::Config& config, daemon::Runtime& rt) {
  if (!config.audit.require_export) return true;
  auto db = storage::Db::open(config.daemon.database, storage::Db::Mode::kReadOnly);
  if (!db.ok()) {
    print_error(db.error().message);
    return false;
  }
  std::shared_ptr<storage::Db> shared(std::move(*db));
  for (auto& poller : rt.pollers) {
    if (daemon::Enforcer* e = poller->enforcer()) {
      e->set_export_gate([shared, &audit = config.audit](Timestamp now) {
        return daemon::stored_export_blocking_reason(*shared, audit, now);
      });
    }
  }
  return true;
}

}  // namespace

int cmd_poll(const GlobalOptions& g, const PollOptions& o) {
  auto config = load_config(g);
  if (!config) return kExitUsage;
  if (int rc = check_poll_target(g, o, *config); rc != kExitOk) return rc;
  SystemClock clock;
  auto sink = make_sink(clock, config->daemon.log_format, config->daemon.log_level);
  daemon::RuntimeOptions ro;
  ro.credentials_directory = env("CREDENTIALS_DIRECTORY");
  ro.only_cluster = o.cluster;
  ro.alerting = !o.dry_run;
  auto rt = daemon::build_runtime(*config, clock, sink, ro);
  if (!rt.ok()) {
    print_error(rt.error().message);
    return kExitFailure;
  }
  if (!o.dry_run && !gate_on_stored_export(*config, *rt)) return kExitFailure;
  Table table = poll_table();
  bool failed = false;
  for (auto& poller : rt->pollers) {
    daemon::RunOptions opts;
    opts.dry_run = o.dry_run;
    opts.max_vanished_percent = config->safety.max_vanished_percent;
    opts.use_checkpoint = true;  // a new process: an unchanged list need not be read back
    daemon::CycleReport rep = poller->run_once(opts);
    if (!rep.recorded || rep.summary.outcome == storage::PollOutcome::kFailed) failed = true;
    table.rows.push_back(poll_row(rep));
  }
  if (!o.dry_run) rt->checkpointer->sign(clock.now());  // nothing if the head did not move
  write_stdout(render(table, o.format));
  if (o.dry_run && o.format == OutputFormat::kTable) {
    std::printf("(dry run: nothing was written to %s and no action was run)\n",
                config->daemon.database.c_str());
  }
  return failed ? kExitFailure : kExitOk;
}

int cmd_tokens(const GlobalOptions& g, const TokensOptions& o) {
  auto path = database_path(g, o.db);
  if (!path) return kExitUsage;
  auto filter = tokens_filter(o);
  if (!filter) return kExitUsage;
  std::optional<Timestamp> at;
  if (!o.at.empty()) {
    at = time_option(o.at, "--at", SystemClock().now());
    if (!at) return kExitUsage;
  }
  auto store = open_store(*path, storage::AuditStore::Mode::kReadOnly);
  if (!store) return kExitFailure;
  const std::vector<Column> columns = token_columns();
  auto anomalies = anomaly_reasons(store->db(), filter->cluster, at);
  if (!anomalies) return kExitFailure;
  const bool table_format = o.format == OutputFormat::kTable;
  if (at) {
    // Replayed from the history: the rows are streamed out as they are produced, so a large
    // inventory is never held twice.
    storage::InventoryReplay replay;
    if (auto s = replay.run(store->db(), *at, filter->cluster, {}, {}); !s.ok()) {
      print_error(s.error().message);
      return kExitFailure;
    }
    auto owners = storage::current_owners(store->db());
    if (!owners.ok()) {
      print_error(owners.error().message);
      return kExitFailure;
    }
    RowStream out(columns, o.format, stdout);
    replay.for_each(*at, filter->status, [&](const storage::InventoryRow& replayed) {
      storage::InventoryRow r = replayed;
      if (auto it = owners->find({r.cluster, r.token.id}); it != owners->end())
        r.ownership = it->second;
      if (filter->matches(r.ownership)) out.row(token_cells(r, *anomalies, table_format));
      return true;
    });
    out.finish();
    return kExitOk;
  }
  auto rows = storage::query_inventory(store->db(), *filter);
  if (!rows.ok()) {
    print_error(rows.error().message);
    return kExitFailure;
  }
  Table table;
  table.columns = columns;
  for (const auto& r : *rows) table.rows.push_back(token_cells(r, *anomalies, table_format));
  write_stdout(render(table, o.format));
  return kExitOk;
}

int cmd_history(const GlobalOptions& g, const HistoryOptions& o) {
  auto path = database_path(g, o.db);
  if (!path) return kExitUsage;
  storage::HistoryFilter filter;
  filter.token_id = o.token;
  filter.cluster = o.cluster;
  filter.limit = o.limit;
  Timestamp now = SystemClock().now();
  for (const auto& [arg, name, target] : {std::tuple{&o.since, "--since", &filter.since},
                                          std::tuple{&o.until, "--until", &filter.until}}) {
    if (arg->empty()) continue;
    *target = time_option(*arg, name, now);
    if (!*target) return kExitUsage;
  }
  if (filter.since && filter.until && *filter.until < *filter.since) {
    print_error("--until " + format_timestamp(*filter.until) + " is before --since " +
                format_timestamp(*filter.since));
    return kExitUsage;
  }
  for (const auto& e : o.events) {
    for (const auto& part : split(e, ',')) {
      if (part.empty()) continue;
      if (!parse_event_kind(part)) {
        print_error("--event: unknown event \"" + printable(part, 40) +
                    "\" (see docs/database.md)");
        return kExitUsage;
      }
      filter.events.push_back(part);
    }
  }
  if (!o.events.empty() && filter.events.empty()) {
    print_error("--event names no event (give names such as token_created, comma-separated)");
    return kExitUsage;
  }
  auto store = open_store(*path, storage::AuditStore::Mode::kReadOnly);
  if (!store) return kExitFailure;
  auto rows = storage::query_history(store->db(), filter);
  if (!rows.ok()) {
    print_error(rows.error().message);
    return kExitFailure;
  }
  Table table;
  table.columns = {{"seq"},   {"recorded_at"},      {"cluster"},          {"token_id"},
                   {"event"}, {"detail", true, 80}, {"prev_hash", false}, {"hash", false}};
  for (const auto& r : *rows) {
    table.rows.push_back({Cell::num(r.seq), Cell::str(r.recorded_at), Cell::opt(r.cluster),
                          Cell::opt(r.token_id), Cell::str(r.event), Cell::json(r.detail),
                          Cell::str(r.prev_hash), Cell::str(r.hash)});
  }
  write_stdout(render(table, o.format));
  return kExitOk;
}

}  // namespace tw::cli

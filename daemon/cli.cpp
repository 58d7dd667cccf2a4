#include "daemon/cli.h"

#include <malloc.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "core/strings.h"
#include "core/version.h"
#include "daemon/commands.h"
#include "daemon/config.h"

namespace tw::daemon {
namespace {

constexpr const char* kDescription =
    "tokenwarden keeps InfluxDB 3 (Clustered, Cloud Dedicated) database tokens under control:\n"
    "it polls each cluster's token list, records every change in a tamper-evident SQLite audit\n"
    "history, checks policies and exports Prometheus metrics.";

constexpr const char* kFooter =
    "Exit status: 0 success, 1 runtime failure (cluster unreachable, database error),\n"
    "2 invalid arguments or configuration, 3 `verify` found the audit chain broken (or `backup`\n"
    "copied a broken chain).\n"
    "Documentation: /usr/share/doc/tokenwarden (docs/ in the source tree).";

void add_format(CLI::App* cmd, std::string& format) {
  cmd->add_option("--format", format, "Output format: table (people), json or csv (scripts)")
      ->check(CLI::IsMember({"table", "json", "csv"}))
      ->default_val("table");
}

OutputFormat fmt(const std::string& s) {
  return parse_output_format(s).value_or(OutputFormat::kTable);
}

// Argument rules shared by every command (docs/commands.md, "Arguments"): an option given an
// empty value is a usage error, never "not given"; counts and ids are whole numbers said so in
// plain words (CLI11's own range messages print a 300-digit double).
CLI::Validator non_empty() {
  return CLI::Validator(
      [](std::string& v) { return v.empty() ? std::string("must not be empty") : std::string(); },
      "", "");
}

bool whole_number(const std::string& v, long long min) {
  if (v.empty() || v.size() > 18) return false;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
  }
  return std::stoll(v) >= min;
}

CLI::Validator count(const char* meaning_of_zero) {
  std::string zero = meaning_of_zero;
  return CLI::Validator(
      [zero](std::string& v) {
        return whole_number(v, 0) ? std::string()
                                  : "must be a whole number, 0 (" + zero + ") or more, not \"" +
                                        printable(v, 40) + "\"";
      },
      "", "");
}

CLI::Validator action_id() {
  return CLI::Validator(
      [](std::string& v) {
        return whole_number(v, 1)
                   ? std::string()
                   : "action ids are whole numbers from 1 (see `tokenwarden violations`), not \"" +
                         printable(v, 40) + "\"";
      },
      "", "");
}

}  // namespace

void configure_process() {
  // glibc raises its mmap threshold after the first large free; pin it instead.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  // Pinning it also leaves the trim threshold at 128 KiB: every free that left that much at the
  // top of the heap gave it back (brk, a TLB flush) and the next allocation faulted it in again
  // — half the CPU of a first poll that opens 216k violations. Memory still goes back: the poller
  // trims after every poll that decoded a list (malloc_trim).
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  mallopt(M_TOP_PAD, 16 << 20);
}

int run_cli(int argc, char** argv) {
  configure_process();
  CLI::App app{kDescription, "tokenwarden"};
  app.footer(kFooter);
  app.set_version_flag("--version", std::string("tokenwarden ") + kVersion);
  app.require_subcommand(1, 1);
  app.fallthrough();
  GlobalOptions g;
  g.config_path = kDefaultConfigPath;
  auto* config_opt = app.add_option("-c,--config", g.config_path, "Configuration file")
                         ->default_val(kDefaultConfigPath)
                         ->envname("TOKENWARDEN_CONFIG");

  auto* run =
      app.add_subcommand("run", "Run the daemon in the foreground (for systemd or a terminal)");
  run->footer(
      "Polls every configured cluster on its schedule and records changes until SIGTERM or\n"
      "SIGINT. Logs go to stderr (journald). Example:\n  tokenwarden --config "
      "/etc/tokenwarden/tokenwarden.toml run");

  PollOptions poll;
  std::string poll_format;
  auto* poll_cmd =
      app.add_subcommand("poll", "Run one full cycle for each cluster, print a summary, exit");
  poll_cmd->add_option("--cluster", poll.cluster, "Only this cluster")->check(non_empty());
  poll_cmd->add_flag("--dry-run", poll.dry_run, "Fetch and compare, but write nothing");
  add_format(poll_cmd, poll_format);
  poll_cmd->footer(
      "Exit status 1 if any cluster could not be polled or recorded.\nExample:\n  tokenwarden poll "
      "--cluster prod-eu");

  bool print = false;
  auto* check = app.add_subcommand("check-config", "Validate the configuration and its policies");
  check->add_flag("--print", print,
                  "Print the effective configuration (defaults filled, secrets redacted)");
  check->footer(
      "Every problem is listed with its key path, e.g. `clusters[1].url: …`; exit status 2 if "
      "any.");

  TokensOptions tokens;
  std::string tokens_format;
  auto* tokens_cmd =
      app.add_subcommand("tokens", "List the token inventory, now or as of a past time");
  tokens_cmd->add_option("--cluster", tokens.cluster, "Only this cluster")->check(non_empty());
  tokens_cmd->add_option("--status", tokens.status, "Only tokens in this status")
      ->check(CLI::IsMember({"active", "expired", "revoked", "removed"}));
  tokens_cmd
      ->add_option("--at", tokens.at,
                   "Rebuild the inventory as it was at TIME from the audit history (RFC 3339, "
                   "a date like 2026-11-01, or an age like 7d)")
      ->check(non_empty());
  tokens_cmd->add_option("--db", tokens.db, "Read this database instead of the configured one")
      ->check(non_empty());
  add_format(tokens_cmd, tokens_format);
  tokens_cmd->footer(
      "Examples:\n  tokenwarden tokens --status active --format csv\n  tokenwarden tokens --at "
      "2026-10-01 --cluster prod-eu");

  HistoryOptions hist;
  std::string hist_format;
  auto* hist_cmd = app.add_subcommand("history", "Show audit events");
  hist_cmd->add_option("--token", hist.token, "Only events about this token id")
      ->check(non_empty());
  hist_cmd->add_option("--cluster", hist.cluster, "Only events of this cluster")
      ->check(non_empty());
  hist_cmd
      ->add_option("--since", hist.since,
                   "Events recorded at or after TIME (RFC 3339, date, or age like 24h)")
      ->check(non_empty());
  hist_cmd
      ->add_option("--until", hist.until, "Events recorded at or before TIME (not before --since)")
      ->check(non_empty());
  hist_cmd
      ->add_option("--event", hist.events,
                   "Only these events (repeatable or comma-separated), e.g. token_created")
      ->check(non_empty());
  hist_cmd->add_option("--limit", hist.limit, "Only the most recent N events (0: all)")
      ->check(count("all"));
  hist_cmd->add_option("--db", hist.db, "Read this database instead of the configured one")
      ->check(non_empty());
  add_format(hist_cmd, hist_format);
  hist_cmd->footer(
      "Examples:\n  tokenwarden history --token 55555555-5555-4555-8555-555555555555\n  "
      "tokenwarden history --since 7d --event token_revoked,token_removed --format json");

  ViolationsOptions viol;
  std::string viol_format;
  auto* viol_cmd = app.add_subcommand("violations", "List policy violations and their actions");
  viol_cmd->add_flag("--open", viol.open_only,
                     "Only unresolved violations (any state but resolved)");
  viol_cmd->add_option("--cluster", viol.cluster, "Only this cluster")->check(non_empty());
  viol_cmd->add_option("--policy", viol.policy, "Only this policy")->check(non_empty());
  viol_cmd->add_option("--db", viol.db, "Read this database instead of the configured one")
      ->check(non_empty());
  add_format(viol_cmd, viol_format);
  viol_cmd->footer(
      "Each violation shows its latest action (ACTION_ID, ACTION_STATE): approve the ones\n"
      "awaiting approval with `tokenwarden approve ACTION_ID`.\nExamples:\n"
      "  tokenwarden violations --open\n  tokenwarden violations --policy max-lifetime-90d "
      "--format csv");

  ApproveOptions approve;
  auto* approve_cmd =
      app.add_subcommand("approve", "Release actions that wait for approval or a safety halt");
  approve_cmd
      ->add_option("action_ids", approve.action_ids, "Actions awaiting approval (see `violations`)")
      ->check(action_id());
  approve_cmd->add_option("--cluster", approve.cluster, "With --all: the cluster to release")
      ->check(non_empty());
  approve_cmd->add_flag(
      "--all", approve.all,
      "Approve every action awaiting approval on --cluster and release its halted enforcement");
  approve_cmd
      ->add_option(
          "--by", approve.by,
          "Who approves (default: the invoking user); printable text, no control characters")
      ->check(non_empty());
  approve_cmd
      ->add_option("--db", approve.db, "Write to this database instead of the configured one")
      ->check(non_empty());
  approve_cmd->footer(
      "The approval is recorded (action_approved, with who approved) and the daemon runs the\n"
      "actions at its next poll of the cluster, after checking again that they are still due.\n"
      "Examples:\n  tokenwarden approve 17 18 --by alice\n  tokenwarden approve --cluster prod-eu "
      "--all");

  SimulateOptions sim;
  std::string sim_format;
  auto* sim_cmd =
      app.add_subcommand("simulate", "Preview candidate policies against the recorded inventory");
  sim_cmd
      ->add_option("--policies", sim.policies_file,
                   "TOML file with [[policies]] and [[exemptions]]")
      ->required()
      ->check(non_empty());
  sim_cmd->add_option("--cluster", sim.cluster, "Only this cluster")->check(non_empty());
  sim_cmd->add_flag("--tokens", sim.tokens,
                    "One row per flagged token instead of a summary per policy");
  sim_cmd->add_option("--db", sim.db, "Read this database instead of the configured one")
      ->check(non_empty());
  add_format(sim_cmd, sim_format);
  sim_cmd->footer(
      "Evaluates the candidate policies (with the configured clusters, mode and safety limits) "
      "against\n"
      "the last recorded inventory and shows what would be flagged, restricted or revoked, when, "
      "and\n"
      "whether the safety limits would halt it. Writes nothing.\n"
      "Example:\n  tokenwarden simulate --policies /etc/tokenwarden/candidate.toml --tokens");

  VerifyOptions verify;
  std::string verify_format;
  auto* verify_cmd = app.add_subcommand("verify", "Check the audit log's hash chain");
  verify_cmd->add_option("--db", verify.db, "Verify this database (e.g. a backup copy)")
      ->check(non_empty());
  verify_cmd->add_option("--format", verify_format, "Output format: table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->default_val("table");
  verify_cmd->footer("Exit status 3 if the chain is broken; the first bad row is named.");

  BackupOptions backup;
  auto* backup_cmd =
      app.add_subcommand("backup", "Write a consistent, verified copy of the audit database");
  backup_cmd->add_option("FILE", backup.file, "The backup file to write (in an existing directory)")
      ->required()
      ->check(non_empty());
  backup_cmd->add_flag("--force", backup.force, "Replace FILE if it exists");
  backup_cmd->add_option("--db", backup.db, "Back up this database instead of the configured one")
      ->check(non_empty());
  backup_cmd->footer(
      "Safe while the daemon runs (SQLite's online backup: one consistent snapshot). The copy is\n"
      "written next to FILE with mode 0600 in rollback-journal mode (readable from read-only "
      "media),\n"
      "synced, checked (SQLite integrity check and the whole hash chain) and renamed into place; "
      "an\n"
      "existing FILE is kept unless --force. Prints the events, last seq, head hash and size.\n"
      "Exit status 2 if FILE exists, 3 if the copy's hash chain is broken (the copy is kept).\n"
      "Example:\n  tokenwarden backup /var/backups/tokenwarden/audit-$(date +%F).db");

  ReportOptions report;
  auto* report_cmd =
      app.add_subcommand("report", "Write a compliance report from the audit database");
  report_cmd
      ->add_option("--from", report.from, "Start of the period (default: 30 days before --to)")
      ->check(non_empty());
  report_cmd->add_option("--to", report.to, "End of the period (default: now)")->check(non_empty());
  report_cmd->add_option("--at", report.at, "Instant of the inventory section (default: --to)")
      ->check(non_empty());
  report_cmd
      ->add_option("--format", report.format,
                   "html, md, csv or json (default: from --output's extension, else md)")
      ->check(CLI::IsMember({"html", "md", "markdown", "csv", "json"}));
  report_cmd
      ->add_option("-o,--output", report.output,
                   "Write to this file, atomically (default or `-`: stdout)")
      ->check(non_empty());
  report_cmd->add_option("--cluster", report.cluster, "Only this cluster")->check(non_empty());
  report_cmd->add_option("--db", report.db, "Report on this database (e.g. a backup copy)")
      ->check(non_empty());
  report_cmd
      ->add_option("--limit", report.limit,
                   "HTML and Markdown: rows listed per long section; the rest is counted (0: all)")
      ->check(count("all"))
      ->default_val(5000);
  report_cmd->footer(
      "Sections: coverage (polls, gaps of more than 3 intervals), the inventory at --at with "
      "tokens\n"
      "that never expire, * grants and write grants highlighted, the token changes of the period,\n"
      "policy compliance (violations, time to remediate, actions, exemptions), charts over time, "
      "and\n"
      "the integrity of the hash chain with its head (seq, hash). Times: RFC 3339, a date, `now` "
      "or\n"
      "an age such as 7d. JSON follows docs/report-schema.json; CSV is one file of sections (each\n"
      "starts with a `section,<name>` row). On a terminal, progress goes to stderr. Examples:\n"
      "  tokenwarden report --from 2026-10-01 --to 2026-11-01 --format html -o october.html\n"
      "  tokenwarden report --db /var/backups/tokenwarden/audit.db --format json > report.json");

  DemoOptions demo;
  std::string demo_interval = "2s";
  auto* demo_cmd = app.add_subcommand("demo", "Run against a built-in simulated cluster");
  demo_cmd->add_flag("--once", demo.once, "Exit after the scripted cycles");
  demo_cmd->add_option("--cycles", demo.cycles, "Number of scripted cycles")
      ->check(CLI::Range(1, 100));
  demo_cmd->add_option("--interval", demo_interval, "Time between cycles");
  demo_cmd->add_option("--tokens", demo.tokens, "Number of seeded tokens")
      ->check(CLI::Range(1, 100000));
  demo_cmd->add_option(
      "--listen", demo.listen,
      "Serve /metrics, /healthz and /readyz here while the demo runs (\"\" disables; a busy port "
      "falls back to a free one)");
  demo_cmd->add_option("--dir", demo.dir,
                       "Keep the demo's database and config here (default: a new temp dir)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }

  g.config_given = config_opt->count() > 0 || std::getenv("TOKENWARDEN_CONFIG") != nullptr;
  if (*run) return cmd_run(g);
  if (*report_cmd) return cmd_report(g, report);
  if (*poll_cmd) {
    poll.format = fmt(poll_format);
    return cmd_poll(g, poll);
  }
  if (*check) return cmd_check_config(g, print);
  if (*tokens_cmd) {
    tokens.format = fmt(tokens_format);
    return cmd_tokens(g, tokens);
  }
  if (*hist_cmd) {
    hist.format = fmt(hist_format);
    return cmd_history(g, hist);
  }
  if (*viol_cmd) {
    viol.format = fmt(viol_format);
    return cmd_violations(g, viol);
  }
  if (*approve_cmd) return cmd_approve(g, approve);
  if (*sim_cmd) {
    sim.format = fmt(sim_format);
    return cmd_simulate(g, sim);
  }
  if (*verify_cmd) {
    verify.format = fmt(verify_format);
    return cmd_verify(g, verify);
  }
  if (*backup_cmd) return cmd_backup(g, backup);
  if (*demo_cmd) {
    auto d = parse_duration(demo_interval);
    if (!d.ok()) {
      print_error("--interval: " + d.error().message);
      return kExitUsage;
    }
    demo.interval = *d;
    return cmd_demo(g, demo);
  }
  return kExitUsage;
}

}  // namespace tw::daemon

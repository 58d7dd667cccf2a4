#include "cli/cli.h"

#include <malloc.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <vector>

#include "cli/commands.h"
#include "core/strings.h"
#include "core/version.h"
#include "daemon/config.h"

namespace tw::cli {
namespace {

constexpr const char* kDescription =
    "tokenwarden keeps InfluxDB 3 (Clustered, Cloud Dedicated) database tokens under control:\n"
    "it polls each cluster's token list, records every change in a tamper-evident SQLite audit\n"
    "history, checks policies and exports Prometheus metrics.";

constexpr const char* kFooter =
    "Exit status: 0 success, 1 runtime failure (cluster unreachable, database error),\n"
    "2 invalid arguments or configuration, 3 `verify` found the audit chain broken, a signed\n"
    "checkpoint failed or an exported copy diverged (or `backup` copied a broken chain).\n"
    "Documentation: /usr/share/doc/tokenwarden (docs/ in the source tree).";

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

// A subcommand as registered on the app: run() is called if it was the one given, with its
// options filled in by the parse.
struct Subcommand {
  CLI::App* app;
  std::function<int(const GlobalOptions&)> run;
};

// `--format table|json|csv`: the string CLI11 fills, turned into an OutputFormat when run.
struct FormatOption {
  std::string text;
  OutputFormat get() const { return parse_output_format(text).value_or(OutputFormat::kTable); }
};

void add_format(CLI::App* cmd, FormatOption& format) {
  cmd->add_option("--format", format.text, "Output format: table (people), json or csv (scripts)")
      ->check(CLI::IsMember({"table", "json", "csv"}))
      ->default_val("table");
}

// The options of one subcommand, alive as long as the app.
template <class Options>
struct Bound {
  Options options;
  FormatOption format;
};

Subcommand add_run(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("run", "Run the daemon in the foreground (for systemd or a terminal)");
  cmd->footer(
      "Polls every configured cluster on its schedule and records changes until SIGTERM or\n"
      "SIGINT. Logs go to stderr (journald). Example:\n  tokenwarden --config "
      "/etc/tokenwarden/tokenwarden.toml run");
  return {cmd, [](const GlobalOptions& g) { return cmd_run(g); }};
}

Subcommand add_poll(CLI::App& app) {
  auto b = std::make_shared<Bound<PollOptions>>();
  auto* cmd =
      app.add_subcommand("poll", "Run one full cycle for each cluster, print a summary, exit");
  cmd->add_option("--cluster", b->options.cluster, "Only this cluster")->check(non_empty());
  cmd->add_flag("--dry-run", b->options.dry_run, "Fetch and compare, but write nothing");
  add_format(cmd, b->format);
  cmd->footer(
      "Exit status 1 if any cluster could not be polled or recorded.\nExample:\n  tokenwarden poll "
      "--cluster prod-eu");
  return {cmd, [b](const GlobalOptions& g) {
            b->options.format = b->format.get();
            return cmd_poll(g, b->options);
          }};
}

Subcommand add_check_config(CLI::App& app) {
  auto print = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("check-config", "Validate the configuration and its policies");
  cmd->add_flag("--print", *print,
                "Print the effective configuration (defaults filled, secrets redacted)");
  cmd->footer(
      "Every problem is listed with its key path, e.g. `clusters[1].url: …`; exit status 2 if "
      "any.");
  return {cmd, [print](const GlobalOptions& g) { return cmd_check_config(g, *print); }};
}

Subcommand add_tokens(CLI::App& app) {
  auto b = std::make_shared<Bound<TokensOptions>>();
  auto& o = b->options;
  auto* cmd = app.add_subcommand("tokens", "List the token inventory, now or as of a past time");
  cmd->add_option("--cluster", o.cluster, "Only this cluster")->check(non_empty());
  cmd->add_option("--status", o.status, "Only tokens in this status")
      ->check(CLI::IsMember({"active", "expired", "revoked", "removed"}));
  cmd->add_option("--at", o.at,
                  "Rebuild the inventory as it was at TIME from the audit history (RFC 3339, "
                  "a date like 2026-11-01, or an age like 7d)")
      ->check(non_empty());
  cmd->add_option("--owner", o.owner, "Only tokens whose owner ([[owners]] rules) is exactly OWNER")
      ->check(non_empty());
  cmd->add_option("--team", o.team, "Only tokens whose team ([[owners]] rules) is exactly TEAM")
      ->check(non_empty());
  cmd->add_option("--db", o.db, "Read this database instead of the configured one")
      ->check(non_empty());
  add_format(cmd, b->format);
  cmd->footer(
      "The owner, team and owner_rule columns are the tokens' current owners as the daemon last\n"
      "resolved them (also with --at: ownership is not replayed). owner_rule is shown with\n"
      "--format json or csv.\n\n"
      "Examples:\n  tokenwarden tokens --status active --format csv\n  tokenwarden tokens --at "
      "2026-10-01 --cluster prod-eu\n  tokenwarden tokens --team data --status active");
  return {cmd, [b](const GlobalOptions& g) {
            b->options.format = b->format.get();
            return cmd_tokens(g, b->options);
          }};
}

Subcommand add_history(CLI::App& app) {
  auto b = std::make_shared<Bound<HistoryOptions>>();
  auto& o = b->options;
  auto* cmd = app.add_subcommand("history", "Show audit events");
  cmd->add_option("--token", o.token, "Only events about this token id")->check(non_empty());
  cmd->add_option("--cluster", o.cluster, "Only events of this cluster")->check(non_empty());
  cmd->add_option("--since", o.since,
                  "Events recorded at or after TIME (RFC 3339, date, or age like 24h)")
      ->check(non_empty());
  cmd->add_option("--until", o.until, "Events recorded at or before TIME (not before --since)")
      ->check(non_empty());
  cmd->add_option("--event", o.events,
                  "Only these events (repeatable or comma-separated), e.g. token_created")
      ->check(non_empty());
  cmd->add_option("--limit", o.limit, "Only the most recent N events (0: all)")
      ->check(count("all"));
  cmd->add_option("--db", o.db, "Read this database instead of the configured one")
      ->check(non_empty());
  add_format(cmd, b->format);
  cmd->footer(
      "Examples:\n  tokenwarden history --token 55555555-5555-4555-8555-555555555555\n  "
      "tokenwarden history --since 7d --event token_revoked,token_removed --format json");
  return {cmd, [b](const GlobalOptions& g) {
            b->options.format = b->format.get();
            return cmd_history(g, b->options);
          }};
}

Subcommand add_violations(CLI::App& app) {
  auto b = std::make_shared<Bound<ViolationsOptions>>();
  auto& o = b->options;
  auto* cmd = app.add_subcommand("violations", "List policy violations and their actions");
  cmd->add_flag("--open", o.open_only, "Only unresolved violations (any state but resolved)");
  cmd->add_option("--cluster", o.cluster, "Only this cluster")->check(non_empty());
  cmd->add_option("--policy", o.policy, "Only this policy")->check(non_empty());
  cmd->add_option("--db", o.db, "Read this database instead of the configured one")
      ->check(non_empty());
  add_format(cmd, b->format);
  cmd->footer(
      "Each violation shows its latest action (ACTION_ID, ACTION_STATE): approve the ones\n"
      "awaiting approval with `tokenwarden approve ACTION_ID`.\nExamples:\n"
      "  tokenwarden violations --open\n  tokenwarden violations --policy max-lifetime-90d "
      "--format csv");
  return {cmd, [b](const GlobalOptions& g) {
            b->options.format = b->format.get();
            return cmd_violations(g, b->options);
          }};
}

Subcommand add_approve(CLI::App& app) {
  auto o = std::make_shared<ApproveOptions>();
  auto* cmd =
      app.add_subcommand("approve", "Release actions that wait for approval or a safety halt");
  cmd->add_option("action_ids", o->action_ids, "Actions awaiting approval (see `violations`)")
      ->check(action_id());
  cmd->add_option("--cluster", o->cluster, "With --all: the cluster to release")
      ->check(non_empty());
  cmd->add_flag(
      "--all", o->all,
      "Approve every action awaiting approval on --cluster and release its halted enforcement");
  cmd->add_option(
         "--by", o->by,
         "Who approves (default: the invoking user); printable text, no control characters")
      ->check(non_empty());
  cmd->add_option("--db", o->db, "Write to this database instead of the configured one")
      ->check(non_empty());
  cmd->footer(
      "The approval is recorded (action_approved, with who approved) and the daemon runs the\n"
      "actions at its next poll of the cluster, after checking again that they are still due.\n"
      "Examples:\n  tokenwarden approve 17 18 --by alice\n  tokenwarden approve --cluster prod-eu "
      "--all");
  return {cmd, [o](const GlobalOptions& g) { return cmd_approve(g, *o); }};
}

Subcommand add_simulate(CLI::App& app) {
  auto b = std::make_shared<Bound<SimulateOptions>>();
  auto& o = b->options;
  auto* cmd =
      app.add_subcommand("simulate", "Preview candidate policies against the recorded inventory");
  cmd->add_option("--policies", o.policies_file, "TOML file with [[policies]] and [[exemptions]]")
      ->required()
      ->check(non_empty());
  cmd->add_option("--cluster", o.cluster, "Only this cluster")->check(non_empty());
  cmd->add_flag("--tokens", o.tokens, "One row per flagged token instead of a summary per policy");
  cmd->add_option("--db", o.db, "Read this database instead of the configured one")
      ->check(non_empty());
  add_format(cmd, b->format);
  cmd->footer(
      "Evaluates the candidate policies (with the configured clusters, mode and safety limits) "
      "against\n"
      "the last recorded inventory and shows what would be flagged, restricted or revoked, when, "
      "and\n"
      "whether the safety limits would halt it. Writes nothing.\n"
      "Example:\n  tokenwarden simulate --policies /etc/tokenwarden/candidate.toml --tokens");
  return {cmd, [b](const GlobalOptions& g) {
            b->options.format = b->format.get();
            return cmd_simulate(g, b->options);
          }};
}

constexpr const char* kVerifyFooter =
    "Without options: recomputes every row's hash and checks the links and the chain head. That\n"
    "finds an edited, deleted or inserted row, but not a rewrite that recomputed every later hash\n"
    "(anyone who can write the file can do that). With --public-key (repeatable: old and new keys\n"
    "after a rotation; default: [audit] public_key_file when the configuration is read) every\n"
    "checkpoint_signed row must carry a valid Ed25519 signature by one of the keys over the head\n"
    "right before it: a recomputed chain no longer matches what was signed. It prints up to which\n"
    "seq the history is proven (the head signed by the last valid checkpoint) and how many events\n"
    "follow it unsigned. A database with events but no checkpoint is not proven (exit 3).\n"
    "With --export FILE it checks an exported copy (JSON lines, e.g. the file sink's or a syslog\n"
    "collector's file): seq order, every hash recomputed, the links (the copy may start "
    "mid-chain:\n"
    "its first prev_hash is the anchor), gaps; identical repeats of a seq are counted (delivery "
    "is\n"
    "at least once), different ones are errors; with --public-key its checkpoints too. Then it\n"
    "compares the copy with the database (--db, else the configured one; --export-only skips it):\n"
    "every seq of the copy must be in the database with the same hash, else the first divergent\n"
    "seq is named (the database was rewritten after the event left the host). Progress on a\n"
    "terminal goes to stderr.\n"
    "Exit status: 0 intact (and proven, with keys), 1 the database cannot be read, 2 bad "
    "arguments\n"
    "(a key or export that cannot be read), 3 broken chain, failed or missing checkpoint,\n"
    "broken copy or divergence; the first problem is named.\n"
    "Examples:\n"
    "  tokenwarden verify --public-key /etc/tokenwarden/checkpoint.pub\n"
    "  tokenwarden verify --db audit-backup.db --public-key old.pub --public-key new.pub\n"
    "  tokenwarden verify --export /var/log/remote/tokenwarden.jsonl --public-key checkpoint.pub";

Subcommand add_verify(CLI::App& app) {
  auto b = std::make_shared<Bound<VerifyOptions>>();
  auto& o = b->options;
  auto* cmd = app.add_subcommand(
      "verify", "Check the audit log's hash chain, its signed checkpoints or an exported copy");
  cmd->add_option("--db", o.db, "Verify this database (e.g. a backup copy)")->check(non_empty());
  cmd->add_option("--public-key", o.public_keys,
                  "Check the signed checkpoints with this Ed25519 public key (PEM; repeatable)")
      ->check(non_empty());
  auto* export_opt =
      cmd->add_option("--export", o.export_file,
                      "Check this exported copy (JSON lines) and compare it with the database")
          ->check(non_empty());
  cmd->add_flag("--export-only", o.export_only, "With --export: check the copy alone")
      ->needs(export_opt);
  cmd->add_option("--format", b->format.text, "Output format: table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->default_val("table");
  cmd->footer(kVerifyFooter);
  return {cmd, [b](const GlobalOptions& g) {
            b->options.format = b->format.get();
            return cmd_verify(g, b->options);
          }};
}

constexpr const char* kKeygenFooter =
    "Writes a new Ed25519 key pair for signed checkpoints into DIR (created with mode 0700 if\n"
    "missing): checkpoint.key, the private key (PKCS#8 PEM), created with mode 0600 so that it is\n"
    "never readable by others, not even briefly; and checkpoint.pub, the public key (PEM, 0644).\n"
    "Existing files are kept unless --force (which replaces each file atomically). Prints the key "
    "id\n"
    "(the first 16 hex digits of SHA-256 over the raw public key; checkpoints name it) and the\n"
    "next steps: the systemd credential "
    "(LoadCredential=checkpoint.key:/etc/tokenwarden/credentials/checkpoint.key),\n"
    "the [audit] lines, and copying the public key off the host. The same files can be made with\n"
    "`openssl genpkey -algorithm ed25519` and `openssl pkey -pubout`.\n"
    "Exit status: 0 written, 1 a file could not be written, 2 a file exists (without --force).\n"
    "Example:\n  tokenwarden keygen --out /root/tokenwarden-keys";

Subcommand add_keygen(CLI::App& app) {
  auto o = std::make_shared<KeygenOptions>();
  auto* cmd = app.add_subcommand("keygen", "Write an Ed25519 key pair for signed checkpoints");
  cmd->add_option("--out", o->out, "Directory for checkpoint.key and checkpoint.pub")
      ->required()
      ->check(non_empty());
  cmd->add_flag("--force", o->force, "Replace an existing key pair");
  cmd->footer(kKeygenFooter);
  return {cmd, [o](const GlobalOptions& g) { return cmd_keygen(g, *o); }};
}

Subcommand add_backup(CLI::App& app) {
  auto o = std::make_shared<BackupOptions>();
  auto* cmd =
      app.add_subcommand("backup", "Write a consistent, verified copy of the audit database");
  cmd->add_option("FILE", o->file, "The backup file to write (in an existing directory)")
      ->required()
      ->check(non_empty());
  cmd->add_flag("--force", o->force, "Replace FILE if it exists");
  cmd->add_option("--db", o->db, "Back up this database instead of the configured one")
      ->check(non_empty());
  cmd->footer(
      "Safe while the daemon runs (SQLite's online backup: one consistent snapshot). The copy is\n"
      "written next to FILE with mode 0600 in rollback-journal mode (readable from read-only "
      "media),\n"
      "synced, checked (SQLite integrity check and the whole hash chain) and renamed into place; "
      "an\n"
      "existing FILE is kept unless --force. Prints the events, last seq, head hash and size.\n"
      "Exit status 2 if FILE exists, 3 if the copy's hash chain is broken (the copy is kept).\n"
      "Example:\n  tokenwarden backup /var/backups/tokenwarden/audit-$(date +%F).db");
  return {cmd, [o](const GlobalOptions& g) { return cmd_backup(g, *o); }};
}

constexpr const char* kReportFooter =
    "Sections: coverage (polls, gaps of more than 3 intervals), the inventory at --at with "
    "tokens\n"
    "that never expire, * grants and write grants highlighted, the token changes of the period,\n"
    "policy compliance (violations, time to remediate, actions, exemptions), owners (per team\n"
    "and owner, with a chart of open violations per team), charts over time, and\n"
    "the integrity of the hash chain with its head (seq, hash) and the last signed checkpoint\n"
    "(checked with --public-key or [audit] public_key_file). Times: RFC 3339, a date, `now` "
    "or\n"
    "an age such as 7d. JSON follows docs/report-schema.json; CSV is one file of sections (each\n"
    "starts with a `section,<name>` row). On a terminal, progress goes to stderr. Examples:\n"
    "  tokenwarden report --from 2026-10-01 --to 2026-11-01 --format html -o october.html\n"
    "  tokenwarden report --db /var/backups/tokenwarden/audit.db --format json > report.json\n"
    "  tokenwarden report --team data --format html -o data-team.html";

Subcommand add_report(CLI::App& app) {
  auto o = std::make_shared<ReportOptions>();
  auto* cmd = app.add_subcommand("report", "Write a compliance report from the audit database");
  cmd->add_option("--from", o->from, "Start of the period (default: 30 days before --to)")
      ->check(non_empty());
  cmd->add_option("--to", o->to, "End of the period (default: now)")->check(non_empty());
  cmd->add_option("--at", o->at, "Instant of the inventory section (default: --to)")
      ->check(non_empty());
  cmd->add_option("--format", o->format,
                  "html, md, csv or json (default: from --output's extension, else md)")
      ->check(CLI::IsMember({"html", "md", "markdown", "csv", "json"}));
  cmd->add_option("-o,--output", o->output,
                  "Write to this file, atomically (default or `-`: stdout)")
      ->check(non_empty());
  cmd->add_option("--cluster", o->cluster, "Only this cluster")->check(non_empty());
  cmd->add_option("--team", o->team,
                  "Only the tokens of this team (their current recorded owner; exact match)")
      ->check(non_empty());
  cmd->add_option("--owner", o->owner,
                  "Only the tokens of this owner (exact match; with --team: both must hold)")
      ->check(non_empty());
  cmd->add_option("--db", o->db, "Report on this database (e.g. a backup copy)")
      ->check(non_empty());
  cmd->add_option("--limit", o->limit,
                  "HTML and Markdown: rows listed per long section; the rest is counted (0: all)")
      ->check(count("all"))
      ->default_val(5000);
  cmd->add_option("--public-key", o->public_keys,
                  "Check the last signed checkpoint with this public key (repeatable; default: "
                  "[audit] public_key_file)")
      ->check(non_empty());
  cmd->footer(kReportFooter);
  return {cmd, [o](const GlobalOptions& g) { return cmd_report(g, *o); }};
}

Subcommand add_demo(CLI::App& app) {
  auto o = std::make_shared<DemoOptions>();
  auto interval = std::make_shared<std::string>("2s");
  auto* cmd = app.add_subcommand("demo", "Run against a built-in simulated cluster");
  cmd->add_flag("--once", o->once, "Exit after the scripted cycles");
  cmd->add_option("--cycles", o->cycles, "Number of scripted cycles")->check(CLI::Range(1, 100));
  cmd->add_option("--interval", *interval, "Time between cycles");
  cmd->add_option("--tokens", o->tokens, "Number of seeded tokens")->check(CLI::Range(1, 100000));
  cmd->add_option(
      "--listen", o->listen,
      "Serve /metrics, /healthz and /readyz here while the demo runs (\"\" disables; a busy port "
      "falls back to a free one)");
  cmd->add_option("--dir", o->dir,
                  "Keep the demo's database and config here (default: a new temp dir)");
  return {cmd, [o, interval](const GlobalOptions& g) {
            auto d = parse_duration(*interval);
            if (!d.ok()) {
              print_error("--interval: " + d.error().message);
              return kExitUsage;
            }
            o->interval = *d;
            return cmd_demo(g, *o);
          }};
}

// The app with its global options (--config, --version), help texts and subcommands, in the
// order `--help` lists them.
std::vector<Subcommand> build_app(CLI::App& app, GlobalOptions& g, CLI::Option*& config_opt) {
  app.footer(kFooter);
  app.set_version_flag("--version", std::string("tokenwarden ") + kVersion);
  app.require_subcommand(1, 1);
  app.fallthrough();
  g.config_path = daemon::kDefaultConfigPath;
  config_opt = app.add_option("-c,--config", g.config_path, "Configuration file")
                   ->default_val(daemon::kDefaultConfigPath)
                   ->envname("TOKENWARDEN_CONFIG");
  return {add_run(app),     add_poll(app),       add_check_config(app), add_tokens(app),
          add_history(app), add_violations(app), add_approve(app),      add_simulate(app),
          add_verify(app),  add_keygen(app),     add_backup(app),       add_report(app),
          add_demo(app)};
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
  GlobalOptions g;
  CLI::Option* config_opt = nullptr;
  const std::vector<Subcommand> subcommands = build_app(app, g, config_opt);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  g.config_given = config_opt->count() > 0 || std::getenv("TOKENWARDEN_CONFIG") != nullptr;
  for (const auto& sub : subcommands) {
    if (*sub.app) return sub.run(g);
  }
  return kExitUsage;
}

}  // namespace tw::cli

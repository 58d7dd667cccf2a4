#pragma once
// The subcommands of `tokenwarden` (SPEC §4), one function each, returning the exit code:
// 0 success, 1 runtime failure (cluster unreachable, database error), 2 invalid arguments or
// configuration, 3 `verify` found the chain broken. Errors go to stderr as one sentence.
//
// Thread safety: called once from main.

#include <optional>
#include <string>
#include <vector>

#include "cli/output.h"
#include "core/time.h"

namespace tw::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitChainBroken = 3;

struct GlobalOptions {
  std::string config_path;
  bool config_given = false;  // --config on the command line (not the default path)
};

struct PollOptions {
  std::string cluster;
  bool dry_run = false;
  OutputFormat format = OutputFormat::kTable;
};

struct TokensOptions {
  std::string db;
  std::string cluster;
  std::string status;
  std::string at;
  std::string owner;
  std::string team;
  OutputFormat format = OutputFormat::kTable;
};

struct HistoryOptions {
  std::string db;
  std::string token;
  std::string cluster;
  std::string since;
  std::string until;
  std::vector<std::string> events;
  long long limit = 0;
  OutputFormat format = OutputFormat::kTable;
};

struct VerifyOptions {
  std::string db;
  std::vector<std::string> public_keys;  // --public-key (repeatable)
  std::string export_file;               // --export: check this exported copy
  bool export_only = false;              // --export-only: without the database
  OutputFormat format = OutputFormat::kTable;
};

struct KeygenOptions {
  std::string out;     // the directory of checkpoint.key and checkpoint.pub
  bool force = false;  // replace an existing pair
};

struct BackupOptions {
  std::string db;
  std::string file;    // the backup to write
  bool force = false;  // replace `file` if it exists
};

struct ViolationsOptions {
  std::string db;
  bool open_only = false;
  std::string cluster;
  std::string policy;
  OutputFormat format = OutputFormat::kTable;
};

struct ApproveOptions {
  std::string db;
  std::vector<long long> action_ids;
  std::string cluster;
  bool all = false;
  std::string by;  // empty: the invoking user
};

struct SimulateOptions {
  std::string policies_file;
  std::string db;
  std::string cluster;
  bool tokens = false;  // one row per flagged token instead of a summary per policy
  OutputFormat format = OutputFormat::kTable;
};

struct DemoOptions {
  bool once = false;
  int cycles = 4;
  std::string dir;  // where the demo keeps its database and config; empty: a temp dir
  Duration interval = std::chrono::seconds(2);
  int tokens = 40;
  std::string listen =
      "127.0.0.1:9464";  // the demo daemon's /metrics; a busy port falls back to any free one
};

struct ReportOptions {
  std::string db;
  std::string from;    // default: 30 days before --to
  std::string to;      // default: now
  std::string at;      // inventory instant; default: --to
  std::string format;  // html, md, csv, json; default: from --output's extension, else md
  std::string output;  // default: stdout
  std::string cluster;
  std::string team;                      // only the tokens of this team (current recorded owner)
  std::string owner;                     // only the tokens of this owner
  std::size_t limit = 5000;              // html/md: rows listed per long section (0: all)
  std::vector<std::string> public_keys;  // check the last checkpoint (--public-key)
};

int cmd_run(const GlobalOptions& g);
int cmd_report(const GlobalOptions& g, const ReportOptions& o);
int cmd_poll(const GlobalOptions& g, const PollOptions& o);
int cmd_check_config(const GlobalOptions& g, bool print);
int cmd_tokens(const GlobalOptions& g, const TokensOptions& o);
int cmd_history(const GlobalOptions& g, const HistoryOptions& o);
int cmd_verify(const GlobalOptions& g, const VerifyOptions& o);
int cmd_keygen(const GlobalOptions& g, const KeygenOptions& o);
int cmd_backup(const GlobalOptions& g, const BackupOptions& o);
int cmd_violations(const GlobalOptions& g, const ViolationsOptions& o);
int cmd_approve(const GlobalOptions& g, const ApproveOptions& o);
int cmd_simulate(const GlobalOptions& g, const SimulateOptions& o);
int cmd_demo(const GlobalOptions& g, const DemoOptions& o);

// Prints "tokenwarden: error: <message>" to stderr.
void print_error(const std::string& message);

// The database a command reads: `db` (--db) if given, else the configuration's; nullopt once
// the configuration's problems are printed (exit status 2).
std::optional<std::string> database_path(const GlobalOptions& g, const std::string& db);

}  // namespace tw::cli

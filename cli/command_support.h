#pragma once
// What every command of `tokenwarden` shares (one copy, commands*.cpp and demo.cpp use it): the
// environment, loading the configuration with its problems printed, opening the audit database,
// time arguments, output to stdout and cells of the output tables.
//
// Thread safety: called from the command's thread only. Errors: each function that can fail
// prints one "tokenwarden: error: …" line and returns nullopt or null; the command then exits
// with kExitUsage (arguments, configuration) or kExitFailure (database).

#include <memory>
#include <optional>
#include <string>

#include "cli/commands.h"
#include "cli/output.h"
#include "core/time.h"
#include "daemon/config.h"
#include "storage/audit_store.h"

namespace tw::cli {

// The variable's value, or "" if it is unset.
std::string env(const char* name);

// Writes `s` to stdout as it is (no formatting, embedded NULs kept).
void write_stdout(const std::string& s);

// Loads --config; prints each error (and each warning unless `quiet_warnings`) and, on failure,
// "N problem(s) in PATH".
std::optional<daemon::Config> load_config(const GlobalOptions& g, bool quiet_warnings = false);

// Opens the audit database; null after printing why it cannot be opened.
std::unique_ptr<storage::AuditStore> open_store(const std::string& path,
                                                storage::AuditStore::Mode mode);

// A time argument (RFC 3339, a date, `now` or an age such as 7d) of option `name`; nullopt after
// printing "NAME: why" if it does not parse.
std::optional<Timestamp> time_option(const std::string& text, const char* name, Timestamp now);

// An optional instant as a table cell: the RFC 3339 text, or null.
Cell time_cell(const std::optional<Timestamp>& t);

}  // namespace tw::cli

#include "cli/command_support.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

namespace tw::cli {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

void write_stdout(const std::string& s) { std::fwrite(s.data(), 1, s.size(), stdout); }

void print_error(const std::string& message) {
  std::fprintf(stderr, "tokenwarden: error: %s\n", message.c_str());
}

std::optional<daemon::Config> load_config(const GlobalOptions& g, bool quiet_warnings) {
  auto load = daemon::load_config_file(g.config_path, SystemClock().now());
  for (const auto& e : load.errors) print_error(e);
  if (!quiet_warnings) {
    for (const auto& w : load.warnings)
      std::fprintf(stderr, "tokenwarden: warning: %s\n", w.c_str());
  }
  if (!load.config) {
    std::fprintf(stderr, "tokenwarden: %zu problem(s) in %s\n", load.errors.size(),
                 g.config_path.c_str());
  }
  return std::move(load.config);
}

std::optional<std::string> database_path(const GlobalOptions& g, const std::string& db) {
  if (!db.empty()) return db;
  auto config = load_config(g, true);
  if (!config) return std::nullopt;
  return config->daemon.database;
}

std::unique_ptr<storage::AuditStore> open_store(const std::string& path,
                                                storage::AuditStore::Mode mode) {
  auto store = storage::AuditStore::open(path, mode);
  if (!store.ok()) {
    print_error(store.error().message);
    return nullptr;
  }
  return std::move(*store);
}

std::optional<Timestamp> time_option(const std::string& text, const char* name, Timestamp now) {
  auto t = parse_time_arg(text, now);
  if (!t.ok()) {
    print_error(std::string(name) + ": " + t.error().message);
    return std::nullopt;
  }
  return *t;
}

Cell time_cell(const std::optional<Timestamp>& t) {
  return t ? Cell::str(format_timestamp(*t)) : Cell::null();
}

}  // namespace tw::cli

// `tokenwarden report` (SPEC §4): a compliance report from the audit database.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/commands.h"
#include "core/strings.h"
#include "core/version.h"
#include "daemon/config.h"
#include "report/report.h"
#include "storage/audit_store.h"
#include "storage/read_txn.h"

namespace tw::cli {
namespace {

std::string extension_format(const std::string& path) {
  auto dot = path.rfind('.');
  if (dot == std::string::npos) return {};
  std::string ext = to_lower(path.substr(dot + 1));
  if (ext == "html" || ext == "htm") return "html";
  if (ext == "md" || ext == "markdown") return "md";
  if (ext == "csv" || ext == "json") return ext;
  return {};
}

// Writes to a temporary file next to the target and renames it into place on success, so a
// failed report (full disk, broken database) never leaves a partial file behind.
class AtomicOutput {
 public:
  explicit AtomicOutput(std::string path) : path_(std::move(path)) {}
  ~AtomicOutput() {
    if (fd_ >= 0) ::close(fd_);
    if (!tmp_.empty() && !committed_) ::unlink(tmp_.c_str());
  }
  Status open() {
    tmp_ = path_ + ".tmp-XXXXXX";
    fd_ = ::mkstemp(tmp_.data());
    if (fd_ < 0) {
      std::string why = std::strerror(errno);
      tmp_.clear();
      return make_error(ErrorCode::kIo, "cannot create " + path_ + ": " + why);
    }
    ::fchmod(fd_, 0644);
    return ok_status();
  }
  void write(std::string_view chunk) {
    while (error_.empty() && !chunk.empty()) {
      ssize_t n = ::write(fd_, chunk.data(), chunk.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        error_ = std::strerror(errno);
        return;
      }
      chunk.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  Status commit() {
    if (error_.empty() && ::fsync(fd_) != 0) error_ = std::strerror(errno);
    if (error_.empty() && ::close(fd_) != 0) error_ = std::strerror(errno);
    fd_ = -1;
    if (!error_.empty()) return make_error(ErrorCode::kIo, "cannot write " + path_ + ": " + error_);
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
      return make_error(ErrorCode::kIo,
                        "cannot rename the report into " + path_ + ": " + std::strerror(errno));
    }
    committed_ = true;
    return ok_status();
  }

 private:
  std::string path_;
  std::string tmp_;
  int fd_ = -1;
  bool committed_ = false;
  std::string error_;
};

// The period (--from, --to; the 30 days up to now by default) and the inventory's instant
// (--at; the end of the period), with the options copied into a request. A usage error is
// printed and gives nullopt.
std::optional<report::Request> request_of(const ReportOptions& o, Timestamp now) {
  report::Request req;
  req.generated_at = now;
  req.version = kVersion;
  req.cluster = o.cluster;
  req.team = o.team;
  req.owner = o.owner;
  req.list_limit = o.limit == 0 ? static_cast<std::size_t>(-1) : o.limit;
  auto time_arg = [&](const std::string& text, const char* name,
                      Timestamp fallback) -> std::optional<Timestamp> {
    if (text.empty()) return fallback;
    auto t = parse_time_arg(text, now);
    if (!t.ok()) {
      print_error(std::string(name) + ": " + t.error().message);
      return std::nullopt;
    }
    return *t;
  };
  auto to = time_arg(o.to, "--to", now);
  if (!to) return std::nullopt;
  auto from = time_arg(o.from, "--from", *to - std::chrono::hours(24 * 30));
  if (!from) return std::nullopt;
  auto at = time_arg(o.at, "--at", *to);
  if (!at) return std::nullopt;
  if (*to < *from) {
    print_error("--to " + format_timestamp(*to) + " is before --from " + format_timestamp(*from));
    return std::nullopt;
  }
  req.from = *from;
  req.to = *to;
  req.at = *at;
  return req;
}

// Where the report goes and in which format: --format, else the output file's extension,
// else Markdown.
struct Destination {
  bool to_stdout = true;
  std::string format_name;
  report::Format format = report::Format::kMarkdown;
};

std::optional<Destination> destination_of(const ReportOptions& o) {
  Destination dest;
  dest.to_stdout = o.output.empty() || o.output == "-";
  dest.format_name =
      o.format.empty() ? (dest.to_stdout ? std::string() : extension_format(o.output)) : o.format;
  if (dest.format_name.empty()) dest.format_name = "md";
  auto format = report::parse_format(dest.format_name);
  if (!format) {
    print_error("--format must be html, md, csv or json");
    return std::nullopt;
  }
  dest.format = *format;
  return dest;
}

// The keys that check the last signed checkpoint; false once a key's error is printed.
bool load_public_keys(const std::vector<std::string>& files, report::Context& ctx) {
  for (const auto& f : files) {
    auto key = ed25519::PublicKey::load(f);
    if (!key.ok()) {
      print_error("public key: " + key.error().message);
      return false;
    }
    ctx.public_keys.push_back(std::move(*key));
  }
  return true;
}

// The configuration adds intervals, policy settings, scopes and exemptions. With --db it is
// used only if --config is given too (a backup may come from another installation). Returns
// the database's path, or nullopt once the configuration's errors are printed.
std::optional<std::string> load_context(const GlobalOptions& g, const ReportOptions& o,
                                        Timestamp now, report::Context& ctx) {
  std::string db_path = o.db;
  if (o.db.empty() || g.config_given) {
    auto load = daemon::load_config_file(g.config_path, now);
    if (!load.config) {
      if (o.db.empty()) {
        for (const auto& e : load.errors) print_error(e);
        return std::nullopt;
      }
    } else {
      const daemon::Config& c = *load.config;
      ctx.from_config = true;
      ctx.config_path = g.config_path;
      for (const auto& cl : c.clusters) ctx.clusters[cl.name] = {cl.poll_interval, cl.labels};
      ctx.policies = c.policies;
      ctx.exemptions = c.exemptions;
      if (db_path.empty()) db_path = c.daemon.database;
      if (o.public_keys.empty() && !c.audit.public_key_file.empty()) {
        if (!load_public_keys({c.audit.public_key_file}, ctx)) return std::nullopt;
      }
    }
  }
  if (!o.public_keys.empty() && !load_public_keys(o.public_keys, ctx)) return std::nullopt;
  return db_path;
}

// Database errors name the file (SQLite's own messages do not).
std::string db_message(const std::string& db_path, const std::string& message) {
  if (message.find(db_path) != std::string::npos) return message;
  return "cannot read the audit database \"" + printable(db_path, 200) + "\": " + message;
}

// One line on the terminal, rewritten stage by stage.
report::Progress terminal_progress() {
  return [](std::string_view stage, std::int64_t done, std::int64_t total) {
    if (total > 0) {
      std::fprintf(stderr, "\r\033[Kreport: %.*s %lld/%lld", static_cast<int>(stage.size()),
                   stage.data(), static_cast<long long>(done), static_cast<long long>(total));
    } else {
      std::fprintf(stderr, "\r\033[Kreport: %.*s…", static_cast<int>(stage.size()), stage.data());
    }
    std::fflush(stderr);
  };
}

// Renders the report to stdout or, through AtomicOutput, to the file `output`.
Status write_to(const Destination& dest, const std::string& output, storage::ReadTxn& txn,
                const report::ReportData& data) {
  Status written;
  if (dest.to_stdout) {
    std::string error;
    written = report::write_report(txn, data, dest.format, [&](std::string_view chunk) {
      if (error.empty() && std::fwrite(chunk.data(), 1, chunk.size(), stdout) != chunk.size()) {
        error = std::strerror(errno);
      }
    });
    if (written.ok() && std::fflush(stdout) != 0) error = std::strerror(errno);
    if (written.ok() && !error.empty())
      written = make_error(ErrorCode::kIo, "cannot write the report: " + error);
  } else {
    AtomicOutput out(output);
    written = out.open();
    if (written.ok()) {
      written = report::write_report(txn, data, dest.format,
                                     [&](std::string_view chunk) { out.write(chunk); });
    }
    if (written.ok()) written = out.commit();
  }
  return written;
}

void warn_if_chain_broken(storage::ReadTxn& txn, const report::ReportData& data) {
  if (auto chain = report::integrity_of(txn, data); chain.ok() && !chain->ok) {
    std::fprintf(
        stderr,
        "warning: the audit hash chain is broken%s; the report's integrity section says so\n",
        chain->first_bad_seq > 0
            ? (" (first bad row: seq " + std::to_string(chain->first_bad_seq) + ")").c_str()
            : "");
  }
}

}  // namespace

int cmd_report(const GlobalOptions& g, const ReportOptions& o) {
  const Timestamp now = SystemClock().now();
  auto req = request_of(o, now);
  if (!req) return kExitUsage;
  auto dest = destination_of(o);
  if (!dest) return kExitUsage;
  report::Context ctx;
  auto db_path = load_context(g, o, now, ctx);
  if (!db_path) return kExitUsage;
  req->database = *db_path;
  auto store = storage::AuditStore::open(*db_path, storage::AuditStore::Mode::kReadOnly);
  if (!store.ok()) {
    print_error(db_message(*db_path, store.error().message));
    return kExitFailure;
  }
  // One read transaction: every section sees the same snapshot while the daemon keeps writing.
  auto txn = storage::ReadTxn::begin((*store)->db());
  if (!txn.ok()) {
    print_error(db_message(*db_path, txn.error().message));
    return kExitFailure;
  }
  const bool tty = ::isatty(2) != 0;
  const report::Progress progress = tty ? terminal_progress() : report::Progress();
  // JSON and CSV write the integrity section last: the chain check overlaps their rendering.
  req->integrity_in_background =
      dest->format == report::Format::kJson || dest->format == report::Format::kCsv;
  auto data = report::collect(*txn, *req, ctx, progress);
  if (!data.ok()) {
    if (tty) std::fprintf(stderr, "\r\033[K");
    if (data.error().code == ErrorCode::kInvalidArgument) {
      print_error(data.error().message);
      return kExitUsage;
    }
    print_error(db_message(*db_path, data.error().message));
    return kExitFailure;
  }
  if (progress) progress("writing " + dest->format_name, 0, 0);
  Status written = write_to(*dest, o.output, *txn, *data);
  (void)txn->end();
  if (tty) std::fprintf(stderr, "\r\033[K");
  if (!written.ok()) {
    print_error(written.error().code == ErrorCode::kDatabase
                    ? db_message(*db_path, written.error().message)
                    : written.error().message);
    return kExitFailure;
  }
  warn_if_chain_broken(*txn, *data);
  if (!dest->to_stdout && tty) std::fprintf(stderr, "report: wrote %s\n", o.output.c_str());
  return kExitOk;
}

}  // namespace tw::cli

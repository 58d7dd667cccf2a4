// `tokenwarden keygen` and `tokenwarden verify` (the hash chain, signed checkpoints, exported
// copies): docs/commands.md, docs/database.md "Signed checkpoints".
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "cli/command_support.h"
#include "cli/commands.h"
#include "core/ed25519.h"
#include "core/json_writer.h"
#include "core/strings.h"
#include "storage/chain.h"
#include "storage/checkpoints.h"
#include "storage/export_verify.h"

namespace tw::cli {
namespace {

void verify_progress(std::int64_t rows, void* what) {
  std::fprintf(stderr, "\rverifying: %lld %s checked", static_cast<long long>(rows),
               static_cast<const char*>(what));
  std::fflush(stderr);
}

std::string shown(const std::string& path) { return printable(path, 200); }

// Writes `text` to a new file `path` with `mode` from its creation on (O_EXCL; a temporary name
// renamed over `path` when `replace`), synced. One sentence on failure.
std::optional<std::string> write_new_file(const std::string& path, const std::string& text,
                                          mode_t mode, bool replace) {
  const std::string target = replace ? path + ".tmp" : path;
  if (replace) ::unlink(target.c_str());
  int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return "cannot create " + shown(target) + ": " + std::strerror(errno);
  bool ok = ::fchmod(fd, mode) == 0 &&
            ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  int err = errno;
  ok = ::close(fd) == 0 && ok;
  if (ok && replace && ::rename(target.c_str(), path.c_str()) != 0) {
    err = errno;
    ok = false;
  }
  if (!ok) {
    ::unlink(target.c_str());
    return "cannot write " + shown(path) + ": " + std::strerror(err);
  }
  return std::nullopt;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

void print_next_steps(const std::string& key, const std::string& pub, const std::string& id) {
  std::printf(
      "wrote %s (private key, mode 0600) and %s (public key)\n"
      "key id: %s\n\n"
      "Next steps:\n"
      "  1. Give the private key to the daemon only, as a systemd credential:\n"
      "       install -D -m 0600 %s /etc/tokenwarden/credentials/checkpoint.key\n"
      "     and in the unit (systemctl edit tokenwarden):\n"
      "       [Service]\n"
      "       LoadCredential=checkpoint.key:/etc/tokenwarden/credentials/checkpoint.key\n"
      "  2. In /etc/tokenwarden/tokenwarden.toml:\n"
      "       [audit]\n"
      "       signing_key_file = \"checkpoint.key\"\n"
      "       public_key_file = \"/etc/tokenwarden/checkpoint.pub\"\n"
      "  3. Copy %s off this host (an auditor's machine, a vault): it proves the history.\n"
      "  4. Check it: tokenwarden check-config; later tokenwarden verify --public-key %s\n",
      shown(key).c_str(), shown(pub).c_str(), id.c_str(), shown(key).c_str(), shown(pub).c_str(),
      shown(pub).c_str());
}

}  // namespace

int cmd_keygen(const GlobalOptions&, const KeygenOptions& o) {
  if (::mkdir(o.out.c_str(), 0700) != 0 && errno != EEXIST) {
    print_error("cannot create the directory " + shown(o.out) + ": " + std::strerror(errno));
    return kExitFailure;
  }
  const std::string key_path = o.out + "/checkpoint.key";
  const std::string pub_path = o.out + "/checkpoint.pub";
  for (const auto& p : {key_path, pub_path}) {
    if (!o.force && exists(p)) {
      print_error(shown(p) +
                  " exists; --force replaces the key pair (keep the old public key to verify the "
                  "checkpoints it signed)");
      return kExitUsage;
    }
  }
  auto key = ed25519::PrivateKey::generate();
  if (!key.ok()) {
    print_error(key.error().message);
    return kExitFailure;
  }
  if (auto err = write_new_file(key_path, key->pem(), 0600, o.force)) {
    print_error(*err);
    return kExitFailure;
  }
  if (auto err = write_new_file(pub_path, key->public_key().pem(), 0644, o.force)) {
    print_error(*err);
    return kExitFailure;
  }
  print_next_steps(key_path, pub_path, key->key_id());
  return kExitOk;
}

namespace {

// The public keys of --public-key, else the configuration's [audit] public_key_file.
std::optional<std::vector<ed25519::PublicKey>> load_keys(const std::vector<std::string>& files) {
  std::vector<ed25519::PublicKey> keys;
  for (const auto& f : files) {
    auto k = ed25519::PublicKey::load(f);
    if (!k.ok()) {
      print_error("--public-key: " + k.error().message);
      return std::nullopt;
    }
    keys.push_back(std::move(*k));
  }
  return keys;
}

void checkpoint_json(JsonWriter& w, const storage::CheckpointReport& c) {
  w.key("checkpoints");
  w.begin_object()
      .field("ok", c.ok())
      .field("count", c.checkpoints)
      .field("proven_seq", c.proven_seq)
      .field("checkpoint_seq", c.last_valid_seq)
      .field("key_id", c.last_key_id)
      .field("signed_at", c.last_signed_at)
      .field("unsigned_tail", c.unsigned_tail);
  if (!c.ok()) w.field("bad_seq", c.bad_seq).field("problem", c.problem);
  w.end_object();
}

// "" when the checkpoints prove the history; else why not (exit 3).
std::string checkpoint_problem(const storage::CheckpointReport& c, std::int64_t rows) {
  if (!c.ok()) return c.problem;
  if (rows > 0 && c.proven_seq == 0) return "no signed checkpoint: nothing is proven";
  return {};
}

void print_checkpoints(const storage::CheckpointReport& c) {
  if (c.proven_seq == 0) return;
  std::printf(
      "signed checkpoints: %lld; history proven up to seq %lld (checkpoint seq %lld, signed %s "
      "with key %s); %lld events after it are not signed yet\n",
      static_cast<long long>(c.checkpoints), static_cast<long long>(c.proven_seq),
      static_cast<long long>(c.last_valid_seq), printable(c.last_signed_at, 40).c_str(),
      printable(c.last_key_id, 20).c_str(), static_cast<long long>(c.unsigned_tail));
}

}  // namespace

namespace {

int verify_database(const std::string& path, const VerifyOptions& o,
                    const std::vector<ed25519::PublicKey>& keys) {
  auto store = open_store(path, storage::AuditStore::Mode::kReadOnly);
  if (!store) return kExitFailure;
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  std::optional<storage::CheckpointVerifier> verifier;
  if (!keys.empty()) verifier.emplace(keys);
  auto rep = storage::verify_chain(store->db(), tty ? verify_progress : nullptr,
                                   const_cast<char*>("rows"), verifier ? &*verifier : nullptr);
  if (tty) std::fprintf(stderr, "\r\033[K");
  if (!rep.ok()) {
    print_error(rep.error().message);
    return kExitFailure;
  }
  std::optional<storage::CheckpointReport> cps;
  if (verifier) cps = verifier->report();
  const std::string cp_problem = cps ? checkpoint_problem(*cps, rep->rows) : std::string();
  if (o.format == OutputFormat::kJson) {
    std::string out;
    JsonWriter w(out);
    w.begin_object()
        .field("database", path)
        .field("ok", rep->ok && cp_problem.empty())
        .field("rows", rep->rows)
        .field("head_seq", rep->head_seq)
        .field("head_hash", rep->head_hash);
    if (!rep->ok) w.field("bad_seq", rep->bad_seq).field("problem", rep->problem);
    if (cps) checkpoint_json(w, *cps);
    w.field("append_only_triggers", rep->append_only_triggers).end_object();
    write_stdout(out + "\n");
  } else if (rep->ok) {
    std::printf("%s: audit log intact: %lld rows, head seq %lld, hash %s\n", path.c_str(),
                static_cast<long long>(rep->rows), static_cast<long long>(rep->head_seq),
                rep->head_hash.empty() ? "-" : rep->head_hash.c_str());
    if (cps) print_checkpoints(*cps);
  }
  if (!rep->append_only_triggers) {
    std::fprintf(stderr,
                 "tokenwarden: warning: the append-only triggers of audit_log were removed\n");
  }
  if (!rep->ok) {
    std::fprintf(stderr, "tokenwarden: %s: audit log is BROKEN: %s\n", path.c_str(),
                 rep->problem.c_str());
    return kExitChainBroken;
  }
  if (!cp_problem.empty()) {
    std::fprintf(stderr, "tokenwarden: %s: history NOT proven: %s\n", path.c_str(),
                 cp_problem.c_str());
    return kExitChainBroken;
  }
  return kExitOk;
}

void export_json(const std::string& file, const std::string& db,
                 const storage::ExportVerifyReport& r, const std::string& problem) {
  std::string out;
  JsonWriter w(out);
  w.begin_object()
      .field("export", file)
      .field("ok", problem.empty())
      .field("lines", r.lines)
      .field("events", r.events)
      .field("first_seq", r.first_seq)
      .field("last_seq", r.last_seq)
      .field("duplicates", r.duplicates);
  if (!problem.empty()) w.field("problem", problem);
  if (r.bad_line > 0) w.field("bad_line", r.bad_line);
  if (r.compared) w.field("database", db).field("database_head_seq", r.db_head_seq);
  if (r.checkpoints) checkpoint_json(w, *r.checkpoints);
  w.end_object();
  write_stdout(out + "\n");
}

void export_text(const std::string& file, const std::string& db,
                 const storage::ExportVerifyReport& r) {
  std::printf("%s: exported copy intact: %lld events, starts at seq %lld, ends at seq %lld",
              shown(file).c_str(), static_cast<long long>(r.events),
              static_cast<long long>(r.first_seq), static_cast<long long>(r.last_seq));
  std::printf(", %lld identical duplicate lines (at-least-once delivery)\n",
              static_cast<long long>(r.duplicates));
  if (r.compared) {
    std::printf("matches %s for every seq it holds (the database is at seq %lld)\n",
                shown(db).c_str(), static_cast<long long>(r.db_head_seq));
  } else {
    std::printf("not compared with a database\n");
  }
  if (r.checkpoints) print_checkpoints(*r.checkpoints);
}

int verify_export_file(const std::string& db_path, const VerifyOptions& o,
                       const std::vector<ed25519::PublicKey>& keys) {
  std::ifstream in(o.export_file, std::ios::binary);
  if (!in) {
    print_error("cannot read the export " + shown(o.export_file) + ": " + std::strerror(errno));
    return kExitUsage;
  }
  std::unique_ptr<storage::AuditStore> store;
  if (!db_path.empty()) {
    store = open_store(db_path, storage::AuditStore::Mode::kReadOnly);
    if (!store) return kExitFailure;
  }
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  storage::ExportVerifyOptions eo;
  if (!keys.empty()) eo.keys = &keys;
  if (store) eo.db = &store->db();
  if (tty) eo.progress = verify_progress;
  eo.progress_arg = const_cast<char*>("lines");
  auto rep = storage::verify_export(in, eo);
  if (tty) std::fprintf(stderr, "\r\033[K");
  if (!rep.ok()) {
    print_error(rep.error().message);
    return kExitFailure;
  }
  std::string problem = rep->problem;
  if (problem.empty() && rep->checkpoints)
    problem = checkpoint_problem(*rep->checkpoints, rep->events);
  if (o.format == OutputFormat::kJson) {
    export_json(o.export_file, db_path, *rep, problem);
  } else if (problem.empty()) {
    export_text(o.export_file, db_path, *rep);
  }
  if (!problem.empty()) {
    std::fprintf(stderr, "tokenwarden: %s: %s\n", shown(o.export_file).c_str(), problem.c_str());
    return kExitChainBroken;
  }
  return kExitOk;
}

}  // namespace

int cmd_verify(const GlobalOptions& g, const VerifyOptions& o) {
  std::string db = o.db;
  std::vector<std::string> key_files = o.public_keys;
  const bool want_db = o.export_file.empty() || !o.export_only;
  if (db.empty() && (want_db || key_files.empty())) {
    // The configuration gives the database and [audit] public_key_file. An export is checked
    // alone when there is no configuration file at the default path.
    const bool optional = !o.export_file.empty() && !g.config_given && !exists(g.config_path);
    if (!optional) {
      auto config = load_config(g, true);
      if (!config) return kExitUsage;
      if (want_db) db = config->daemon.database;
      if (key_files.empty() && !config->audit.public_key_file.empty()) {
        key_files.push_back(config->audit.public_key_file);
      }
    }
  }
  auto keys = load_keys(key_files);
  if (!keys) return kExitUsage;
  if (!o.export_file.empty()) return verify_export_file(o.export_only ? "" : db, o, *keys);
  return verify_database(db, o, *keys);
}

}  // namespace tw::cli

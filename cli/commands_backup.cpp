// `tokenwarden backup FILE`: a consistent, verified copy of the audit database
// (docs/operations.md).
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "core/strings.h"
#include "storage/backup.h"

namespace tw::cli {

int cmd_backup(const GlobalOptions& g, const BackupOptions& o) {
  auto source = database_path(g, o.db);
  if (!source) return kExitUsage;
  auto done = storage::backup_database(*source, o.file, o.force);
  if (!done.ok()) {
    print_error(done.error().message);
    return done.error().code == ErrorCode::kInvalidArgument ? kExitUsage : kExitFailure;
  }
  const auto& chain = done->chain;
  std::printf("%s: backup of %s: %lld events, last seq %lld, hash %s, %llu bytes%s\n",
              printable(o.file, 200).c_str(), printable(*source, 200).c_str(),
              static_cast<long long>(chain.rows), static_cast<long long>(chain.head_seq),
              chain.head_hash.empty() ? "-" : chain.head_hash.c_str(),
              static_cast<unsigned long long>(done->bytes), chain.ok ? ", verified" : "");
  if (!chain.append_only_triggers) {
    std::fprintf(stderr,
                 "tokenwarden: warning: the append-only triggers of audit_log were removed\n");
  }
  if (!chain.ok) {
    std::fprintf(stderr, "tokenwarden: %s: backup kept, but its audit log is BROKEN: %s\n",
                 printable(o.file, 200).c_str(), chain.problem.c_str());
    return kExitChainBroken;
  }
  return kExitOk;
}

}  // namespace tw::cli

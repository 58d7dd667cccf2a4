#pragma once
// `tokenwarden backup`: a consistent, verified copy of the audit database, taken while the
// daemon keeps writing.
//
// The copy is made with SQLite's online backup API into a temporary file (mode 0600) in the
// target's directory, switched to rollback-journal mode (journal_mode=DELETE, so the copy can
// be read from a read-only directory or medium without -wal/-shm files), fsynced, checked
// (PRAGMA integrity_check, the tokenwarden schema, the whole hash chain), and only then renamed
// into place; the directory is fsynced. Nothing is left behind on failure.
//
// Thread safety: a free function; opens its own connections.
// Errors: kInvalidArgument (the target exists and `overwrite` is false, is a directory, or is
// the source), kNotFound (no source), kDatabase (the source cannot be read or the copy fails its
// integrity check), kIo (the target cannot be written). A broken hash chain is not an error: the
// copy is kept as evidence and `chain.ok` is false.

#include <cstdint>
#include <string>

#include "core/result.h"
#include "storage/chain.h"

namespace tw::storage {

struct BackupResult {
  VerifyReport chain;       // the copy's hash chain: rows, head_seq, head_hash, ok/problem
  std::uint64_t bytes = 0;  // size of the written file
};

Result<BackupResult> backup_database(const std::string& source, const std::string& target,
                                     bool overwrite);

}  // namespace tw::storage

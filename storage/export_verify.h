#pragma once
// Checking an exported copy of the audit log (JSON lines, storage/export_log.h) on its own and
// against the database (docs/commands.md "verify --export").
//
// The copy may start mid-chain (its first line's prev_hash is the anchor). Every line's hash is
// recomputed from its content and must link to the line before it; a gap in the seqs is an error.
// The export is at-least-once, so a line that repeats an already-seen seq is counted as a
// duplicate when it is identical to the first copy, and is an error otherwise. Blank lines and a
// collector's leading whitespace are ignored. With public keys, the checkpoint rows of the copy
// are checked (storage/checkpoints.h). With a database, every seq of the copy must be in the
// database with the same hash: the first one that is not is named.
//
// Thread safety: one call per thread; the Db is used from the calling thread only.
// Errors: kDatabase if the database cannot be read; everything wrong with the copy or a
// divergence is a result (ok == false, one sentence in problem), checked to the first problem.

#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <vector>

#include "core/ed25519.h"
#include "core/result.h"
#include "storage/checkpoints.h"

namespace tw::storage {

class Db;

struct ExportVerifyOptions {
  const std::vector<ed25519::PublicKey>* keys = nullptr;      // set: check the checkpoints
  Db* db = nullptr;                                           // set: compare with this database
  void (*progress)(std::int64_t lines, void* arg) = nullptr;  // every 100k lines
  void* progress_arg = nullptr;
};

struct ExportVerifyReport {
  bool ok = true;
  std::int64_t lines = 0;      // lines read, blank ones included
  std::int64_t events = 0;     // distinct seqs
  std::int64_t first_seq = 0;  // 0: the copy holds no event
  std::int64_t last_seq = 0;
  std::int64_t duplicates = 0;                  // identical repeats of a seq already seen
  std::int64_t bad_line = 0;                    // line of the first problem; 0: not about one line
  std::string problem;                          // one sentence
  std::optional<CheckpointReport> checkpoints;  // with keys
  bool compared = false;                        // with a database
  std::int64_t db_head_seq = 0;                 // the database's last seq, when compared
};

Result<ExportVerifyReport> verify_export(std::istream& in, const ExportVerifyOptions& options);

}  // namespace tw::storage

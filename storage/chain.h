#pragma once
// The audit log's hash chain and its verification (SPEC §3).
//
// hash = sha256_hex(prev_hash || canonical(row)); the first prev_hash is 64 zeros. The canonical
// form is the JSON array [seq, recorded_at, cluster, token_id, event, detail] written without
// spaces, where cluster and token_id are null when absent and detail is the stored detail text
// as a JSON string (docs/database.md shows how to recompute it with any language).
//
// Thread safety: pure functions; verify reads through its own Db.
// Errors: verify returns kDatabase only if the database cannot be read; a broken chain is a
// successful verification with ok == false.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace tw::storage {

class Db;
class CheckpointVerifier;

inline constexpr std::string_view kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

std::string canonical_row(std::int64_t seq, std::string_view recorded_at,
                          const std::optional<std::string>& cluster,
                          const std::optional<std::string>& token_id, std::string_view event,
                          std::string_view detail);
std::string chain_hash(std::string_view prev_hash, std::string_view canonical);

struct VerifyReport {
  bool ok = true;
  std::int64_t rows = 0;
  std::int64_t head_seq = 0;  // last row of the table
  std::string head_hash;
  std::int64_t bad_seq = 0;          // first bad row (0 if the problem is not one row)
  std::string problem;               // one sentence
  bool append_only_triggers = true;  // false: someone removed them (reported, not a chain break)
};

// progress(rows_done) is called every 100k rows if set; `checkpoints`, if set, is given every
// row in seq order (storage/checkpoints.h), so one pass checks the chain and the signatures.
Result<VerifyReport> verify_chain(Db& db, void (*progress)(std::int64_t, void*) = nullptr,
                                  void* progress_arg = nullptr,
                                  CheckpointVerifier* checkpoints = nullptr);

}  // namespace tw::storage

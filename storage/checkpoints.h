#pragma once
// Signing and checking the audit log's checkpoints (the format is in storage/checkpoint.h;
// docs/database.md "Signed checkpoints").
//
// sign_checkpoint() appends a checkpoint_signed event for the current head inside the caller's
// WriteTxn, so the head it signs cannot move before the row is written. CheckpointVerifier checks
// the checkpoint rows of a stream of rows in seq order — the database's (verify_chain) or an
// exported copy's (export_verify) — against a set of public keys.
//
// Proven seq: the head_seq signed by the last valid checkpoint. The unsigned tail: the rows after
// that checkpoint row (they can still be rewritten without a trace in the database alone).
//
// Thread safety: sign_checkpoint as the WriteTxn; a verifier belongs to one thread.
// Errors: kDatabase; a checkpoint that fails is a result (problem), never an error. Problems and
// errors never contain a key's secret part (the verifier holds no private key).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ed25519.h"
#include "core/result.h"
#include "core/time.h"
#include "storage/checkpoint.h"

namespace tw::storage {

class Db;
class WriteTxn;

struct CheckpointRow {
  std::int64_t seq = 0;
  std::string recorded_at;
  std::string prev_hash;
  std::string detail;
};

// The checkpoint_signed row with the highest seq (indexed; cheap on any size), if any.
Result<std::optional<CheckpointRow>> read_last_checkpoint(Db& db);

struct SignedCheckpoint {
  std::int64_t seq = 0;  // the checkpoint row's own seq (head_seq + 1)
  Checkpoint checkpoint;
};

// Signs the head and appends the checkpoint_signed event; nullopt (nothing appended) when the
// log is empty or its last row is already a checkpoint. The caller commits.
Result<std::optional<SignedCheckpoint>> sign_checkpoint(WriteTxn& txn,
                                                        const ed25519::PrivateKey& key,
                                                        const std::string& host, Timestamp now);

// Why the checkpoint row (seq, prev_hash, detail) does not prove the rows before it; "" if it
// does (its key is one of `keys`, its signature verifies, it signs seq - 1 and prev_hash).
// `key_id` receives the detail's key id when it parses.
std::string check_checkpoint(std::int64_t seq, std::string_view prev_hash, std::string_view detail,
                             const std::vector<ed25519::PublicKey>& keys,
                             std::string* key_id = nullptr);

struct CheckpointReport {
  std::int64_t checkpoints = 0;     // checkpoint_signed rows seen
  std::int64_t proven_seq = 0;      // head_seq of the last valid checkpoint; 0: none
  std::int64_t last_valid_seq = 0;  // that checkpoint's own seq
  std::string last_key_id;          // its key id
  std::string last_signed_at;       // its signed_at
  std::int64_t unsigned_tail = 0;   // rows after the last valid checkpoint (or all rows)
  std::int64_t bad_seq = 0;         // first checkpoint that fails; 0: none
  std::string problem;              // one sentence about bad_seq
  bool ok() const { return bad_seq == 0; }
};

class CheckpointVerifier {
 public:
  explicit CheckpointVerifier(std::vector<ed25519::PublicKey> keys) : keys_(std::move(keys)) {}
  // Every row, in seq order (rows that are not checkpoints only count towards the tail).
  void add(std::int64_t seq, std::string_view event, std::string_view prev_hash,
           std::string_view detail);
  CheckpointReport report() const;

 private:
  std::vector<ed25519::PublicKey> keys_;
  CheckpointReport rep_;
  std::int64_t rows_ = 0;
  std::int64_t rows_at_last_valid_ = 0;
};

}  // namespace tw::storage

#include "storage/checkpoints.h"

#include "core/base64.h"
#include "core/strings.h"
#include "storage/audit_store.h"
#include "storage/sqlite.h"

namespace tw::storage {

Result<std::optional<CheckpointRow>> read_last_checkpoint(Db& db) {
  // Served by the index audit_events_by_event(event, recorded_at): seq is the rowid.
  auto q = db.cached(
      "SELECT seq, recorded_at, prev_hash, detail FROM audit_events "
      "WHERE event = 'checkpoint_signed' ORDER BY seq DESC LIMIT 1");
  if (!q.ok()) return q.take_error();
  auto row = (*q)->step();
  if (!row.ok()) return row.take_error();
  std::optional<CheckpointRow> out;
  if (*row) {
    out = CheckpointRow{(*q)->int64(0), (*q)->text(1), (*q)->text(2), (*q)->text(3)};
  }
  (*q)->reset();
  return out;
}

Result<std::optional<SignedCheckpoint>> sign_checkpoint(WriteTxn& txn,
                                                        const ed25519::PrivateKey& key,
                                                        const std::string& host, Timestamp now) {
  auto head = txn.head();
  if (!head.ok()) return head.take_error();
  if (head->seq == 0) return std::optional<SignedCheckpoint>();
  auto last = read_last_checkpoint(txn.db());
  if (!last.ok()) return last.take_error();
  if (*last && (*last)->seq == head->seq) return std::optional<SignedCheckpoint>();
  SignedCheckpoint s;
  s.checkpoint.head_seq = head->seq;
  s.checkpoint.head_hash = head->hash;
  s.checkpoint.signed_at = format_timestamp(now);
  s.checkpoint.key_id = key.key_id();
  s.checkpoint.host = host;
  const std::string signature = key.sign(checkpoint_message(s.checkpoint));
  if (signature.empty()) {
    return make_error(ErrorCode::kInternal, "OpenSSL could not sign the checkpoint");
  }
  s.checkpoint.signature = base64_encode(signature);
  auto seq = txn.append(
      NewEvent{EventKind::kCheckpointSigned, "", "", checkpoint_detail(s.checkpoint)}, now);
  if (!seq.ok()) return seq.take_error();
  s.seq = *seq;
  return std::optional<SignedCheckpoint>(std::move(s));
}

std::string check_checkpoint(std::int64_t seq, std::string_view prev_hash, std::string_view detail,
                             const std::vector<ed25519::PublicKey>& keys, std::string* key_id) {
  const std::string name = "checkpoint seq " + std::to_string(seq);
  auto c = parse_checkpoint_detail(detail);
  if (!c) return name + " is not a readable checkpoint (its detail lacks a field)";
  if (key_id != nullptr) *key_id = c->key_id;
  const ed25519::PublicKey* key = nullptr;
  for (const auto& k : keys) {
    if (k.key_id() == c->key_id) key = &k;
  }
  if (key == nullptr) {
    return name + " was signed by another key (key id \"" + printable(c->key_id, 64) +
           "\" is not one of the given public keys)";
  }
  auto sig = base64_decode(c->signature);
  if (!sig || !key->verify(checkpoint_message(*c), *sig)) {
    return name + " has an invalid signature: its detail was altered or it was forged";
  }
  if (c->head_seq != seq - 1) {
    return name + " signs seq " + std::to_string(c->head_seq) +
           " instead of the row before it: it was moved";
  }
  if (c->head_hash != prev_hash) {
    return name + " signed a head hash that differs from the chain's: the history before it " +
           "was rewritten";
  }
  return {};
}

void CheckpointVerifier::add(std::int64_t seq, std::string_view event, std::string_view prev_hash,
                             std::string_view detail) {
  ++rows_;
  if (event != to_string(EventKind::kCheckpointSigned)) return;
  ++rep_.checkpoints;
  std::string key_id;
  std::string problem = check_checkpoint(seq, prev_hash, detail, keys_, &key_id);
  if (!problem.empty()) {
    if (rep_.ok()) {
      rep_.bad_seq = seq;
      rep_.problem = std::move(problem);
    }
    return;
  }
  if (!rep_.ok()) return;  // nothing after a failed checkpoint is proven
  auto c = parse_checkpoint_detail(detail);
  rep_.proven_seq = c->head_seq;
  rep_.last_valid_seq = seq;
  rep_.last_key_id = c->key_id;
  rep_.last_signed_at = c->signed_at;
  rows_at_last_valid_ = rows_;
}

CheckpointReport CheckpointVerifier::report() const {
  CheckpointReport r = rep_;
  r.unsigned_tail = rows_ - rows_at_last_valid_;
  return r;
}

}  // namespace tw::storage

#include "storage/chain.h"

#include "core/json_writer.h"
#include "core/sha256.h"
#include "storage/checkpoints.h"
#include "storage/sqlite.h"

namespace tw::storage {

std::string canonical_row(std::int64_t seq, std::string_view recorded_at,
                          const std::optional<std::string>& cluster,
                          const std::optional<std::string>& token_id, std::string_view event,
                          std::string_view detail) {
  std::string out;
  out.reserve(detail.size() + 128);
  JsonWriter w(out);
  w.begin_array();
  w.value(seq);
  w.value(recorded_at);
  w.value(cluster);
  w.value(token_id);
  w.value(event);
  w.value(detail);
  w.end_array();
  return out;
}

std::string chain_hash(std::string_view prev_hash, std::string_view canonical) {
  return sha256_hex(prev_hash, canonical);
}

Result<VerifyReport> verify_chain(Db& db, void (*progress)(std::int64_t, void*), void* progress_arg,
                                  CheckpointVerifier* checkpoints) {
  VerifyReport rep;
  auto stmt = db.prepare(
      "SELECT seq, recorded_at, cluster, token_id, event, detail, prev_hash, hash "
      "FROM audit_events ORDER BY seq");
  if (!stmt.ok()) return stmt.take_error();
  std::string prev(kGenesisHash);
  std::int64_t expected_seq = 1;
  auto fail = [&](std::int64_t seq, std::string problem) {
    if (rep.ok) {
      rep.ok = false;
      rep.bad_seq = seq;
      rep.problem = std::move(problem);
    }
  };
  while (true) {
    auto row = stmt->step();
    if (!row.ok()) return row.take_error();
    if (!*row) break;
    std::int64_t seq = stmt->int64(0);
    std::string recorded_at = stmt->text(1);
    auto cluster = stmt->opt_text(2);
    auto token_id = stmt->opt_text(3);
    std::string event = stmt->text(4);
    std::string detail = stmt->text(5);
    std::string prev_hash = stmt->text(6);
    std::string hash = stmt->text(7);
    ++rep.rows;
    if (rep.ok) {
      if (seq != expected_seq) {
        if (seq > expected_seq) {
          fail(seq, "row seq " + std::to_string(seq) + " follows seq " +
                        std::to_string(expected_seq - 1) + ": rows " +
                        std::to_string(expected_seq) +
                        (seq - 1 > expected_seq ? ".." + std::to_string(seq - 1) : std::string()) +
                        " were deleted");
        } else {
          fail(seq, "row seq " + std::to_string(seq) + " is out of order");
        }
      } else if (prev_hash != prev) {
        fail(seq,
             "row seq " + std::to_string(seq) +
                 " does not link to the row before it (prev_hash differs): a row was inserted, "
                 "deleted or rewritten before it");
      } else if (chain_hash(prev_hash, canonical_row(seq, recorded_at, cluster, token_id, event,
                                                     detail)) != hash) {
        fail(seq, "row seq " + std::to_string(seq) + " (" + event + " at " + recorded_at +
                      ") was modified: its hash does not match its content");
      }
    }
    if (checkpoints != nullptr) checkpoints->add(seq, event, prev_hash, detail);
    prev = hash;
    expected_seq = seq + 1;
    rep.head_seq = seq;
    rep.head_hash = hash;
    if (progress != nullptr && rep.rows % 100000 == 0) progress(rep.rows, progress_arg);
  }

  auto head = db.prepare("SELECT seq, hash FROM chain_head WHERE id = 1");
  if (!head.ok()) return head.take_error();
  auto hrow = head->step();
  if (!hrow.ok()) return hrow.take_error();
  if (*hrow) {
    std::int64_t hseq = head->int64(0);
    std::string hhash = head->text(1);
    if (hseq != rep.head_seq || hhash != rep.head_hash) {
      if (hseq > rep.head_seq) {
        fail(rep.head_seq + 1, "the chain head records seq " + std::to_string(hseq) +
                                   " but the log ends at seq " + std::to_string(rep.head_seq) +
                                   ": rows were deleted from the end");
      } else {
        fail(hseq + 1, "the log continues past the recorded chain head (seq " +
                           std::to_string(hseq) +
                           "): rows were appended or rewritten outside tokenwarden");
      }
    }
  } else if (rep.rows > 0) {
    fail(0, "the chain head record is missing");
  }

  auto trig = db.prepare(
      "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name IN "
      "('audit_events_no_update', 'audit_events_no_delete')");
  if (!trig.ok()) return trig.take_error();
  auto trow = trig->step();
  if (!trow.ok()) return trow.take_error();
  rep.append_only_triggers = trig->int64(0) == 2;
  return rep;
}

}  // namespace tw::storage

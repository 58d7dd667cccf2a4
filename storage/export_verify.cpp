#include "storage/export_verify.h"

#include "storage/chain.h"
#include "storage/export_log.h"
#include "storage/sqlite.h"

namespace tw::storage {
namespace {

constexpr std::size_t kHashLen = 64;
// Duplicates are recognised this far back (an exporter resends at most a few batches); the
// hashes of older seqs are let go, so memory stays bounded (about 64 MB at most) for any copy.
constexpr std::size_t kWindow = 500000;

// Walks the database's rows in seq order, one row per new seq of the copy, and compares every
// column: a row edited in place (its hash left alone) differs from the copy as much as a
// rewritten one.
class DbCursor {
 public:
  explicit DbCursor(Db& db) : db_(db) {}
  // "" if the database holds `row` exactly; else why not.
  Result<std::string> compare(const AuditRow& row) {
    const std::int64_t seq = row.seq;
    if (!stmt_) {
      auto st = db_.prepare(
          "SELECT seq, recorded_at, cluster, token_id, event, detail, prev_hash, hash "
          "FROM audit_events WHERE seq >= ? ORDER BY seq");
      if (!st.ok()) return st.take_error();
      stmt_.emplace(std::move(*st));
      stmt_->bind(1, seq);
    }
    auto step = stmt_->step();
    if (!step.ok()) return step.take_error();
    if (!*step) {
      return "the database ends before seq " + std::to_string(seq) +
             ", which the export holds: rows were deleted from the database";
    }
    if (stmt_->int64(0) != seq) {
      return "the database has no seq " + std::to_string(seq) +
             ", which the export holds: rows were deleted from the database";
    }
    const bool same = stmt_->view(1) == row.recorded_at && stmt_->opt_text(2) == row.cluster &&
                      stmt_->opt_text(3) == row.token_id && stmt_->view(4) == row.event &&
                      stmt_->view(5) == row.detail && stmt_->view(6) == row.prev_hash &&
                      stmt_->view(7) == row.hash;
    if (!same) {
      return "the database's seq " + std::to_string(seq) +
             " differs from the exported copy: the database was rewritten after the event left "
             "the host";
    }
    return std::string();
  }

 private:
  Db& db_;
  std::optional<Stmt> stmt_;
};

class ExportChecker {
 public:
  explicit ExportChecker(const ExportVerifyOptions& o) : o_(o) {
    if (o.keys != nullptr) verifier_.emplace(*o.keys);
    if (o.db != nullptr) cursor_.emplace(*o.db);
  }

  // false once a problem is found.
  Result<bool> line(std::string_view text) {
    ++rep_.lines;
    if (o_.progress != nullptr && rep_.lines % 100000 == 0)
      o_.progress(rep_.lines, o_.progress_arg);
    if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return true;
    auto row = parse_export_line(text);
    if (!row.ok()) return fail("is not an export line: " + row.error().message);
    std::string computed =
        chain_hash(row->prev_hash, canonical_row(row->seq, row->recorded_at, row->cluster,
                                                 row->token_id, row->event, row->detail));
    if (rep_.events > 0 && row->seq <= rep_.last_seq) return duplicate(*row, computed);
    if (rep_.events == 0 && row->seq == 1 && row->prev_hash != kGenesisHash) {
      return fail("(seq 1) does not start from the genesis hash");
    }
    if (rep_.events > 0 && row->seq > rep_.last_seq + 1) {
      return fail("jumps to seq " + std::to_string(row->seq) + ": seq " +
                  std::to_string(rep_.last_seq + 1) + ".." + std::to_string(row->seq - 1) +
                  " missing");
    }
    if (rep_.events > 0 && row->prev_hash != hash_of(rep_.last_seq)) {
      return fail("(seq " + std::to_string(row->seq) +
                  ") does not link to the line before it (prev_hash differs)");
    }
    if (computed != row->hash) {
      return fail("(seq " + std::to_string(row->seq) +
                  ") was modified: its hash does not match its content");
    }
    return accept(*row);
  }

  ExportVerifyReport finish() {
    if (verifier_) rep_.checkpoints = verifier_->report();
    if (rep_.ok && verifier_ && !rep_.checkpoints->ok()) {
      rep_.ok = false;
      rep_.problem = rep_.checkpoints->problem;
    }
    return rep_;
  }

 private:
  Result<bool> accept(const AuditRow& row) {
    if (rep_.events == 0) rep_.first_seq = window_first_ = row.seq;
    ++rep_.events;
    rep_.last_seq = row.seq;
    hashes_ += row.hash;
    if (hashes_.size() >= 2 * kWindow * kHashLen) {  // keep the last kWindow seqs' hashes
      hashes_.erase(0, kWindow * kHashLen);
      window_first_ += static_cast<std::int64_t>(kWindow);
    }
    if (verifier_) verifier_->add(row.seq, row.event, row.prev_hash, row.detail);
    if (cursor_) {
      rep_.compared = true;
      auto diff = cursor_->compare(row);
      if (!diff.ok()) return diff.take_error();
      if (!diff->empty()) return fail_db(*diff);
    }
    return true;
  }

  Result<bool> duplicate(const AuditRow& row, const std::string& computed) {
    if (row.seq < rep_.first_seq) {
      return fail("goes back to seq " + std::to_string(row.seq) + ", before the copy's first seq " +
                  std::to_string(rep_.first_seq));
    }
    if (row.seq < window_first_) {
      return fail("repeats seq " + std::to_string(row.seq) + ", more than " +
                  std::to_string(kWindow) +
                  " seqs back: an export never resends that far, so the copy was spliced");
    }
    // The hash covers prev_hash and the content: equal hashes, recomputed, are the same row.
    if (computed != row.hash || row.hash != hash_of(row.seq)) {
      return fail("repeats seq " + std::to_string(row.seq) +
                  " with a different content than its first copy");
    }
    ++rep_.duplicates;
    return true;
  }

  std::string_view hash_of(std::int64_t seq) const {
    return std::string_view(hashes_).substr(
        static_cast<std::size_t>(seq - window_first_) * kHashLen, kHashLen);
  }

  bool fail(const std::string& what) {
    rep_.ok = false;
    rep_.bad_line = rep_.lines;
    rep_.problem = "line " + std::to_string(rep_.lines) + " " + what;
    return false;
  }

  bool fail_db(const std::string& what) {
    rep_.ok = false;
    rep_.bad_line = rep_.lines;
    rep_.problem = what;
    return false;
  }

  const ExportVerifyOptions& o_;
  ExportVerifyReport rep_;
  std::string hashes_;  // the accepted seqs' hashes, 64 characters each, from window_first_
  std::int64_t window_first_ = 0;
  std::optional<CheckpointVerifier> verifier_;
  std::optional<DbCursor> cursor_;
};

Result<std::int64_t> db_head(Db& db) {
  auto q = db.prepare("SELECT COALESCE(MAX(seq), 0) FROM audit_events");
  if (!q.ok()) return q.take_error();
  auto row = q->step();
  if (!row.ok()) return row.take_error();
  return q->int64(0);
}

}  // namespace

Result<ExportVerifyReport> verify_export(std::istream& in, const ExportVerifyOptions& options) {
  ExportChecker checker(options);
  std::string text;
  while (std::getline(in, text)) {
    auto more = checker.line(text);
    if (!more.ok()) return more.take_error();
    if (!*more) break;
  }
  ExportVerifyReport rep = checker.finish();
  if (options.db != nullptr) {
    auto head = db_head(*options.db);
    if (!head.ok()) return head.take_error();
    rep.db_head_seq = *head;
    rep.compared = true;
  }
  return rep;
}

}  // namespace tw::storage

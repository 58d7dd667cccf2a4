#include "storage/audit_store.h"

#include "core/strings.h"
#include "storage/chain.h"
#include "storage/schema.h"
#include "storage/sqlite.h"

namespace tw::storage {

std::string_view to_string(PollOutcome outcome) {
  switch (outcome) {
    case PollOutcome::kOk:
      return "ok";
    case PollOutcome::kFailed:
      return "failed";
    case PollOutcome::kSuspect:
      return "suspect";
  }
  return "failed";
}

struct WriteTxn::Impl {
  std::unique_lock<std::mutex> lock;
  Db* db;
  const std::function<void(const EventCounts&)>* on_commit = nullptr;
  std::optional<Transaction> txn;
  bool head_loaded = false;
  std::int64_t head_seq = 0;
  std::string head_hash;
};

WriteTxn::WriteTxn(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WriteTxn::WriteTxn(WriteTxn&&) noexcept = default;
WriteTxn::~WriteTxn() = default;  // Transaction rolls back, then the lock is released

Db& WriteTxn::db() { return *impl_->db; }

Status WriteTxn::load_head() {
  if (impl_->head_loaded) return ok_status();
  auto q = impl_->db->cached("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1");
  if (!q.ok()) return q.take_error();
  auto row = (*q)->step();
  if (!row.ok()) return row.take_error();
  impl_->head_seq = *row ? (*q)->int64(0) : 0;
  impl_->head_hash = *row ? (*q)->text(1) : std::string(kGenesisHash);
  (*q)->reset();
  impl_->head_loaded = true;
  return ok_status();
}

Result<ChainHead> WriteTxn::head() {
  TW_RETURN_IF_ERROR(load_head());
  return ChainHead{impl_->head_seq, impl_->head_hash};
}

Result<std::int64_t> WriteTxn::append(const NewEvent& event, Timestamp recorded_at) {
  Db& db = *impl_->db;
  TW_RETURN_IF_ERROR(load_head());
  std::int64_t seq = impl_->head_seq + 1;
  std::string at = format_timestamp(recorded_at);
  std::optional<std::string> cluster, token;
  if (!event.cluster.empty()) cluster = event.cluster;
  if (!event.token_id.empty()) token = event.token_id;
  std::string_view name = to_string(event.kind);
  std::string hash =
      chain_hash(impl_->head_hash, canonical_row(seq, at, cluster, token, name, event.detail));
  auto ins = db.cached(
      "INSERT INTO audit_events(seq, recorded_at, cluster, token_id, event, detail, prev_hash, "
      "hash) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  if (!ins.ok()) return ins.take_error();
  (*ins)
      ->bind(1, seq)
      .bind(2, at)
      .bind(3, cluster)
      .bind(4, token)
      .bind(5, name)
      .bind(6, event.detail)
      .bind(7, impl_->head_hash)
      .bind(8, hash);
  TW_RETURN_IF_ERROR((*ins)->run());
  impl_->head_seq = seq;
  impl_->head_hash = std::move(hash);
  ++counts_[static_cast<std::size_t>(event.kind)];
  return seq;
}

Status WriteTxn::put_token(const std::string& cluster, const KnownToken& k) {
  auto st = impl_->db->cached(
      "INSERT INTO tokens(cluster, token_id, description, permissions, created_at, expires_at, "
      "revoked_at, status, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
      "ON CONFLICT(cluster, token_id) DO UPDATE SET description = excluded.description, "
      "permissions = excluded.permissions, created_at = excluded.created_at, "
      "expires_at = excluded.expires_at, revoked_at = excluded.revoked_at, "
      "status = excluded.status, first_seen = excluded.first_seen, last_seen = excluded.last_seen");
  if (!st.ok()) return st.take_error();
  auto opt_ts = [](const std::optional<Timestamp>& t) {
    return t ? std::optional<std::string>(format_timestamp(*t)) : std::nullopt;
  };
  (*st)
      ->bind(1, cluster)
      .bind(2, k.token.id)
      .bind(3, k.token.description)
      .bind(4, permissions_json(k.token.permissions))
      .bind(5, opt_ts(k.token.created_at))
      .bind(6, opt_ts(k.token.expires_at))
      .bind(7, opt_ts(k.token.revoked_at))
      .bind(8, to_string(k.status))
      .bind(9, format_timestamp(k.first_seen))
      .bind(10, format_timestamp(k.last_seen));
  return (*st)->run();
}

Result<std::int64_t> WriteTxn::insert_poll(const PollRecord& p) {
  auto st = impl_->db->cached(
      "INSERT INTO poll_runs(cluster, started_at, finished_at, outcome, token_count, error, "
      "vanished_digest) VALUES (?, ?, ?, ?, ?, ?, ?)");
  if (!st.ok()) return st.take_error();
  (*st)
      ->bind(1, p.cluster)
      .bind(2, format_timestamp(p.started_at))
      .bind(3, format_timestamp(p.finished_at))
      .bind(4, to_string(p.outcome));
  if (p.token_count)
    (*st)->bind(5, *p.token_count);
  else
    (*st)->bind_null(5);
  if (p.error.empty())
    (*st)->bind_null(6);
  else
    (*st)->bind(6, p.error);
  if (p.vanished_digest.empty())
    (*st)->bind_null(7);
  else
    (*st)->bind(7, p.vanished_digest);
  TW_RETURN_IF_ERROR((*st)->run());
  return impl_->db->last_insert_rowid();
}

Status WriteTxn::commit() {
  if (impl_->head_loaded && impl_->head_seq > 0) {
    auto st = impl_->db->cached(
        "INSERT INTO chain_head(id, seq, hash) VALUES (1, ?, ?) "
        "ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash");
    if (!st.ok()) return st.take_error();
    (*st)->bind(1, impl_->head_seq).bind(2, impl_->head_hash);
    TW_RETURN_IF_ERROR((*st)->run());
  }
  auto s = impl_->txn->commit();
  if (!s.ok()) return s;
  impl_->txn.reset();
  if (impl_->on_commit != nullptr && *impl_->on_commit) (*impl_->on_commit)(counts_);
  return ok_status();
}

Result<ClusterState> WriteTxn::cluster_state(const std::string& cluster) {
  return read_cluster_state(*impl_->db, cluster);
}

Result<Inventory> WriteTxn::load_inventory(const std::string& cluster) {
  return read_inventory(*impl_->db, cluster);
}

Result<ClusterState> read_cluster_state(Db& db, const std::string& cluster) {
  ClusterState s;
  auto ok = db.cached(
      "SELECT id, finished_at FROM poll_runs WHERE cluster = ? AND outcome = 'ok' "
      "ORDER BY id DESC LIMIT 1");
  if (!ok.ok()) return ok.take_error();
  (*ok)->bind(1, cluster);
  auto row = (*ok)->step();
  if (!row.ok()) return row.take_error();
  if (*row) {
    s.ever_ok = true;
    s.last_ok_poll_id = (*ok)->int64(0);
    auto t = parse_rfc3339((*ok)->text(1));
    if (t.ok()) s.last_ok_finished = *t;
  }
  (*ok)->reset();
  auto sus = db.cached(
      "SELECT id, vanished_digest FROM poll_runs WHERE cluster = ? AND outcome = 'suspect' "
      "ORDER BY id DESC LIMIT 1");
  if (!sus.ok()) return sus.take_error();
  (*sus)->bind(1, cluster);
  row = (*sus)->step();
  if (!row.ok()) return row.take_error();
  if (*row && (*sus)->int64(0) > s.last_ok_poll_id) s.pending_suspect_digest = (*sus)->text(1);
  (*sus)->reset();
  return s;
}

Result<Inventory> read_inventory(Db& db, const std::string& cluster) {
  Inventory inv;
  auto st = db.prepare(
      "SELECT token_id, description, permissions, created_at, expires_at, revoked_at, status, "
      "first_seen, last_seen FROM tokens WHERE cluster = ?");
  if (!st.ok()) return st.take_error();
  st->bind(1, cluster);
  while (true) {
    auto row = st->step();
    if (!row.ok()) return row.take_error();
    if (!*row) break;
    KnownToken k;
    k.token.id = st->text(0);
    k.token.description = st->text(1);
    auto perms = parse_permissions_json(st->text(2));
    if (!perms.ok()) {
      return make_error(ErrorCode::kDatabase, "token " + printable(k.token.id, 80) +
                                                  " of cluster " + cluster + ": " +
                                                  perms.error().message);
    }
    k.token.permissions = std::move(*perms);
    k.token.created_at = parse_optional_timestamp(st->opt_text(3));
    k.token.expires_at = parse_optional_timestamp(st->opt_text(4));
    k.token.revoked_at = parse_optional_timestamp(st->opt_text(5));
    k.status = parse_token_status(st->text(6)).value_or(TokenStatus::kActive);
    k.first_seen = parse_optional_timestamp(st->opt_text(7)).value_or(Timestamp{});
    k.last_seen = parse_optional_timestamp(st->opt_text(8)).value_or(Timestamp{});
    std::string id = k.token.id;
    inv.emplace(std::move(id), std::move(k));
  }
  return inv;
}

AuditStore::AuditStore(std::unique_ptr<Db> db, std::string path)
    : db_(std::move(db)), path_(std::move(path)) {}
AuditStore::~AuditStore() = default;

Result<std::unique_ptr<AuditStore>> AuditStore::open(const std::string& path, Mode mode) {
  auto db = Db::open(path, mode == Mode::kReadOnly ? Db::Mode::kReadOnly : Db::Mode::kReadWrite);
  if (!db.ok()) return db.take_error();
  // Before anything is written: another application's database is never adopted.
  if (auto owned = check_ownership(**db); !owned.ok()) return owned.take_error();
  if (mode == Mode::kReadWrite) {
    restrict_to_owner(path);
    // WAL with synchronous=FULL: a committed poll survives power loss. journal_size_limit keeps
    // the WAL file from staying at its high-water mark after a large first poll.
    for (const char* pragma :
         {"PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL", "PRAGMA foreign_keys = ON",
          "PRAGMA journal_size_limit = 16777216"}) {
      auto s = (*db)->exec(pragma);
      if (!s.ok()) {
        return make_error(
            ErrorCode::kDatabase,
            "cannot configure database \"" + printable(path, 200) + "\": " + s.error().message);
      }
    }
    auto m = migrate(**db);
    if (!m.ok()) return m.take_error();
  } else {
    auto v = schema_version(**db);
    if (!v.ok()) return v.take_error();
    if (*v < kMinReadableSchemaVersion || *v > kSchemaVersion) {
      return make_error(ErrorCode::kDatabase,
                        "database \"" + printable(path, 200) + "\" has schema version " +
                            std::to_string(*v) + " but this tokenwarden reads version " +
                            std::to_string(kSchemaVersion) +
                            (*v < kSchemaVersion ? " (start the daemon once to migrate it)"
                                                 : " (upgrade tokenwarden)"));
    }
  }
  return std::unique_ptr<AuditStore>(new AuditStore(std::move(*db), path));
}

Result<WriteTxn> AuditStore::begin() {
  auto impl = std::make_unique<WriteTxn::Impl>();
  impl->lock = std::unique_lock<std::mutex>(mu_);
  impl->db = db_.get();
  impl->on_commit = &on_commit_;
  auto txn = Transaction::begin(*db_);
  if (!txn.ok()) return txn.take_error();
  impl->txn.emplace(std::move(*txn));
  return WriteTxn(std::move(impl));
}

}  // namespace tw::storage

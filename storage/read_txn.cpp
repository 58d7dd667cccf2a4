#include "storage/read_txn.h"

#include "storage/sqlite.h"

namespace tw::storage {

ReadTxn::ReadTxn(Db* db, std::unique_ptr<Db> owned)
    : owned_(std::move(owned)), db_(db), active_(true) {}

ReadTxn::ReadTxn(ReadTxn&& other) noexcept
    : owned_(std::move(other.owned_)), db_(other.db_), active_(other.active_) {
  other.db_ = nullptr;
  other.active_ = false;
}

ReadTxn::~ReadTxn() {
  if (active_) (void)db_->exec("ROLLBACK");
}

Result<ReadTxn> ReadTxn::begin(Db& db) {
  TW_RETURN_IF_ERROR(db.exec("BEGIN"));
  return ReadTxn(&db, nullptr);
}

Result<ReadTxn> ReadTxn::open(const std::string& path) {
  auto db = Db::open(path, Db::Mode::kReadOnly);
  if (!db.ok()) return db.take_error();
  TW_RETURN_IF_ERROR((*db)->exec("BEGIN"));
  Db* raw = db->get();
  return ReadTxn(raw, std::move(*db));
}

Status ReadTxn::end() {
  if (!active_) return ok_status();
  active_ = false;
  return db_->exec("ROLLBACK");
}

const std::string& ReadTxn::path() const { return db_->path(); }

}  // namespace tw::storage

#pragma once
// A read transaction: one consistent snapshot of the audit database for a series of reads (a
// report, a command-line query) while the daemon keeps writing (WAL).
//
// begin() starts a deferred transaction on an existing connection; SQLite fixes the snapshot at
// the first read. open() does the same on a new read-only connection of its own (a second
// reader, for instance a chain check on another thread). The transaction ends (ROLLBACK: nothing
// was written) on end() or in the destructor, which never throws.
//
// The typed reads that take a ReadTxn (storage/report_queries.h) or its db() (the older
// Db-based queries) are the only way code outside storage/ reads the database: no SQL there.
//
// Thread safety: a ReadTxn and its connection are used by one thread at a time.
// Errors: kDatabase (kNotFound from open() if the file does not exist).

#include <memory>
#include <string>

#include "core/result.h"

namespace tw::storage {

class Db;

class ReadTxn {
 public:
  static Result<ReadTxn> begin(Db& db);
  static Result<ReadTxn> open(const std::string& path);
  ReadTxn(ReadTxn&& other) noexcept;
  ReadTxn& operator=(ReadTxn&&) = delete;
  ReadTxn(const ReadTxn&) = delete;
  ReadTxn& operator=(const ReadTxn&) = delete;
  ~ReadTxn();

  // Ends the transaction (releases the snapshot). Later reads run outside it, each on its own.
  Status end();

  // The connection, for the storage functions that take a Db.
  Db& db() const { return *db_; }
  const std::string& path() const;

 private:
  ReadTxn(Db* db, std::unique_ptr<Db> owned);
  std::unique_ptr<Db> owned_;
  Db* db_ = nullptr;
  bool active_ = false;
};

}  // namespace tw::storage

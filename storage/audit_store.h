#pragma once
// The SQLite audit store (SPEC §3): WAL, synchronous=FULL, mode 0600, numbered migrations,
// an append-only audit log chained by SHA-256, the token inventory and the poll record.
//
// Writers take a WriteTxn (BEGIN IMMEDIATE + the store's mutex): everything a poll writes —
// events, token rows, the poll row — commits together or not at all. The chain head is read
// inside the transaction, so several processes (the daemon and a manual `poll`) may write.
//
// Thread safety: begin() serializes writers; the read functions below are for a single thread
// (command-line queries) or must be called through a WriteTxn.
// Errors: kDatabase with one sentence naming the database and what failed.

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/audit_event.h"
#include "core/result.h"
#include "storage/export_log.h"
#include "storage/inventory.h"

namespace tw::storage {

class Db;

enum class PollOutcome { kOk, kFailed, kSuspect };
std::string_view to_string(PollOutcome outcome);

struct PollRecord {
  std::string cluster;
  Timestamp started_at;
  Timestamp finished_at;
  PollOutcome outcome = PollOutcome::kOk;
  std::optional<std::int64_t> token_count;
  std::string error;            // failed/suspect: why
  std::string vanished_digest;  // suspect: which tokens vanished
};

struct ClusterState {
  bool ever_ok = false;              // a successful poll is recorded
  std::int64_t last_ok_poll_id = 0;  // 0 if none
  std::optional<Timestamp> last_ok_finished;
  std::string pending_suspect_digest;  // set if the latest non-failed poll was suspect
};

using tw::EventCounts;

class WriteTxn {
 public:
  WriteTxn(WriteTxn&&) noexcept;
  WriteTxn& operator=(WriteTxn&&) = delete;
  ~WriteTxn();  // rolls back unless committed

  // Appends to the hash chain; returns the row's seq.
  Result<std::int64_t> append(const NewEvent& event, Timestamp recorded_at);
  // The last seq and hash, including what this transaction appended (genesis when empty).
  Result<ChainHead> head();
  Status put_token(const std::string& cluster, const KnownToken& token);
  Result<std::int64_t> insert_poll(const PollRecord& poll);
  Status commit();

  Result<ClusterState> cluster_state(const std::string& cluster);
  Result<Inventory> load_inventory(const std::string& cluster);
  const EventCounts& appended() const { return counts_; }
  Db& db();

 private:
  friend class AuditStore;
  struct Impl;
  explicit WriteTxn(std::unique_ptr<Impl> impl);
  Status load_head();
  std::unique_ptr<Impl> impl_;
  EventCounts counts_{};
};

class AuditStore {
 public:
  enum class Mode { kReadWrite, kReadOnly };
  // kReadWrite creates and migrates; kReadOnly requires an existing, current database.
  static Result<std::unique_ptr<AuditStore>> open(const std::string& path, Mode mode);
  ~AuditStore();

  Result<WriteTxn> begin();
  Db& db() { return *db_; }
  // Called after every commit with the events it appended (metrics). Set before writers start.
  void on_commit(std::function<void(const EventCounts&)> observer) {
    on_commit_ = std::move(observer);
  }
  const std::function<void(const EventCounts&)>& commit_observer() const { return on_commit_; }
  const std::string& path() const { return path_; }

 private:
  AuditStore(std::unique_ptr<Db> db, std::string path);
  std::unique_ptr<Db> db_;
  std::string path_;
  std::mutex mu_;
  std::function<void(const EventCounts&)> on_commit_;
};

// Shared by reads outside a transaction (command-line queries).
Result<ClusterState> read_cluster_state(Db& db, const std::string& cluster);
Result<Inventory> read_inventory(Db& db, const std::string& cluster);

}  // namespace tw::storage

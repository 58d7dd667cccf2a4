#pragma once
// Signs the audit log's checkpoints ([audit] signing_key_file; docs/database.md "Signed
// checkpoints"): a checkpoint_signed event once checkpoint_events events were appended since the
// last one, once checkpoint_interval passed with anything appended, and whenever the owner asks
// (the daemon's clean stop, the end of a one-shot `poll`). Nothing is signed when nothing was
// appended since the last checkpoint (the database's last row is one).
//
// The state survives restarts: start() reads the last checkpoint (an indexed query) and counts
// the events after it. committed() is the store's commit observer. The key's path follows the
// token_file rule: a relative name is looked up in $CREDENTIALS_DIRECTORY first.
//
// Thread safety: every method may be called from any thread. sign() and start() take the store's
// write transaction (call them off the event loop); signatures are serialized among themselves,
// and due(), committed() and configure() never wait for the database.
// Errors: load_signing_key fails with one sentence naming the file (never its content); a failed
// signature or append is logged by sign() and retried at the next trigger, never thrown.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/audit_event.h"
#include "core/ed25519.h"
#include "core/log.h"
#include "core/result.h"
#include "core/time.h"
#include "daemon/config.h"
#include "storage/audit_store.h"

namespace tw::daemon {

std::string resolve_key_path(const std::string& key_file, const std::string& credentials_directory);
Result<ed25519::PrivateKey> load_signing_key(const std::string& key_file,
                                             const std::string& credentials_directory);

// check-config, start and reload: `error` if the file is not an Ed25519 private key; warnings if
// this user cannot read it (it may be the service's) or group or others can.
struct KeyFileCheck {
  std::optional<std::string> error;
  std::vector<std::string> warnings;
};
KeyFileCheck check_signing_key_file(const std::string& key_file,
                                    const std::string& credentials_directory);

class Checkpointer {
 public:
  Checkpointer(storage::AuditStore& store, Logger log, std::string host);

  // Sets (or with nullopt, clears) the key and the triggers; a reload calls it again.
  void configure(std::optional<ed25519::PrivateKey> key, const AuditSection& audit);
  bool enabled() const;
  // Reads the last checkpoint and the events after it; `now` starts the interval if none.
  Status start(Timestamp now);
  // The store's commit observer: counts what was appended (checkpoints excepted).
  void committed(const EventCounts& counts);
  // A checkpoint is due at `now` (events threshold, or interval with something new).
  bool due(Timestamp now) const;
  // Signs the head if anything new was appended; the checkpoint's seq, or 0 if nothing was
  // signed (nothing new, no key, or a failure — logged).
  std::int64_t sign(Timestamp now);
  // Called after each checkpoint (metrics).
  void on_signed(std::function<void(std::int64_t seq, Timestamp at)> callback);

 private:
  storage::AuditStore& store_;
  Logger log_;
  const std::string host_;
  std::mutex sign_mu_;     // one signature at a time
  mutable std::mutex mu_;  // key_, settings, last_at_, callback_; never held across the database
  std::shared_ptr<const ed25519::PrivateKey> key_;
  Duration interval_ = std::chrono::hours(1);
  std::int64_t events_ = 10000;
  Timestamp last_at_{};
  std::function<void(std::int64_t, Timestamp)> callback_;
  std::atomic<std::int64_t> pending_{0};  // events appended since the last checkpoint
};

}  // namespace tw::daemon

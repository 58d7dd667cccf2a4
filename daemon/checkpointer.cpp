#include "daemon/checkpointer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/host.h"
#include "core/strings.h"
#include "influx/management_token.h"
#include "storage/checkpoints.h"

namespace tw::daemon {
namespace {

std::string quoted(const std::string& path) { return "\"" + printable(path, 200) + "\""; }

}  // namespace

std::string resolve_key_path(const std::string& key_file,
                             const std::string& credentials_directory) {
  return influx::resolve_token_path(key_file, credentials_directory);
}

Result<ed25519::PrivateKey> load_signing_key(const std::string& key_file,
                                             const std::string& credentials_directory) {
  return ed25519::PrivateKey::load(resolve_key_path(key_file, credentials_directory));
}

KeyFileCheck check_signing_key_file(const std::string& key_file,
                                    const std::string& credentials_directory) {
  KeyFileCheck out;
  const std::string path = resolve_key_path(key_file, credentials_directory);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    out.warnings.push_back(quoted(path) + " is not readable by this user: " + std::strerror(errno));
    return out;
  }
  if (!S_ISREG(st.st_mode)) {
    out.error = "signing key " + quoted(path) + " is not a regular file";
    return out;
  }
  if (!influx::check_secret_file_access(path, st, out.warnings)) return out;
  auto key = ed25519::PrivateKey::load(path);
  if (!key.ok()) out.error = key.error().message;
  return out;
}

Checkpointer::Checkpointer(storage::AuditStore& store, Logger log, std::string host)
    : store_(store), log_(std::move(log)), host_(std::move(host)) {}

void Checkpointer::configure(std::optional<ed25519::PrivateKey> key, const AuditSection& audit) {
  std::lock_guard lock(mu_);
  key_ = key ? std::make_shared<const ed25519::PrivateKey>(std::move(*key)) : nullptr;
  interval_ = audit.checkpoint_interval;
  events_ = audit.checkpoint_events;
}

bool Checkpointer::enabled() const {
  std::lock_guard lock(mu_);
  return key_ != nullptr;
}

Status Checkpointer::start(Timestamp now) {
  // Through a write transaction: the connection is shared with the writers (it is rolled back).
  auto txn = store_.begin();
  if (!txn.ok()) return txn.take_error();
  auto head = txn->head();
  if (!head.ok()) return head.take_error();
  auto last = storage::read_last_checkpoint(txn->db());
  if (!last.ok()) return last.take_error();
  std::lock_guard lock(mu_);
  last_at_ = now;
  std::int64_t signed_seq = 0;
  if (*last) {
    signed_seq = (*last)->seq;
    if (auto at = parse_rfc3339((*last)->recorded_at); at.ok()) last_at_ = *at;
  }
  pending_ = head->seq - signed_seq;
  return ok_status();
}

void Checkpointer::committed(const EventCounts& counts) {
  std::int64_t n = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (i != static_cast<std::size_t>(EventKind::kCheckpointSigned)) n += counts[i];
  }
  pending_ += n;
}

bool Checkpointer::due(Timestamp now) const {
  std::lock_guard lock(mu_);
  const std::int64_t pending = pending_;
  if (!key_ || pending <= 0) return false;
  return pending >= events_ || now - last_at_ >= interval_;
}

std::int64_t Checkpointer::sign(Timestamp now) {
  std::lock_guard serial(sign_mu_);
  std::shared_ptr<const ed25519::PrivateKey> key;
  {
    std::lock_guard lock(mu_);
    key = key_;
  }
  if (!key) return 0;
  const std::int64_t pending = pending_;
  auto fail = [&](const Error& e) {
    log_.error("could not sign a checkpoint; retried at the next trigger", {{"error", e.message}});
    return std::int64_t{0};
  };
  auto txn = store_.begin();
  if (!txn.ok()) return fail(txn.error());
  auto signed_cp = storage::sign_checkpoint(*txn, *key, host_, now);
  if (!signed_cp.ok()) return fail(signed_cp.error());
  if (!*signed_cp) {
    pending_ -= pending;  // the database's last row is a checkpoint already
    return 0;
  }
  if (auto st = txn->commit(); !st.ok()) return fail(st.error());
  pending_ -= pending;
  const auto& cp = (*signed_cp)->checkpoint;
  log_.info("checkpoint signed",
            {{"seq", (*signed_cp)->seq}, {"head_seq", cp.head_seq}, {"key_id", cp.key_id}});
  std::function<void(std::int64_t, Timestamp)> callback;
  {
    std::lock_guard lock(mu_);
    last_at_ = now;
    callback = callback_;
  }
  if (callback) callback((*signed_cp)->seq, now);
  return (*signed_cp)->seq;
}

void Checkpointer::on_signed(std::function<void(std::int64_t, Timestamp)> callback) {
  std::lock_guard lock(mu_);
  callback_ = std::move(callback);
}

}  // namespace tw::daemon

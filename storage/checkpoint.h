#pragma once
// Signed checkpoints of the audit log (docs/database.md "Signed checkpoints").
//
// A `checkpoint_signed` event is appended right after the head it signs: its own seq is
// head_seq + 1 and its prev_hash is head_hash, so the chain itself ties the signature to every
// row before it. The detail is
//   {"head_seq":N,"head_hash":"…","signed_at":"RFC 3339","key_id":"16 hex","host":"…",
//    "signature":"base64 of 64 bytes"}
// and the signature is Ed25519 over checkpoint_message(): the fixed text
//   "tokenwarden checkpoint v1\nhead_seq=N\nhead_hash=H\nsigned_at=T\nkey_id=K\nhost=HOST\n".
// Anyone can check it with the public key and any Ed25519 implementation.
//
// Thread safety: pure functions.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tw::storage {

struct Checkpoint {
  std::int64_t head_seq = 0;
  std::string head_hash;
  std::string signed_at;  // RFC 3339, as recorded
  std::string key_id;
  std::string host;
  std::string signature;  // base64 (standard alphabet, padded) of the 64 signature bytes
};

// The bytes that are signed (everything but the signature).
std::string checkpoint_message(const Checkpoint& c);
// The event's detail (canonical JSON, keys in the order above).
std::string checkpoint_detail(const Checkpoint& c);
// nullopt if the detail is not a complete checkpoint (a field missing or of the wrong type).
std::optional<Checkpoint> parse_checkpoint_detail(std::string_view detail);

}  // namespace tw::storage

#pragma once
// Ed25519 keys and signatures for the audit log's signed checkpoints (OpenSSL 3, EVP).
//
// Files are PEM: the private key as PKCS#8 ("PRIVATE KEY"), the public key as SubjectPublicKeyInfo
// ("PUBLIC KEY"), the forms `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` read
// and write. A key's id is the first 16 hex digits of SHA-256 over its 32 raw public-key bytes.
//
// Thread safety: a key is immutable after loading; sign/verify may be called from any thread.
// Errors: kIo (a file that cannot be read or written, naming the file) or kInvalidArgument
// (not an Ed25519 key, naming the file but never its content).

#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace tw::ed25519 {

class PrivateKey;

class PublicKey {
 public:
  // PEM "PUBLIC KEY" text.
  static Result<PublicKey> from_pem(std::string_view pem, const std::string& origin);
  static Result<PublicKey> load(const std::string& path);
  PublicKey(const PublicKey&);
  PublicKey& operator=(const PublicKey&);
  PublicKey(PublicKey&&) noexcept;
  PublicKey& operator=(PublicKey&&) noexcept;
  ~PublicKey();

  const std::string& key_id() const { return key_id_; }
  std::string pem() const;
  // The 64-byte signature `signature` (raw bytes) over `message`.
  bool verify(std::string_view message, std::string_view signature) const;

 private:
  friend class PrivateKey;
  struct Impl;
  explicit PublicKey(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
  std::string key_id_;
};

class PrivateKey {
 public:
  static Result<PrivateKey> generate();
  // PEM "PRIVATE KEY" text; `origin` names it in errors.
  static Result<PrivateKey> from_pem(std::string_view pem, const std::string& origin);
  static Result<PrivateKey> load(const std::string& path);
  PrivateKey(PrivateKey&&) noexcept;
  PrivateKey& operator=(PrivateKey&&) noexcept;
  ~PrivateKey();

  const PublicKey& public_key() const { return public_; }
  const std::string& key_id() const { return public_.key_id(); }
  // PEM "PRIVATE KEY" text (keygen writes it to a 0600 file; nothing else should call this).
  std::string pem() const;
  // 64 raw signature bytes.
  std::string sign(std::string_view message) const;

 private:
  struct Impl;
  PrivateKey(std::unique_ptr<Impl> impl, PublicKey pub);
  // Takes ownership of an Ed25519 private key and derives its public key.
  static Result<PrivateKey> adopt(evp_pkey_st* owned);
  std::unique_ptr<Impl> impl_;
  PublicKey public_;
};

}  // namespace tw::ed25519

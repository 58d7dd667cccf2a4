#include "core/ed25519.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <filesystem>
#include <fstream>

#include "core/sha256.h"
#include "core/strings.h"

namespace tw::ed25519 {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

std::string named(const std::string& origin) { return "\"" + printable(origin, 200) + "\""; }

constexpr std::size_t kMaxKeyFile = 64 * 1024;

// A key file: a regular file (never a FIFO or a device, which could block or never end), read
// whole into one buffer that the caller cleanses.
Result<std::string> read_file(const std::string& path, const char* what) {
  const std::string cannot = std::string("cannot read the ") + what + " " + named(path);
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (ec) return make_error(ErrorCode::kIo, cannot + ": " + ec.message());
  if (!std::filesystem::is_regular_file(status)) {
    return make_error(ErrorCode::kIo, cannot + ": not a regular file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, cannot);
  std::string text(kMaxKeyFile + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return make_error(ErrorCode::kIo, cannot);
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxKeyFile) {
    OPENSSL_cleanse(text.data(), text.size());
    return make_error(ErrorCode::kInvalidArgument,
                      named(path) + " is too large to be an Ed25519 " + what);
  }
  return text;
}

// An encrypted key is refused, never prompted for: the daemon has no terminal to ask on.
int no_passphrase(char*, int, int, void*) { return -1; }

std::string raw_public(EVP_PKEY* key) {
  std::string raw(32, '\0');
  std::size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(key, reinterpret_cast<unsigned char*>(raw.data()), &len) != 1) {
    return {};
  }
  raw.resize(len);
  return raw;
}

std::string to_pem(EVP_PKEY* key, bool is_private) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio) return {};
  int ok = is_private ? PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr,
                                                      nullptr)
                      : PEM_write_bio_PUBKEY(bio.get(), key);
  if (ok != 1) return {};
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

Pkey parse_pem(std::string_view pem, bool is_private) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return nullptr;
  EVP_PKEY* key = is_private ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr)
                             : PEM_read_bio_PUBKEY(bio.get(), nullptr, no_passphrase, nullptr);
  return Pkey(key);
}

}  // namespace

struct PublicKey::Impl {
  Pkey key;
};
struct PrivateKey::Impl {
  Pkey key;
};

PublicKey::PublicKey(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {
  key_id_ = sha256_hex(raw_public(impl_->key.get())).substr(0, 16);
}
PublicKey::PublicKey(const PublicKey&) = default;
PublicKey& PublicKey::operator=(const PublicKey&) = default;
PublicKey::PublicKey(PublicKey&&) noexcept = default;
PublicKey& PublicKey::operator=(PublicKey&&) noexcept = default;
PublicKey::~PublicKey() = default;

Result<PublicKey> PublicKey::from_pem(std::string_view pem, const std::string& origin) {
  Pkey key = parse_pem(pem, false);
  if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_ED25519) {
    return make_error(ErrorCode::kInvalidArgument,
                      named(origin) +
                          " is not an Ed25519 public key in PEM form (\"-----BEGIN "
                          "PUBLIC KEY-----\", as `tokenwarden keygen` writes it)");
  }
  auto impl = std::make_shared<Impl>();
  impl->key = std::move(key);
  return PublicKey(std::move(impl));
}

Result<PublicKey> PublicKey::load(const std::string& path) {
  auto text = read_file(path, "public key");
  if (!text.ok()) return text.take_error();
  return from_pem(*text, path);
}

std::string PublicKey::pem() const { return to_pem(impl_->key.get(), false); }

bool PublicKey::verify(std::string_view message, std::string_view signature) const {
  if (signature.size() != 64) return false;
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx) return false;
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, impl_->key.get()) != 1) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

PrivateKey::PrivateKey(std::unique_ptr<Impl> impl, PublicKey pub)
    : impl_(std::move(impl)), public_(std::move(pub)) {}
PrivateKey::PrivateKey(PrivateKey&&) noexcept = default;
PrivateKey& PrivateKey::operator=(PrivateKey&&) noexcept = default;
PrivateKey::~PrivateKey() = default;

Result<PrivateKey> PrivateKey::adopt(EVP_PKEY* owned) {
  Pkey key(owned);
  std::string pub = raw_public(key.get());
  Pkey pub_key(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(pub.data()), pub.size()));
  if (!pub_key) return make_error(ErrorCode::kInternal, "OpenSSL could not derive a public key");
  auto pimpl = std::make_shared<PublicKey::Impl>();
  pimpl->key = std::move(pub_key);
  auto impl = std::make_unique<Impl>();
  impl->key = std::move(key);
  return PrivateKey(std::move(impl), PublicKey(std::move(pimpl)));
}

Result<PrivateKey> PrivateKey::generate() {
  EVP_PKEY* raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (raw == nullptr) {
    return make_error(ErrorCode::kInternal, "OpenSSL could not generate an Ed25519 key");
  }
  return adopt(raw);
}

Result<PrivateKey> PrivateKey::from_pem(std::string_view pem, const std::string& origin) {
  Pkey key = parse_pem(pem, true);
  if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_ED25519) {
    return make_error(ErrorCode::kInvalidArgument,
                      named(origin) +
                          " is not an Ed25519 private key in PEM form (\"-----BEGIN "
                          "PRIVATE KEY-----\", as `tokenwarden keygen` writes it)");
  }
  return adopt(key.release());
}

Result<PrivateKey> PrivateKey::load(const std::string& path) {
  auto text = read_file(path, "private key");
  if (!text.ok()) return text.take_error();
  auto key = from_pem(*text, path);
  OPENSSL_cleanse(text->data(), text->size());
  return key;
}

std::string PrivateKey::pem() const { return to_pem(impl_->key.get(), true); }

std::string PrivateKey::sign(std::string_view message) const {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  std::string sig(64, '\0');
  std::size_t len = sig.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, impl_->key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    return {};
  }
  sig.resize(len);
  return sig;
}

}  // namespace tw::ed25519

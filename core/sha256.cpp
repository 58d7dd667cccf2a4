#include "core/sha256.h"

#include <openssl/evp.h>

#include <cstdlib>
#include <memory>

namespace tw {
namespace {

std::string to_hex(const unsigned char* data, unsigned int len) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(static_cast<std::size_t>(len) * 2, '0');
  for (unsigned int i = 0; i < len; ++i) {
    out[2 * i] = kHex[data[i] >> 4];
    out[2 * i + 1] = kHex[data[i] & 0xF];
  }
  return out;
}

}  // namespace

std::string sha256_hex(std::string_view a, std::string_view b) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // The digest is fetched once (OpenSSL 3 looks it up, under a lock, on every EVP_sha256() use),
  // and each thread reuses one context: the chain is hashed a million times by verify.
  static EVP_MD* const md_sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> tctx(EVP_MD_CTX_new(),
                                                                            &EVP_MD_CTX_free);
  EVP_MD_CTX* ctx = tctx.get();
  if (ctx == nullptr || md_sha256 == nullptr || EVP_DigestInit_ex(ctx, md_sha256, nullptr) != 1 ||
      EVP_DigestUpdate(ctx, a.data(), a.size()) != 1 ||
      EVP_DigestUpdate(ctx, b.data(), b.size()) != 1 || EVP_DigestFinal_ex(ctx, md, &len) != 1) {
    std::abort();
  }
  return to_hex(md, len);
}

std::string sha256_hex(std::string_view data) { return sha256_hex(data, {}); }

}  // namespace tw

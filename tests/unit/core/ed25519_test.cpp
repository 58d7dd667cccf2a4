// Tests for core/ed25519.h: key generation, PEM round trips, signatures, key ids, and the errors
// of files that are not Ed25519 keys (which must never quote the file's content).

#include "core/ed25519.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "core/sha256.h"
#include "tests/unit/core/test_support.h"

namespace tw::ed25519 {
namespace {

// From `openssl genpkey -algorithm x25519` and `-algorithm ec` (P-256): valid PEM, wrong type.
constexpr const char* kX25519Pem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VuBCIEIEBo/eY4QpXrV6b7v8QYiwSHJ7ormvAQ5iq7A8J1/TNg\n"
    "-----END PRIVATE KEY-----\n";
constexpr const char* kP256Pem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgRv8ThuS7YET7wPDG\n"
    "C+83+hGPNIuPBqmFDPxtP2rqcpahRANCAARcZhG6K/G00kZI3T/s4Op1vgF/kNT2\n"
    "wKOakoN7rLotW5z9a082FbDV6BIkHCZpM+yghUgFDhV/2pf5pKE+y1OL\n"
    "-----END PRIVATE KEY-----\n";

PrivateKey generated() {
  auto k = PrivateKey::generate();
  EXPECT_TRUE(k.ok());
  return std::move(*k);
}

TEST(Ed25519, SignsAndVerifies) {
  PrivateKey key = generated();
  std::string sig = key.sign("message");
  EXPECT_EQ(sig.size(), 64u);
  EXPECT_TRUE(key.public_key().verify("message", sig));
  EXPECT_FALSE(key.public_key().verify("messagE", sig));
  std::string bad = sig;
  bad[10] = static_cast<char>(bad[10] ^ 1);
  EXPECT_FALSE(key.public_key().verify("message", bad));
  EXPECT_FALSE(key.public_key().verify("message", sig.substr(0, 63)));
  EXPECT_FALSE(key.public_key().verify("message", ""));
}

TEST(Ed25519, AnotherKeyDoesNotVerify) {
  PrivateKey a = generated();
  PrivateKey b = generated();
  EXPECT_NE(a.key_id(), b.key_id());
  EXPECT_FALSE(b.public_key().verify("m", a.sign("m")));
}

TEST(Ed25519, PemRoundTripKeepsTheKey) {
  PrivateKey key = generated();
  std::string pem = key.pem();
  EXPECT_NE(pem.find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
  auto again = PrivateKey::from_pem(pem, "test");
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->key_id(), key.key_id());
  EXPECT_TRUE(key.public_key().verify("x", again->sign("x")));

  std::string pub = key.public_key().pem();
  EXPECT_NE(pub.find("-----BEGIN PUBLIC KEY-----"), std::string::npos);
  auto p = PublicKey::from_pem(pub, "test");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->key_id(), key.key_id());
  EXPECT_TRUE(p->verify("x", key.sign("x")));
}

TEST(Ed25519, KeyIdIsSixteenHexDigits) {
  PrivateKey key = generated();
  ASSERT_EQ(key.key_id().size(), 16u);
  EXPECT_EQ(key.key_id().find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(Ed25519, LoadsFilesWrittenByPem) {
  tw::testing::TempDir dir;
  PrivateKey key = generated();
  auto loaded = PrivateKey::load(dir.write("k.pem", key.pem()));
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->key_id(), key.key_id());
  auto pub = PublicKey::load(dir.write("k.pub", key.public_key().pem(), 0644));
  ASSERT_TRUE(pub.ok()) << pub.error().message;
  EXPECT_EQ(pub->key_id(), key.key_id());
}

TEST(Ed25519, MissingFileIsAnIoErrorNamingIt) {
  auto k = PrivateKey::load("/nonexistent/dir/checkpoint.key");
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.error().code, ErrorCode::kIo);
  EXPECT_NE(k.error().message.find("/nonexistent/dir/checkpoint.key"), std::string::npos);
  EXPECT_FALSE(PublicKey::load("/nonexistent/dir/checkpoint.pub").ok());
}

TEST(Ed25519, OtherKeyTypesAndGarbageAreRejectedWithoutQuotingThem) {
  tw::testing::TempDir dir;
  for (const char* text : {kX25519Pem, kP256Pem, "not a key at all", ""}) {
    auto k = PrivateKey::load(dir.write("k.pem", text));
    ASSERT_FALSE(k.ok()) << text;
    EXPECT_NE(k.error().message.find("k.pem"), std::string::npos) << k.error().message;
    EXPECT_EQ(k.error().message.find("MC4CAQAw"), std::string::npos) << k.error().message;
    EXPECT_EQ(k.error().message.find("MIGHAgEA"), std::string::npos) << k.error().message;
  }
}

TEST(Ed25519, APrivateKeyIsNotAPublicKeyAndBack) {
  PrivateKey key = generated();
  EXPECT_FALSE(PublicKey::from_pem(key.pem(), "private").ok());
  EXPECT_FALSE(PrivateKey::from_pem(key.public_key().pem(), "public").ok());
  auto e = PublicKey::from_pem(key.pem(), "private");
  ASSERT_FALSE(e.ok());
  // The private key's base64 body never appears in an error.
  std::string body = key.pem().substr(28, 40);
  EXPECT_EQ(e.error().message.find(body), std::string::npos);
}

}  // namespace
}  // namespace tw::ed25519

namespace tw::ed25519 {
namespace {

// `openssl genpkey -algorithm ed25519 -aes256 -pass pass:secret`
constexpr const char* kEncryptedKey = R"(-----BEGIN ENCRYPTED PRIVATE KEY-----
MIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAjgqpsD17+QHAICCAAw
DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEEULxy5N6JN3jwCyRSwVCF0EQFXT
4rlaiMenDWxeiqSgxMyFkpzAzV2BSmWVldwSoVJt3DWa3S+YV17PrfpIc9xYnO6H
jSVX3dhwdxRZYETYY4Y=
-----END ENCRYPTED PRIVATE KEY-----
)";

TEST(Ed25519, AnEncryptedKeyIsRefusedWithoutAskingForAPassphrase) {
  // OpenSSL's default would prompt on the terminal; a daemon must fail instead.
  auto k = PrivateKey::from_pem(kEncryptedKey, "enc.key");
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(k.error().message.find("MIGb"), std::string::npos);
}

TEST(Ed25519, AKeyPathThatIsNotARegularFileIsRefused) {
  tw::testing::TempDir dir;
  const std::string fifo = dir.file("key.fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto k = PrivateKey::load(fifo);  // would block forever if it were opened and read
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.error().code, ErrorCode::kIo);
  EXPECT_NE(k.error().message.find("not a regular file"), std::string::npos) << k.error().message;
  auto d = PublicKey::load(dir.path().string());
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().message.find("not a regular file"), std::string::npos);
}

}  // namespace
}  // namespace tw::ed25519

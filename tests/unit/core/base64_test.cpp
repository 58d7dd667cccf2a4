// Tests for core/base64.h: the RFC 4648 §10 vectors, base64url, and what decoding refuses.

#include "core/base64.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tw {
namespace {

TEST(Base64, Rfc4648Vectors) {
  const std::vector<std::pair<std::string, std::string>> vectors = {{"", ""},
                                                                    {"f", "Zg=="},
                                                                    {"fo", "Zm8="},
                                                                    {"foo", "Zm9v"},
                                                                    {"foob", "Zm9vYg=="},
                                                                    {"fooba", "Zm9vYmE="},
                                                                    {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(plain), encoded) << plain;
    EXPECT_EQ(base64_decode(encoded), plain) << encoded;
  }
}

TEST(Base64, BinaryRoundTrip) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n = 0; n <= all.size(); n += 37) {
    const std::string bytes = all.substr(0, n);
    EXPECT_EQ(base64_decode(base64_encode(bytes)), bytes) << n;
  }
  const std::string nul("\0\0\0\0", 4);
  EXPECT_EQ(base64_decode(base64_encode(nul)), nul);
}

TEST(Base64, PaddingMayBeLeftOut) {
  EXPECT_EQ(base64_decode("Zg"), "f");
  EXPECT_EQ(base64_decode("Zm8"), "fo");
  EXPECT_EQ(base64_decode("YWxpY2U6czNjcmV0"), "alice:s3cret");
}

TEST(Base64, RefusesWhatIsNotBase64) {
  const std::vector<std::string> texts = {"!!!not base64!!!",
                                          "Zm9v YmFy",
                                          " Zm9v",
                                          "Zm9v\n",
                                          "Zm9v-_",
                                          "Z",
                                          "Zm9vY",
                                          "Zg=",
                                          "Zg===",
                                          "Z===",
                                          "====",
                                          "Zg==Zg==",
                                          "Zg==garbage",
                                          "Zm9v=",
                                          "Zg==\n",
                                          std::string("Zm9v\0", 5)};
  for (const auto& text : texts) {
    EXPECT_EQ(base64_decode(text), std::nullopt) << text;
  }
}

TEST(Base64Url, UrlAlphabetWithoutPadding) {
  EXPECT_EQ(base64url_encode(""), "");
  EXPECT_EQ(base64url_encode("f"), "Zg");
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_EQ(base64_encode("\xfb\xff"), "+/8=");
}

}  // namespace
}  // namespace tw

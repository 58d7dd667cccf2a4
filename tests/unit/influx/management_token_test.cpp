// Tests for influx/management_token.h: reading the management token file before each call.

#include "influx/management_token.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/core/test_support.h"

namespace tw::influx {
namespace {

using tw::testing::TempDir;

TEST(ResolveTokenPath, RelativeNamesUseTheCredentialsDirectory) {
  EXPECT_EQ(resolve_token_path("prod.token", "/run/credentials/tokenwarden.service"),
            "/run/credentials/tokenwarden.service/prod.token");
  EXPECT_EQ(resolve_token_path("/etc/tokenwarden/prod.token", "/run/credentials/x"),
            "/etc/tokenwarden/prod.token");
  EXPECT_EQ(resolve_token_path("prod.token", ""), "prod.token");
  EXPECT_EQ(resolve_token_path("", "/run/credentials/x"), "");
}

TEST(ReadManagementToken, TrimsWhitespaceAndNewline) {
  TempDir dir;
  for (const char* content :
       {"apiv1_secret", "apiv1_secret\n", "  apiv1_secret \r\n", "\n\tapiv1_secret\n\n"}) {
    std::string path = dir.write("token", content);
    auto t = read_management_token(path, "");
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_EQ(*t, "apiv1_secret");
  }
}

TEST(ReadManagementToken, RelativePathResolvedAgainstCredentialsDirectory) {
  TempDir dir;
  dir.write("prod-eu.token", "from-credentials-dir\n");
  auto t = read_management_token("prod-eu.token", dir.path().string());
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(*t, "from-credentials-dir");
}

TEST(ReadManagementToken, RereadsTheFileEachTime) {
  TempDir dir;
  std::string path = dir.write("token", "first");
  ASSERT_EQ(read_management_token(path, "").value_or(""), "first");
  dir.write("token", "rotated");
  EXPECT_EQ(read_management_token(path, "").value_or(""), "rotated");
}

TEST(ReadManagementToken, MissingFileNamesThePath) {
  TempDir dir;
  std::string path = dir.file("missing.token");
  auto t = read_management_token(path, "");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ErrorCode::kIo);
  EXPECT_NE(t.error().message.find(path), std::string::npos) << t.error().message;

  auto rel = read_management_token("missing.token", dir.path().string());
  ASSERT_FALSE(rel.ok());
  EXPECT_NE(rel.error().message.find(path), std::string::npos)
      << "the message should name the resolved path: " << rel.error().message;
}

TEST(ReadManagementToken, EmptyFileIsAnError) {
  TempDir dir;
  for (const char* content : {"", "\n", "   \t\r\n"}) {
    std::string path = dir.write("token", content);
    auto t = read_management_token(path, "");
    ASSERT_FALSE(t.ok()) << "accepted \"" << content << "\"";
    EXPECT_EQ(t.error().code, ErrorCode::kIo);
    EXPECT_NE(t.error().message.find(path), std::string::npos);
    EXPECT_NE(t.error().message.find("empty"), std::string::npos) << t.error().message;
  }
}

TEST(ReadManagementToken, ContentNeverAppearsInErrors) {
  TempDir dir;
  const std::string secret = "apiv1_TopSecretManagementToken";
  for (const std::string& content :
       {secret + " second-word", secret + "\n" + secret, secret + "\x01", secret + "\x7f",
        std::string(70 * 1024, 'S') + secret}) {
    std::string path = dir.write("token", content);
    auto t = read_management_token(path, "");
    ASSERT_FALSE(t.ok()) << "accepted a malformed token file";
    EXPECT_EQ(t.error().code, ErrorCode::kIo);
    EXPECT_EQ(t.error().message.find(secret), std::string::npos) << t.error().message;
    EXPECT_EQ(t.error().message.find("second-word"), std::string::npos) << t.error().message;
    EXPECT_EQ(t.error().message.find("SSSS"), std::string::npos) << t.error().message;
    EXPECT_NE(t.error().message.find(path), std::string::npos) << t.error().message;
  }
}

TEST(ReadManagementToken, DirectoryInsteadOfFile) {
  TempDir dir;
  auto t = read_management_token(dir.path().string(), "");
  EXPECT_FALSE(t.ok());
}

TEST(ReadManagementToken, HostilePathIsQuotedTerminalSafe) {
  TempDir dir;
  std::string path = dir.file("evil\nname\x1b[2J");
  auto t = read_management_token(path, "");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().message.find('\n'), std::string::npos);
  EXPECT_EQ(t.error().message.find('\x1b'), std::string::npos);
}

}  // namespace
}  // namespace tw::influx

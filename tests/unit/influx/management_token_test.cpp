// Tests for influx/management_token.h: reading the management token file before each call.

#include "influx/management_token.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

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
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ErrorCode::kIo);
  EXPECT_EQ(t.error().message,
            "token file \"" + dir.path().string() +
                "\" is a directory; token_file must name the file that holds the token");
}

TEST(ReadManagementToken, ByteOrderMarkIsAPreciseError) {
  TempDir dir;
  const std::string secret = "apiv1_BomSecret";
  std::string path = dir.write("token", "\xEF\xBB\xBF" + secret + "\n");
  auto t = read_management_token(path, "");
  ASSERT_FALSE(t.ok()) << "the BOM would be sent in the Authorization header";
  EXPECT_EQ(t.error().message,
            "token file \"" + path +
                "\" starts with a UTF-8 byte order mark; save it as plain text without one");
  EXPECT_EQ(t.error().message.find(secret), std::string::npos);
}

TEST(ReadManagementToken, NonAsciiIsRefused) {
  TempDir dir;
  std::string path = dir.write("token", "apiv1_caf\xC3\xA9\n");
  auto t = read_management_token(path, "");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("printable ASCII"), std::string::npos) << t.error().message;
}

TEST(CheckTokenFile, PrivateFileIsFine) {
  TempDir dir;
  for (int mode : {0600, 0400}) {
    std::string path = dir.write("token", "apiv1_secret\n", mode);
    auto c = check_token_file(path, "");
    EXPECT_FALSE(c.error.has_value()) << *c.error;
    EXPECT_TRUE(c.warnings.empty()) << c.warnings.front();
  }
}

TEST(CheckTokenFile, ReadableByGroupOrOthersIsAWarning) {
  TempDir dir;
  for (int mode : {0644, 0640, 0604, 0666}) {
    std::string path = dir.write("token", "apiv1_secret\n", mode);
    auto c = check_token_file(path, "");
    EXPECT_FALSE(c.error.has_value()) << "it still works: " << *c.error;
    ASSERT_EQ(c.warnings.size(), 1u) << "mode " << mode;
    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode));
    EXPECT_EQ(c.warnings[0], "\"" + path + "\" is readable by group or others (mode " + octal +
                                 "); only the daemon's user should read it (chmod 600)");
  }
}

TEST(CheckTokenFile, ErrorsOfTheReaderAreErrors) {
  TempDir dir;
  struct Case {
    std::string content;
    std::string expected;
  };
  for (const auto& [content, expected] :
       std::vector<Case>{{"\xEF\xBB\xBF"
                          "apiv1_secret\n",
                          "starts with a UTF-8 byte order mark"},
                         {"", "is empty"},
                         {"apiv1_secret second-word\n", "must hold one token"}}) {
    std::string path = dir.write("token", content);
    auto c = check_token_file(path, "");
    ASSERT_TRUE(c.error.has_value()) << "accepted: " << content;
    EXPECT_EQ(c.error->rfind("token file \"" + path + "\" ", 0), 0u) << *c.error;
    EXPECT_NE(c.error->find(expected), std::string::npos) << *c.error;
    EXPECT_EQ(c.error->find("apiv1_secret"), std::string::npos) << *c.error;
  }
}

TEST(CheckTokenFile, DirectoryIsAnError) {
  TempDir dir;
  auto c = check_token_file(dir.path().string(), "");
  ASSERT_TRUE(c.error.has_value());
  EXPECT_NE(c.error->find("is a directory"), std::string::npos) << *c.error;
  EXPECT_TRUE(c.warnings.empty());
}

TEST(CheckTokenFile, MissingFileIsOnlyAWarning) {
  // check-config may run before systemd provides the credential, or as another user.
  TempDir dir;
  auto c = check_token_file("prod.token", dir.path().string());
  EXPECT_FALSE(c.error.has_value()) << *c.error;
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_EQ(c.warnings[0], "\"" + dir.file("prod.token") +
                               "\" is not readable by this user: No such file or directory");
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

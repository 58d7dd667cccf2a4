// Tests for the "never monitor nothing" rules of daemon/config.h and daemon/preflight.h: an empty,
// truncated or directory configuration is an error, the hash of a rejected file is kept for the
// config_rejected event, and check_runtime_files() finds the TLS and token-file problems a start
// would hit (garbage PEM, directories, byte order marks, files readable by others).

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/sha256.h"
#include "daemon/config.h"
#include "daemon/preflight.h"
#include "tests/unit/core/test_support.h"

namespace tw::daemon {
namespace {

using tw::testing::TempDir;
using tw::testing::ts;

const Timestamp kNow = ts("2026-06-01T00:00:00Z");

std::string all(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += "\n  " + s;
  return out;
}

std::string cluster(const std::string& token_file) {
  return "[[clusters]]\nname = \"c0\"\ntype = \"clustered\"\nurl = "
         "\"https://h0.example.com/api/v0\"\n"
         "token_file = \"" +
         token_file + "\"\n";
}

TEST(EmptyConfig, AnEmptyFileIsOneClearError) {
  for (const char* text : {"", "\n", "  \n\t\n"}) {
    auto r = load_config_string(text, "/etc/tokenwarden/tokenwarden.toml", kNow);
    EXPECT_FALSE(r.config.has_value());
    ASSERT_EQ(r.errors.size(), 1u) << all(r.errors);
    EXPECT_EQ(
        r.errors[0],
        "/etc/tokenwarden/tokenwarden.toml: the file is empty; a configuration needs at least one "
        "[[clusters]] table");
    EXPECT_EQ(r.hash, sha256_hex(text)) << "the rejected file's hash is kept";
  }
}

TEST(EmptyConfig, NoClustersIsAnError) {
  // A truncated file, one with only comments, or one that lost its [[clusters]] tables.
  for (const char* text :
       {"# tokenwarden\n", "[daemon]\npoll_interval = \"1m\"\n",
        "[daemon]\n[http]\nlisten = \"\"\n[[policies]]\nname = \"p\"\nkind = \"max_age\"\n"
        "max_age = \"1d\"\n"}) {
    auto r = load_config_string(text, "<string>", kNow);
    EXPECT_FALSE(r.config.has_value()) << text;
    ASSERT_EQ(r.errors.size(), 1u) << all(r.errors);
    EXPECT_EQ(r.errors[0],
              "clusters: no [[clusters]] configured; at least one is required, or nothing would be "
              "monitored");
    EXPECT_EQ(r.hash, sha256_hex(text));
  }
}

TEST(EmptyConfig, ReportedWithTheOtherProblems) {
  auto r = load_config_string("[daemon]\ncolour = \"red\"\n", "<string>", kNow);
  ASSERT_EQ(r.errors.size(), 2u) << all(r.errors);
  EXPECT_EQ(r.errors[0].rfind("daemon.colour: unknown key", 0), 0u) << r.errors[0];
  EXPECT_EQ(r.errors[1].rfind("clusters: no [[clusters]] configured", 0), 0u) << r.errors[1];
}

TEST(EmptyConfig, ADirectoryIsNotAConfiguration) {
  TempDir dir;
  auto r = load_config_file(dir.path().string(), kNow);
  EXPECT_FALSE(r.config.has_value());
  ASSERT_EQ(r.errors.size(), 1u) << all(r.errors);
  EXPECT_EQ(r.errors[0], dir.path().string() +
                             ": cannot read the configuration file: is a directory, not a file");
  EXPECT_EQ(r.hash, "") << "nothing was read";
}

TEST(EmptyConfig, ARejectedFileKeepsItsHash) {
  TempDir dir;
  const std::string text = cluster("/etc/t0") + "[bogus]\n";
  auto r = load_config_file(dir.write("tokenwarden.toml", text), kNow);
  EXPECT_FALSE(r.config.has_value());
  EXPECT_EQ(r.hash, sha256_hex(text));
  auto missing = load_config_file(dir.file("absent.toml"), kNow);
  EXPECT_EQ(missing.hash, "");
}

TEST(EmptyConfig, AnEmptyPolicyFileIsNoPolicies) {
  // simulate --policies: the base configuration has the clusters.
  TempDir dir;
  auto base = load_config_string(cluster("/etc/t0"), "<string>", kNow);
  ASSERT_TRUE(base.config.has_value()) << all(base.errors);
  auto r = load_policy_file(dir.write("candidate.toml", ""), *base.config, kNow);
  ASSERT_TRUE(r.config.has_value()) << all(r.errors);
  EXPECT_TRUE(r.config->policies.empty());
  EXPECT_EQ(r.config->clusters.size(), 1u);

  auto d = load_policy_file(dir.path().string(), *base.config, kNow);
  ASSERT_EQ(d.errors.size(), 1u);
  EXPECT_EQ(d.errors[0],
            dir.path().string() + ": cannot read the policy file: is a directory, not a file");
}

TEST(AlertingUrls, ErrorsShowTheUrlRedactedAsPrintDoes) {
  const std::string text =
      cluster("/etc/t0") +
      "[alerting]\n"
      "alertmanager_url = \"http://am:S3cretPass@127.0.0.1:9093\"\n"
      "webhook_url = \"https://hooks.example.com/services/T0/B0/S3cretPath?x=1\"\n";
  auto r = load_config_string(text, "<string>", kNow);
  EXPECT_FALSE(r.config.has_value());
  ASSERT_EQ(r.errors.size(), 2u) << all(r.errors);
  EXPECT_EQ(
      r.errors[0],
      "alerting.alertmanager_url: invalid URL \"http://[redacted]@127.0.0.1:9093\": credentials in "
      "the URL are not supported (line 7)");
  EXPECT_EQ(
      r.errors[1],
      "alerting.webhook_url: invalid URL \"https://hooks.example.com/[redacted]\": query strings "
      "and fragments are not supported (line 8)");
  for (const auto& e : r.errors) EXPECT_EQ(e.find("S3cret"), std::string::npos) << e;
}

// --- check_runtime_files ----------------------------------------------------------------------

class RuntimeFiles : public ::testing::Test {
 protected:
  Config config(const std::string& text) {
    auto r = load_config_string(text, dir_.file("tokenwarden.toml"), kNow);
    EXPECT_TRUE(r.config.has_value()) << all(r.errors);
    return r.config.value_or(Config{});
  }
  TempDir dir_;
};

TEST_F(RuntimeFiles, APrivateTokenFileAndNoTlsAreFine) {
  auto c = config(cluster(dir_.write("t0", "apiv1_secret\n", 0600)));
  auto r = check_runtime_files(c, "");
  EXPECT_TRUE(r.errors.empty()) << all(r.errors);
  EXPECT_TRUE(r.warnings.empty()) << all(r.warnings);
}

TEST_F(RuntimeFiles, TokenFileProblemsCarryTheKeyPath) {
  const std::string ok = dir_.write("ok", "apiv1_secret\n", 0600);
  const std::string open = dir_.write("open", "apiv1_secret\n", 0644);
  const std::string bom = dir_.write("bom",
                                     "\xEF\xBB\xBF"
                                     "apiv1_secret\n");
  std::string text = cluster(ok) + cluster(open) + cluster(bom) + cluster(dir_.path().string()) +
                     cluster(dir_.file("absent"));
  for (int i = 0; i < 5; ++i) {  // distinct names
    auto at = text.find("name = \"c0\"");
    text.replace(at, 11, "name = \"c" + std::to_string(i + 10) + "\"");
  }
  auto r = check_runtime_files(config(text), "");
  ASSERT_EQ(r.errors.size(), 2u) << all(r.errors);
  EXPECT_EQ(r.errors[0],
            "clusters[2].token_file: token file \"" + bom +
                "\" starts with a UTF-8 byte order mark; save it as plain text without one");
  EXPECT_EQ(r.errors[1],
            "clusters[3].token_file: token file \"" + dir_.path().string() +
                "\" is a directory; token_file must name the file that holds the token");
  ASSERT_EQ(r.warnings.size(), 2u) << all(r.warnings);
  EXPECT_EQ(r.warnings[0],
            "clusters[1].token_file: \"" + open +
                "\" is readable by group or others (mode 0644); only the daemon's user should "
                "read it (chmod 600)");
  EXPECT_EQ(r.warnings[1], "clusters[4].token_file: \"" + dir_.file("absent") +
                               "\" is not readable by this user: No such file or directory");
  for (const auto& s : r.errors) EXPECT_EQ(s.find("apiv1_secret"), std::string::npos) << s;
}

TEST_F(RuntimeFiles, RelativeTokenFilesAreLookedUpInTheCredentialsDirectory) {
  dir_.write("prod.token", "apiv1_secret\n", 0644);
  auto r = check_runtime_files(config(cluster("prod.token")), dir_.path().string());
  EXPECT_TRUE(r.errors.empty()) << all(r.errors);
  ASSERT_EQ(r.warnings.size(), 1u) << all(r.warnings);
  EXPECT_NE(r.warnings[0].find(dir_.file("prod.token")), std::string::npos) << r.warnings[0];
}

TEST_F(RuntimeFiles, GarbageTlsFilesAreAnError) {
  const std::string cert = dir_.write("cert.pem", "not a certificate\n");
  const std::string key = dir_.write("key.pem", "not a key\n");
  const std::string web =
      dir_.write("web.toml", "[tls]\ncert_file = \"cert.pem\"\nkey_file = \"key.pem\"\n");
  const std::string token = dir_.write("t0", "apiv1_secret\n");
  auto c =
      config("[http]\nlisten = \"127.0.0.1:0\"\nweb_config = \"" + web + "\"\n" + cluster(token));
  auto r = check_runtime_files(c, "");
  ASSERT_EQ(r.errors.size(), 1u) << all(r.errors);
  EXPECT_EQ(r.errors[0].rfind(
                "http.web_config: cannot load the TLS certificate or key (" + cert + "): ", 0),
            0u)
      << r.errors[0];
  EXPECT_EQ(r.errors[0].find('\n'), std::string::npos) << r.errors[0];

  // The endpoint disabled: its web config is not used, so not checked.
  auto off = config("[http]\nlisten = \"\"\nweb_config = \"" + web + "\"\n" + cluster(token));
  EXPECT_TRUE(check_runtime_files(off, "").errors.empty());
}

}  // namespace
}  // namespace tw::daemon

// Tests for daemon/preflight.h, the influxctl version floor: a too-old influxctl is an error, one
// that cannot be run a warning, each with its key path; each path runs once however many
// clusters share it; `only` picks one cluster; check_runtime_files() reports the same. Fake
// influxctl programs are shell scripts in a temp dir. (The token-file and TLS checks of
// check_runtime_files() are tested in config_safety_test.cpp.)

#include "daemon/preflight.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/unit/core/test_support.h"

namespace tw::daemon {
namespace {

using tw::testing::TempDir;

std::string all(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += "\n  " + s;
  return out;
}

class PreflightTest : public ::testing::Test {
 protected:
  // An influxctl that prints `version` and counts its runs in <name>.runs.
  std::string influxctl(const std::string& name, const std::string& version) {
    return dir_.write(name,
                      "#!/bin/sh\necho run >> '" + dir_.file(name + ".runs") +
                          "'\necho 'influxctl " + version + " linux/amd64'\n",
                      0700);
  }
  int runs(const std::string& name) const {
    const std::string text = tw::testing::read_file(dir_.file(name + ".runs"));
    return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
  }
  void add(const std::string& name, const std::string& path,
           influx::SourceType type = influx::SourceType::kInfluxctl) {
    ClusterConfig c;
    c.name = name;
    c.source.cluster = name;
    c.source.type = type;
    c.source.influxctl_path = path;
    config_.clusters.push_back(c);
  }

  TempDir dir_;
  Config config_;
};

TEST_F(PreflightTest, ARecentInfluxctlPasses) {
  add("prod", influxctl("new", "v2.10.0"));
  add("stage", influxctl("newer", "2.12.1"));
  auto r = check_influxctl_versions(config_);
  EXPECT_TRUE(r.errors.empty()) << all(r.errors);
  EXPECT_TRUE(r.warnings.empty()) << all(r.warnings);
}

TEST_F(PreflightTest, TooOldIsAnErrorMissingIsAWarningEachWithItsKey) {
  add("ok", influxctl("new", "2.10.0"));
  add("old", influxctl("old", "2.9.7"));
  add("missing", dir_.file("no-such-influxctl"));
  auto r = check_influxctl_versions(config_);
  ASSERT_EQ(r.errors.size(), 1u) << all(r.errors);
  EXPECT_EQ(r.errors[0].rfind("clusters[1].influxctl_path: ", 0), 0u) << r.errors[0];
  EXPECT_NE(r.errors[0].find("2.9.7"), std::string::npos) << r.errors[0];
  EXPECT_NE(r.errors[0].find("2.10.0"), std::string::npos) << "names the version needed";
  ASSERT_EQ(r.warnings.size(), 1u) << all(r.warnings);
  EXPECT_EQ(r.warnings[0].rfind("clusters[2].influxctl_path: ", 0), 0u) << r.warnings[0];
  EXPECT_NE(r.warnings[0].find("; its polls fail until it can be run"), std::string::npos)
      << r.warnings[0];
}

TEST_F(PreflightTest, EachPathRunsOnceAndEachClusterIsReported) {
  const std::string old = influxctl("old", "2.4.0");
  add("a", old);
  add("b", old);
  add("c", old);
  auto r = check_influxctl_versions(config_);
  EXPECT_EQ(runs("old"), 1) << "one run per distinct path";
  ASSERT_EQ(r.errors.size(), 3u) << all(r.errors);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(r.errors[static_cast<std::size_t>(i)].rfind(
                  "clusters[" + std::to_string(i) + "].influxctl_path: ", 0),
              0u);
  }
}

TEST_F(PreflightTest, OnlyTheNamedClusterAndOnlyInfluxctlSources) {
  add("rest", dir_.file("never-run"), influx::SourceType::kClustered);
  add("old", influxctl("old", "2.0.0"));
  add("new", influxctl("new", "2.10.1"));
  auto one = check_influxctl_versions(config_, "new");
  EXPECT_TRUE(one.errors.empty()) << all(one.errors);
  EXPECT_EQ(runs("old"), 0) << "a cluster not asked for is not checked";
  EXPECT_EQ(runs("new"), 1);
  auto every = check_influxctl_versions(config_);
  ASSERT_EQ(every.errors.size(), 1u) << all(every.errors);
  EXPECT_EQ(every.errors[0].rfind("clusters[1].", 0), 0u) << every.errors[0];
  EXPECT_TRUE(every.warnings.empty())
      << "a REST cluster's influxctl_path is not run: " << all(every.warnings);
}

TEST_F(PreflightTest, CheckRuntimeFilesIncludesTheVersions) {
  add("old", influxctl("old", "2.9.0"));
  add("missing", dir_.file("no-such-influxctl"));
  auto r = check_runtime_files(config_, "");
  ASSERT_EQ(r.errors.size(), 1u) << all(r.errors);
  EXPECT_EQ(r.errors[0].rfind("clusters[0].influxctl_path: ", 0), 0u) << r.errors[0];
  ASSERT_EQ(r.warnings.size(), 1u) << all(r.warnings);
  EXPECT_EQ(r.warnings[0].rfind("clusters[1].influxctl_path: ", 0), 0u) << r.warnings[0];
}

TEST_F(PreflightTest, ExportTlsFilesAndFileSinkDirectoriesMustExist) {
  ExportSinkConfig tls;
  tls.name = "siem";
  tls.type = ExportType::kSyslog;
  tls.address = "logs.example.com:6514";
  tls.tls = true;
  tls.ca_file = dir_.write("ca.pem", "not read");
  tls.cert_file = dir_.file("missing-cert.pem");
  tls.key_file = dir_.file("missing-key.pem");
  ExportSinkConfig file;
  file.name = "local";
  file.type = ExportType::kFile;
  file.path = dir_.file("no-such-dir/audit.jsonl");
  ExportSinkConfig fine = file;
  fine.name = "fine";
  fine.path = dir_.file("audit.jsonl");
  config_.audit.exports = {tls, file, fine};
  auto r = check_runtime_files(config_, "");
  ASSERT_EQ(r.errors.size(), 3u) << all(r.errors);
  EXPECT_EQ(r.errors[0].rfind("audit.export[0].cert_file: ", 0), 0u) << r.errors[0];
  EXPECT_EQ(r.errors[1].rfind("audit.export[0].key_file: ", 0), 0u) << r.errors[1];
  EXPECT_EQ(r.errors[2].rfind("audit.export[1].path: the directory ", 0), 0u) << r.errors[2];
}

}  // namespace
}  // namespace tw::daemon

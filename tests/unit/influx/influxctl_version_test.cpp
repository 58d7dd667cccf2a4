// Tests for influx/influxctl_version.cpp: reading the version influxctl prints, the floor, and
// how a run that fails is reported (the look-alike's answers are covered in
// influxctl_source_test.cpp; check-config/run/reload in tests/integration).

#include "influx/influxctl_version.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>

#include "tests/unit/core/test_support.h"

namespace tw::influx {
namespace {

using tw::testing::TempDir;

TEST(InfluxctlVersion, ParsesWhatVersionMightPrint) {
  struct Case {
    const char* output;
    std::optional<InfluxctlVersion> want;
  };
  for (const Case& c : {
           Case{"influxctl v2.12.0 (abc1234) linux/amd64\n", InfluxctlVersion{2, 12, 0}},
           Case{"2.10.0\n", InfluxctlVersion{2, 10, 0}},
           Case{"influxctl version 2.9.9 built 2025-03-01", InfluxctlVersion{2, 9, 9}},
           Case{"influxctl/v2.10.1-rc1 x86_64", InfluxctlVersion{2, 10, 1}},
           Case{"influxctl dev linux/amd64", std::nullopt},
           Case{"x86_64 2.1", std::nullopt},
           Case{"", std::nullopt},
           Case{"influxctl 1234567.1.1", std::nullopt},
       }) {
    EXPECT_EQ(parse_influxctl_version(c.output), c.want) << c.output;
  }
  EXPECT_LT((InfluxctlVersion{2, 9, 99}), kMinInfluxctlVersion);
  EXPECT_FALSE((InfluxctlVersion{2, 10, 0}) < kMinInfluxctlVersion);
  EXPECT_FALSE((InfluxctlVersion{3, 0, 0}) < kMinInfluxctlVersion);
}

TEST(InfluxctlVersion, AProgramKilledBySignalIsNamedAsSuch) {
  TempDir dir;
  std::string path = dir.write("influxctl", "#!/bin/sh\nkill -9 $$\n", 0700);
  auto r = check_influxctl_version(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("signal"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("2.10.0"), std::string::npos) << r.error().message;
}

TEST(InfluxctlVersion, AProgramThatHangsIsStoppedAtTheTimeout) {
  TempDir dir;
  std::string path = dir.write("influxctl", "#!/bin/sh\nexec sleep 30\n", 0700);
  auto r = check_influxctl_version(path, std::chrono::milliseconds(200));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(path + " version"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace tw::influx

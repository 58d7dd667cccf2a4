// Tests for core/result.h and result.cpp: Result<T>/Status, and the error codes' names.

#include "core/result.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace tw {
namespace {

TEST(ErrorCode, EveryCodeHasItsOwnStableName) {
  const std::set<std::string> names = {
      to_string(ErrorCode::kInvalidArgument), to_string(ErrorCode::kNotFound),
      to_string(ErrorCode::kParse),           to_string(ErrorCode::kNetwork),
      to_string(ErrorCode::kTimeout),         to_string(ErrorCode::kHttpStatus),
      to_string(ErrorCode::kDatabase),        to_string(ErrorCode::kIo),
      to_string(ErrorCode::kUnsupported),     to_string(ErrorCode::kCancelled),
      to_string(ErrorCode::kInternal)};
  EXPECT_EQ(names.size(), 11u);
  EXPECT_STREQ(to_string(ErrorCode::kHttpStatus), "http_status");
  EXPECT_STREQ(to_string(ErrorCode::kInvalidArgument), "invalid_argument");
  EXPECT_STREQ(to_string(static_cast<ErrorCode>(99)), "internal");
}

TEST(Result, HoldsAValueOrAnError) {
  Result<int> good = 7;
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  EXPECT_EQ(good.value_or(1), 7);

  Result<int> bad = make_error(ErrorCode::kTimeout, "too slow");
  ASSERT_FALSE(bad.ok());
  EXPECT_FALSE(static_cast<bool>(bad));
  EXPECT_EQ(bad.value_or(1), 1);
  EXPECT_EQ(bad.error().code, ErrorCode::kTimeout);
  EXPECT_EQ(bad.error().message, "too slow");
  EXPECT_FALSE(bad.error().retry_after.has_value());
  Error taken = bad.take_error();
  EXPECT_EQ(taken.message, "too slow");
}

TEST(Result, StatusIsOkUntilItCarriesAnError) {
  Status ok;
  EXPECT_TRUE(ok.ok());
  Status failed = make_error(ErrorCode::kHttpStatus, "503 Service Unavailable", 503);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().http_status, 503);
}

}  // namespace
}  // namespace tw

#pragma once
// Helpers shared by the unit tests of every module: a temporary directory that is removed when
// the test ends, an environment variable set for one scope, file helpers, and timestamp literals.
// Header-only; tests never touch the working directory or the real clock.

#include <gtest/gtest.h>
#include <stdlib.h>  // mkdtemp
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "core/audit_event.h"
#include "core/result.h"
#include "core/time.h"
#include "core/token.h"

namespace tw {

// Readable failure messages for the core enums (found by GoogleTest through ADL).
inline void PrintTo(ErrorCode code, std::ostream* os) { *os << to_string(code); }
inline void PrintTo(TokenStatus status, std::ostream* os) { *os << to_string(status); }
inline void PrintTo(EventKind kind, std::ostream* os) { *os << to_string(kind); }

}  // namespace tw

namespace tw::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "tw-unit-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string file(std::string_view name) const { return (path_ / name).string(); }

  // Writes content to name (replacing it) and returns the full path.
  std::string write(std::string_view name, std::string_view content, int mode = 0600) const {
    std::string p = file(name);
    {
      std::ofstream out(p, std::ios::binary | std::ios::trunc);
      if (!out) throw std::runtime_error("cannot write " + p);
      out.write(content.data(), static_cast<std::streamsize>(content.size()));
    }
    ::chmod(p.c_str(), static_cast<mode_t>(mode));
    return p;
  }

 private:
  std::filesystem::path path_;
};

// Sets (or, with nullopt, unsets) an environment variable for one scope, restoring the previous
// value afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::optional<std::string>& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value->c_str(), 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

inline std::string read_file(const std::string& path) {
  std::string out;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return out;
  char buf[8192];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

// A timestamp literal for tests; throws on a malformed literal (a bug in the test).
inline Timestamp ts(std::string_view rfc3339) {
  auto t = parse_rfc3339(rfc3339);
  if (!t.ok()) throw std::invalid_argument("bad test timestamp: " + std::string(rfc3339));
  return *t;
}

// Names parameterized cases after their `name` field (non-alphanumerics become '_'):
// INSTANTIATE_TEST_SUITE_P(Table, Suite, ::testing::Values(...), tw::testing::CaseName());
struct CaseName {
  template <class P>
  std::string operator()(const ::testing::TestParamInfo<P>& p) const {
    std::string n;
    for (char c : p.param.name) {
      bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      n += alnum ? c : '_';
    }
    return n + "_" + std::to_string(p.index);
  }
};

// Prints parameterized cases by their `name` field instead of a byte dump. Bring it into the
// test's namespace with `using tw::testing::PrintTo;` so GoogleTest finds it.
template <class T>
requires requires(const T& t) { t.name; }
void PrintTo(const T& value, std::ostream* os) { *os << value.name; }

}  // namespace tw::testing

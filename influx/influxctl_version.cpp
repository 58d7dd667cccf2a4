#include "influx/influxctl_version.h"

#include <cctype>

#include "core/strings.h"
#include "influx/subprocess.h"

namespace tw::influx {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Reads a decimal number at s[pos] (at most 6 digits), advancing pos.
std::optional<int> number_at(std::string_view s, std::size_t& pos) {
  std::size_t start = pos;
  int n = 0;
  while (pos < s.size() && is_digit(s[pos]) && pos - start < 6) n = n * 10 + (s[pos++] - '0');
  if (pos == start || (pos < s.size() && is_digit(s[pos]))) return std::nullopt;
  return n;
}

}  // namespace

std::string InfluxctlVersion::to_string() const {
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

std::optional<InfluxctlVersion> parse_influxctl_version(std::string_view output) {
  for (std::size_t i = 0; i < output.size(); ++i) {
    // A version starts a word: "2.12.0", "v2.12.0", "influxctl/v2.12.0" — not "x86_64".
    if (!is_digit(output[i])) continue;
    if (i > 0 && (std::isalnum(static_cast<unsigned char>(output[i - 1])) != 0 ||
                  output[i - 1] == '.' || output[i - 1] == '_')) {
      bool after_v = output[i - 1] == 'v' &&
                     (i == 1 || std::isalnum(static_cast<unsigned char>(output[i - 2])) == 0);
      if (!after_v) continue;
    }
    std::size_t pos = i;
    InfluxctlVersion v;
    auto major = number_at(output, pos);
    if (!major || pos >= output.size() || output[pos] != '.') continue;
    ++pos;
    auto minor = number_at(output, pos);
    if (!minor || pos >= output.size() || output[pos] != '.') continue;
    ++pos;
    auto patch = number_at(output, pos);
    if (!patch) continue;
    v.major = *major;
    v.minor = *minor;
    v.patch = *patch;
    return v;
  }
  return std::nullopt;
}

Result<InfluxctlVersion> check_influxctl_version(const std::string& path, Duration timeout) {
  ProcessOptions opts;
  opts.timeout = timeout;
  opts.max_stdout_bytes = 64 * 1024;
  auto res = run_process({path, "version"}, opts);
  const std::string need = " (tokenwarden needs influxctl " + kMinInfluxctlVersion.to_string() +
                           " or later for token list --include-revoked and token revoke)";
  if (!res.ok()) {  // not installed (yet), or not executable: kIo
    return make_error(ErrorCode::kIo,
                      "cannot run \"" + path + " version\": " + res.error().message);
  }
  if (res->signal != 0 || res->exit_code != 0) {
    std::string why = summarize_stderr(res->err);
    return make_error(ErrorCode::kInvalidArgument,
                      "\"" + path + " version\" failed" +
                          (res->signal != 0 ? " (signal " + std::to_string(res->signal) + ")"
                                            : " (status " + std::to_string(res->exit_code) + ")") +
                          (why.empty() ? std::string() : ": " + why) + need);
  }
  auto v = parse_influxctl_version(res->out);
  if (!v) v = parse_influxctl_version(res->err);
  if (!v) {
    std::string said = printable(trim(res->out.empty() ? res->err : res->out), 80);
    return make_error(
        ErrorCode::kInvalidArgument,
        "\"" + path + " version\" printed no version number (\"" + said + "\")" + need);
  }
  if (*v < kMinInfluxctlVersion) {
    return make_error(ErrorCode::kInvalidArgument, path + " is influxctl " + v->to_string() +
                                                       ", too old" + need + "; upgrade influxctl");
  }
  return *v;
}

}  // namespace tw::influx

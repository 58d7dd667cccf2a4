#include "influx/management_token.h"

#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/strings.h"

namespace tw::influx {
namespace {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

std::string quoted(const std::string& path) { return "\"" + printable(path, 200) + "\""; }

// Not a regular file: a precise reason (a directory is the common mistake).
std::optional<std::string> not_a_file(const std::string& path, const struct stat& st) {
  if (S_ISDIR(st.st_mode)) {
    return "token file " + quoted(path) +
           " is a directory; token_file must name the file that holds the token";
  }
  if (!S_ISREG(st.st_mode)) return "token file " + quoted(path) + " is not a regular file";
  return std::nullopt;
}

}  // namespace

std::string resolve_token_path(const std::string& token_file,
                               const std::string& credentials_directory) {
  if (!token_file.empty() && token_file.front() != '/' && !credentials_directory.empty()) {
    return credentials_directory + "/" + token_file;
  }
  return token_file;
}

Result<std::string> read_management_token(const std::string& token_file,
                                          const std::string& credentials_directory) {
  std::string path = resolve_token_path(token_file, credentials_directory);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return make_error(ErrorCode::kIo,
                      "cannot read token file " + quoted(path) + ": " + std::strerror(errno));
  }
  if (auto why = not_a_file(path, st)) return make_error(ErrorCode::kIo, *why);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return make_error(ErrorCode::kIo,
                      "cannot read token file " + quoted(path) + ": " + std::strerror(errno));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  std::string content = buf.str();
  if (content.size() > 64 * 1024) {
    return make_error(ErrorCode::kIo, "token file " + quoted(path) + " is larger than 64 KiB");
  }
  if (content.starts_with(kUtf8Bom)) {
    // Editors on Windows add it; sent as is it makes the server answer 401 with no hint why.
    return make_error(
        ErrorCode::kIo,
        "token file " + quoted(path) +
            " starts with a UTF-8 byte order mark; save it as plain text without one");
  }
  std::string token(trim(content));
  if (token.empty()) {
    return make_error(ErrorCode::kIo, "token file " + quoted(path) + " is empty");
  }
  for (char c : token) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u >= 0x7f) {
      return make_error(
          ErrorCode::kIo,
          "token file " + quoted(path) +
              " must hold one token of printable ASCII, without spaces or control characters");
    }
  }
  return token;
}

bool check_secret_file_access(const std::string& path, const struct stat& st,
                              std::vector<std::string>& warnings) {
  // With a POSIX ACL the group bits are the ACL's mask, not a group's access (systemd grants the
  // service's user that way when it cannot chown a credential), so only "others" counts then.
  const bool has_acl = ::getxattr(path.c_str(), "system.posix_acl_access", nullptr, 0) > 0;
  const mode_t exposed = st.st_mode & (has_acl ? S_IROTH : (S_IRGRP | S_IROTH));
  if (exposed != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    warnings.push_back(quoted(path) + " is readable by group or others (mode " + mode +
                       "); only the daemon's user should read it (chmod 600)");
  }
  if (::access(path.c_str(), R_OK) != 0) {
    warnings.push_back(quoted(path) + " is not readable by this user: " + std::strerror(errno));
    return false;
  }
  return true;
}

TokenFileCheck check_token_file(const std::string& token_file,
                                const std::string& credentials_directory) {
  TokenFileCheck out;
  const std::string path = resolve_token_path(token_file, credentials_directory);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    // Not an error: check-config may run as another user, or before the credential is in place.
    out.warnings.push_back(quoted(path) + " is not readable by this user: " + std::strerror(errno));
    return out;
  }
  if (auto why = not_a_file(path, st)) {
    out.error = *why;
    return out;
  }
  if (!check_secret_file_access(path, st, out.warnings)) return out;
  auto token = read_management_token(token_file, credentials_directory);
  if (!token.ok()) out.error = token.error().message;
  return out;
}

}  // namespace tw::influx

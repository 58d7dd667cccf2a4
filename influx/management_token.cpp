#include "influx/management_token.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/strings.h"

namespace tw::influx {

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
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return make_error(ErrorCode::kIo, "cannot read token file \"" + printable(path, 200) +
                                          "\": " + std::strerror(errno));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  std::string content = buf.str();
  if (content.size() > 64 * 1024) {
    return make_error(ErrorCode::kIo, "token file \"" + printable(path, 200) + "\" is larger than 64 KiB");
  }
  std::string token(trim(content));
  if (token.empty()) {
    return make_error(ErrorCode::kIo, "token file \"" + printable(path, 200) + "\" is empty");
  }
  for (char c : token) {
    if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f) {
      return make_error(ErrorCode::kIo, "token file \"" + printable(path, 200) +
                                            "\" must hold one token without spaces or control characters");
    }
  }
  return token;
}

}  // namespace tw::influx

#include "core/base64.h"

#include <openssl/evp.h>

#include <algorithm>
#include <climits>

namespace tw {
namespace {

bool in_alphabet(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  // EVP_EncodeBlock takes an int length; the inputs here are headers and secrets, chunk anyway.
  constexpr std::size_t kChunk = 3 * (std::size_t{1} << 20);
  for (std::size_t at = 0; at < bytes.size(); at += kChunk) {
    const std::size_t n = std::min(kChunk, bytes.size() - at);
    const std::size_t start = out.size();
    out.resize(start + 4 * ((n + 2) / 3) + 1);  // EVP_EncodeBlock writes a terminating NUL
    const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + start),
                                        reinterpret_cast<const unsigned char*>(bytes.data() + at),
                                        static_cast<int>(n));
    out.resize(start + static_cast<std::size_t>(written));
  }
  return out;
}

std::string base64url_encode(std::string_view bytes) {
  std::string out = base64_encode(bytes);
  while (!out.empty() && out.back() == '=') out.pop_back();
  std::replace(out.begin(), out.end(), '+', '-');
  std::replace(out.begin(), out.end(), '/', '_');
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  // EVP_DecodeBlock alone is too lenient for credentials: it skips leading and trailing
  // whitespace, reads '=' anywhere as zero bits and counts the padding as decoded bytes. So the
  // text is checked here first, and the bytes the padding stands for are cut off after.
  std::size_t data = text.size();
  while (data > 0 && text[data - 1] == '=') --data;
  const std::size_t padding = text.size() - data;
  if (!std::all_of(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(data), in_alphabet) ||
      data % 4 == 1 || padding > 2 || (padding > 0 && text.size() % 4 != 0) ||
      text.size() > INT_MAX / 2) {
    return std::nullopt;
  }
  std::string padded(text.substr(0, data));
  padded.append((4 - data % 4) % 4, '=');
  std::string out(padded.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(padded.data()),
                                static_cast<int>(padded.size()));
  if (n < 0 || static_cast<std::size_t>(n) != out.size()) return std::nullopt;
  out.resize(out.size() - (padded.size() - data));  // one byte less for each '='
  return out;
}

}  // namespace tw

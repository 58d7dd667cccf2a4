#pragma once
// SHA-256 (OpenSSL) as lowercase hex, for the audit hash chain and config hashes.
//
// Thread safety: pure functions. Errors: none (OpenSSL failure here is a bug and aborts).

#include <string>
#include <string_view>

namespace tw {

std::string sha256_hex(std::string_view data);
// sha256 over the concatenation a || b, without building the concatenation.
std::string sha256_hex(std::string_view a, std::string_view b);

}  // namespace tw

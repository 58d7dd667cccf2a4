#pragma once
// Base64 (RFC 4648 §4) and base64url (§5) on top of OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock:
// for HTTP Basic credentials (metrics/) and the simulator's generated secrets (sim/).
//
// Thread safety: pure functions. Errors: base64_decode returns nullopt for anything that is not
// base64 (see there); encoding cannot fail.

#include <optional>
#include <string>
#include <string_view>

namespace tw {

// Standard alphabet, padded with '='.
std::string base64_encode(std::string_view bytes);

// URL-safe alphabet ('-' and '_'), without padding.
std::string base64url_encode(std::string_view bytes);

// Standard alphabet. The padding may be left out (what is left of a 4-character group then
// holds 1 or 2 bytes), but a group of one character, any character outside the alphabet
// (whitespace included) and anything after the padding make the text invalid. "" decodes to "".
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace tw

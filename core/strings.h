#pragma once
// Small string helpers shared by every module.
//
// Thread safety: pure functions. None of them fail; invalid input is handled as documented.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tw {

std::string_view trim(std::string_view s);
std::vector<std::string> split(std::string_view s, char sep);
std::string join(const std::vector<std::string>& parts, std::string_view sep);
bool starts_with(std::string_view s, std::string_view prefix);
std::string to_lower(std::string_view s);

// Shell-style glob: '*' any run of characters, '?' one character. Case-sensitive.
bool glob_match(std::string_view pattern, std::string_view text);

// Length of the valid UTF-8 sequence starting at s[pos] (1 for ASCII), or 0 if the bytes there
// are not valid UTF-8 (overlong, surrogate, beyond U+10FFFF, truncated). Sets `cp`.
std::size_t utf8_sequence(std::string_view s, std::size_t pos, std::uint32_t& cp);

// Replaces invalid UTF-8 sequences with U+FFFD. Valid input is returned unchanged.
std::string sanitize_utf8(std::string_view s);

// Appends `v` as one RFC 4180 CSV field: quoted when it holds a comma, quote, CR or LF (quotes
// doubled). With `untrusted_text`, invalid UTF-8 is replaced and text a spreadsheet would run
// as a formula (starting with = + - @, tab or CR) gets a leading apostrophe.
void append_csv_field(std::string& out, std::string_view v, bool untrusted_text = true);
bool is_valid_utf8(std::string_view s);

// A one-line, terminal-safe rendering of untrusted text for logs and error messages: control
// characters (including ESC and newlines) become \n, \x1b, ...; invalid UTF-8 becomes U+FFFD;
// text longer than max_bytes is cut at a character boundary and ends with "...".
std::string printable(std::string_view s, std::size_t max_bytes = 256);

// Cuts s to at most max_bytes without splitting a UTF-8 sequence.
std::string_view truncate_utf8(std::string_view s, std::size_t max_bytes);

// The one redaction step for text a server or a subprocess produced (error bodies, stderr),
// applied before the text is cut, quoted or stored. Replaces with "[redacted]":
// - every occurrence of each secret, in any ASCII letter case, overlapping ones included
//   (empty secrets are ignored);
// - with Credentials::kAlsoBearer (for messages, not for data such as token descriptions): the
//   credential after an HTTP "Bearer" scheme word ("Bearer abc.def" -> "Bearer [redacted]"), so
//   a token the caller does not know (e.g. an OAuth token a CLI fetched) goes too.
// Adjacent or overlapping matches become one marker. Text without a match is returned as is.
enum class Credentials { kKnownOnly, kAlsoBearer };
std::string redact(std::string_view text, const std::vector<std::string>& secrets,
                   Credentials which = Credentials::kAlsoBearer);
std::string redact(std::string text, std::string_view secret);
// Whether redact() would change text (cheap, allocation-free when it would not).
bool needs_redaction(std::string_view text, const std::vector<std::string>& secrets,
                     Credentials which = Credentials::kAlsoBearer);

// 8-4-4-4-12 hexadecimal (any version).
bool is_uuid(std::string_view s);

}  // namespace tw

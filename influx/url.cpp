// Url, parse_url (influx/http_client.h) and resolve_location (influx/url_reference.h), on
// Boost.URL. Boost.URL is used header-only: its sources are compiled here, once
// (boost/url/src.hpp), and no header of ours includes it.
#include <algorithm>
#include <boost/url/parse.hpp>
#include <boost/url/rfc/authority_rule.hpp>
#include <boost/url/src.hpp>
#include <boost/url/url.hpp>
#include <charconv>
#include <string>

#include "core/strings.h"
#include "influx/http_client.h"
#include "influx/url_reference.h"

namespace tw::influx {
namespace {

namespace urls = boost::urls;

constexpr std::string_view kCredentials =
    "credentials in the URL are not supported (use token_file)";
constexpr std::string_view kQuery = "query strings and fragments are not supported";
constexpr std::string_view kScheme = "must start with http:// or https://";

bool is_http(std::string_view scheme) {
  return to_lower(scheme) == "http" || to_lower(scheme) == "https";
}

// Why Boost.URL refused `text`, as precisely as can be said: which part is wrong.
std::string why_unparsable(std::string_view text) {
  const auto sep = text.find("://");
  if (sep == std::string_view::npos || !is_http(text.substr(0, sep))) return std::string(kScheme);
  const std::string_view rest = text.substr(sep + 3);
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('@') != std::string_view::npos) return std::string(kCredentials);
  if (!urls::parse_authority(authority)) {
    for (char ch : authority) {
      const auto c = static_cast<unsigned char>(ch);
      if (c <= 0x20 || c == 0x7f) return "a space or control character in the host";
    }
    if (!authority.empty() && authority.front() == '[') return "invalid IPv6 address";
    if (authority.find_first_of("[]") == std::string_view::npos &&
        std::count(authority.begin(), authority.end(), ':') > 1) {
      return "invalid host (an IPv6 address goes in brackets: http://[::1]:8086)";
    }
    return "invalid host or port";
  }
  if (rest.find_first_of("?#") != std::string_view::npos) return std::string(kQuery);
  return "invalid characters in the path (they must be percent-encoded)";
}

// Printable ASCII characters that RFC 3986 does not allow in a path but that a hand-written URL
// may carry, and that `tokenwarden config --print` writes ("https://hooks.example.com/[redacted]"
// must load again): percent-encoded in the path, as browsers do, rather than refused. Spaces,
// control characters and non-ASCII bytes stay refused.
std::string encode_path_delimiters(std::string_view text) {
  constexpr std::string_view kEncoded = "\"<>[\\]^`{|}";
  const auto sep = text.find("://");
  const auto path = sep == std::string_view::npos ? sep : text.find_first_of("/?#", sep + 3);
  if (path == std::string_view::npos || text[path] != '/') return std::string(text);
  std::string out(text.substr(0, path));
  for (char c : text.substr(path)) {
    if (kEncoded.find(c) == std::string_view::npos) {
      out += c;
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      const auto b = static_cast<unsigned char>(c);
      out += {'%', kHex[b >> 4], kHex[b & 0xF]};
    }
  }
  return out;
}

}  // namespace

std::string Url::authority() const {
  bool default_port = (tls() && port == "443") || (!tls() && port == "80");
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (!default_port) out += ":" + port;
  return out;
}

std::string Url::to_string() const { return scheme + "://" + authority() + path; }

Result<Url> parse_url(std::string_view text) {
  // The URL is quoted in messages without anything that could be a credential.
  auto shown = [&] {
    std::string s(text);
    auto scheme_end = s.find("://");
    auto start = scheme_end == std::string::npos ? 0 : scheme_end + 3;  // of the authority
    auto at = s.find('@', start);
    auto end = s.find_first_of("/?#", start);
    if (at != std::string::npos && (end == std::string::npos || at < end)) {
      s.replace(start, at - start, "[redacted]");
    }
    auto q = s.find_first_of("?#");
    if (q != std::string::npos) s = s.substr(0, q) + "?[redacted]";
    return printable(s, 200);
  };
  auto bad = [&](std::string_view why) {
    return make_error(ErrorCode::kInvalidArgument,
                      "invalid URL \"" + shown() + "\": " + std::string(why));
  };
  // Boost.URL 1.81 fails an assertion (aborts where assertions are on, as in the ci preset) on
  // "http:#" and "http:?" (found by fuzz/url_fuzz.cpp); "//" must follow the scheme anyway, so
  // that is checked before Boost.URL sees the text.
  if (const auto sep = text.find("://");
      sep == std::string_view::npos || !is_http(text.substr(0, sep))) {
    return bad(kScheme);
  }
  const std::string encoded = encode_path_delimiters(text);
  auto parsed = urls::parse_uri(encoded);  // a view of `encoded`
  if (!parsed) return bad(why_unparsable(text));
  const urls::url_view& u = *parsed;
  // The scheme is case-insensitive (RFC 3986 §3.1); "http:h" has no authority.
  if (!is_http(u.scheme()) || !u.has_authority()) return bad(kScheme);
  // Boost.URL 1.81 accepts a path that does not start with '/' after an authority
  // ("http://h:8o/" as port 8 and path "o/", "http://::1:8080/" as an empty host and port and
  // path ":1:8080/"); RFC 3986 §3.3 does not: the authority is what is wrong.
  if (!u.encoded_path().empty() && u.encoded_path().front() != '/') {
    return bad(why_unparsable(text));
  }
  if (u.has_query() || u.has_fragment()) return bad(kQuery);
  if (u.has_userinfo()) return bad(kCredentials);
  Url url;
  url.scheme = to_lower(u.scheme());
  switch (u.host_type()) {
    case urls::host_type::ipv6:
      url.host = std::string(u.encoded_host_address());
      break;
    case urls::host_type::ipv4:
    case urls::host_type::name:
      url.host = std::string(u.encoded_host());
      // What goes into the Host header and to the resolver is what was written.
      if (url.host.find('%') != std::string::npos) {
        return bad("percent-encoding in the host is not supported");
      }
      break;
    default:  // IPvFuture ("[v1.x]")
      return bad("invalid IPv6 address");
  }
  if (url.host.empty()) return bad("no host");
  // An empty port ("http://h:/") is the default one (RFC 3986 §6.2.3); leading zeros are dropped.
  const std::string_view port = u.port();
  if (port.empty()) {
    url.port = url.tls() ? "443" : "80";
  } else {
    unsigned long n = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (ec != std::errc() || end != port.data() + port.size() || n == 0 || n > 65535) {
      return bad("invalid port");
    }
    url.port = std::to_string(n);
  }
  std::string_view path = u.encoded_path();  // as written: percent-encoded, dot segments kept
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  url.path = std::string(path);
  return url;
}

Result<ResolvedLocation> resolve_location(const Url& from, std::string_view from_target,
                                          std::string_view location) {
  auto bad = [](std::string why) { return make_error(ErrorCode::kHttpStatus, std::move(why)); };
  location = trim(location.substr(0, location.find('#')));  // a fragment is not sent
  if (location.empty()) return bad("without a Location header");
  // A scheme ("x:", RFC 3986 §3.1) must be http or https followed by "//": checked before
  // Boost.URL 1.81 sees it, which fails an assertion on "x:?" and "x:#" (see parse_url).
  const auto scheme_end = location.find_first_not_of(
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-.");
  if (scheme_end != std::string_view::npos && scheme_end > 0 && location[scheme_end] == ':' &&
      (!is_http(location.substr(0, scheme_end)) || location.substr(scheme_end + 1, 2) != "//")) {
    return bad("redirecting to a location that is not an http(s) URL");
  }
  auto ref = urls::parse_uri_reference(location);
  if (!ref) return bad("with a Location that is not a valid URL");
  if (ref->has_scheme() && !is_http(ref->scheme())) {
    return bad("redirecting to a location that is not an http(s) URL");
  }
  const std::string base_text = from.scheme + "://" + from.authority() + std::string(from_target);
  auto base = urls::parse_uri(base_text);  // a view of base_text
  if (!base) return bad("while the request's own URL is not a valid URL");
  urls::url dest;
  // The path check as in parse_url: "http://h:8o/" is no port 8 and path "o/".
  if (!urls::resolve(*base, *ref, dest) ||
      (!dest.encoded_path().empty() && dest.encoded_path().front() != '/')) {
    return bad("with a Location that is not a valid URL");
  }
  auto url = parse_url(dest.encoded_origin());
  if (!url.ok()) return bad("redirecting to an unusable location (" + url.error().message + ")");
  ResolvedLocation out{std::move(*url), std::string(dest.encoded_path())};
  // RFC 3986 §5.2.4 drops ".." segments above the root; Boost.URL 1.81 keeps them ("/../x").
  while (out.target.starts_with("/../")) out.target.erase(0, 3);
  if (out.target.empty() || out.target == "/..") out.target = "/";
  if (dest.has_query()) out.target += "?" + std::string(dest.encoded_query());
  return out;
}

}  // namespace tw::influx

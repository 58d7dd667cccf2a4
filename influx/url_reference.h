#pragma once
// Internal to influx/ (the HTTP client's redirects): a redirect's Location resolved against the
// request it answers, RFC 3986 §5 (Boost.URL, in url.cpp with parse_url).
//
// Thread safety: pure function. Errors: kHttpStatus, the end of a sentence that starts with
// "<request> answered <status>" ("without a Location header", "redirecting to a location that
// is not an http(s) URL", …); never a credential from the Location.

#include <string>
#include <string_view>

#include "core/result.h"
#include "influx/http_client.h"

namespace tw::influx {

struct ResolvedLocation {
  Url url;             // the origin (path empty)
  std::string target;  // absolute path and query, as sent; dot segments removed, no fragment
};

// `from` is the URL the request went to and `from_target` its whole target on the wire (the base
// path included). The Location may be absolute, scheme-relative, an absolute path or relative.
Result<ResolvedLocation> resolve_location(const Url& from, std::string_view from_target,
                                          std::string_view location);

}  // namespace tw::influx

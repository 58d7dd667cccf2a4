// Fuzzes URL parsing (influx/http_client.h: parse_url), a redirect's Location
// (influx/url_reference.h: resolve_location) and the Retry-After / HTTP-date parsers.
// Properties: an accepted URL is http or https with a host and a port 1-65535, its path has no
// trailing '/', and Url::to_string() parses back to the same URL; a resolved Location is such an
// origin (path empty) and a target that is an absolute path without a fragment or a ".." above
// the root; a Retry-After wait is between 0 and kMaxRetryAfter.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.h"
#include "core/time.h"
#include "influx/http_client.h"
#include "influx/url_reference.h"

namespace {

bool same(const tw::influx::Url& a, const tw::influx::Url& b) {
  return a.scheme == b.scheme && a.host == b.host && a.port == b.port && a.path == b.path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  auto url = tw::influx::parse_url(text);
  if (url.ok()) {
    FUZZ_CHECK(url->scheme == "http" || url->scheme == "https");
    FUZZ_CHECK(!url->host.empty());
    FUZZ_CHECK(!url->port.empty() && url->port.size() <= 5);
    const int port = std::stoi(url->port);
    FUZZ_CHECK(port >= 1 && port <= 65535);
    FUZZ_CHECK(url->path.empty() || url->path.back() != '/');
    auto again = tw::influx::parse_url(url->to_string());
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(same(*url, *again));
  } else {
    FUZZ_CHECK(!url.error().message.empty());
  }

  // A redirect's Location, against a request to http://h:8086/api/v0/tokens?limit=1.
  static const tw::influx::Url kFrom = *tw::influx::parse_url("http://h:8086/api/v0");
  auto hop = tw::influx::resolve_location(kFrom, "/api/v0/tokens?limit=1", text);
  if (hop.ok()) {
    FUZZ_CHECK(hop->url.path.empty());
    FUZZ_CHECK(!hop->target.empty() && hop->target.front() == '/');
    FUZZ_CHECK(hop->target.find('#') == std::string::npos);
    FUZZ_CHECK(!hop->target.starts_with("/../") && hop->target != "/..");
    auto origin = tw::influx::parse_url(hop->url.to_string());
    FUZZ_CHECK(origin.ok());
    FUZZ_CHECK(same(hop->url, *origin));
  } else {
    FUZZ_CHECK(!hop.error().message.empty());
  }

  // Retry-After: the value, and the same bytes split into value and Date header.
  const auto now = tw::make_timestamp(2026, 12, 7, 0, 0, 0);
  auto split = text.find('\n');
  std::string_view value = text.substr(0, split);
  std::string_view date =
      split == std::string_view::npos ? std::string_view{} : text.substr(split + 1);
  for (auto wait : {tw::influx::parse_retry_after(text, {}, now),
                    tw::influx::parse_retry_after(value, date, now)}) {
    if (wait) FUZZ_CHECK(*wait >= tw::Duration(0) && *wait <= tw::influx::kMaxRetryAfter);
  }
  (void)tw::influx::parse_http_date(text);
  return 0;
}

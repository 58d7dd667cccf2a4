// Fuzzes URL parsing (influx/http_client.h: parse_url) and the Retry-After / HTTP-date parsers.
// Properties: an accepted URL is http or https with a host and a port 1-65535, its path has no
// trailing '/', and Url::to_string() parses back to the same URL; a Retry-After wait is between
// 0 and kMaxRetryAfter.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.h"
#include "core/time.h"
#include "influx/http_client.h"

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

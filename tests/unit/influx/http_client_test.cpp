// Tests for influx/http_client.h: URL parsing (and influx/url_reference.h: resolving a redirect's
// Location), the body limit while reading and skipped interim (1xx) responses (requests as such
// are covered through RestClusterClient in rest_source_test.cpp, redirects in
// http_redirect_test.cpp).

#include "influx/http_client.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "influx/url_reference.h"
#include "tests/unit/core/test_support.h"
#include "tests/unit/influx/test_http_server.h"

namespace tw::influx {
namespace {

using tw::testing::CannedResponse;
using tw::testing::PrintTo;
using tw::testing::RecordedRequest;
using tw::testing::TestHttpServer;

struct UrlCase {
  std::string name;
  std::string text;
  std::string scheme, host, port, path;
  std::string to_string;
};

class ParseUrlOk : public ::testing::TestWithParam<UrlCase> {};

TEST_P(ParseUrlOk, Parses) {
  const auto& c = GetParam();
  auto u = parse_url(c.text);
  ASSERT_TRUE(u.ok()) << c.text << ": " << u.error().message;
  EXPECT_EQ(u->scheme, c.scheme);
  EXPECT_EQ(u->host, c.host);
  EXPECT_EQ(u->port, c.port);
  EXPECT_EQ(u->path, c.path);
  EXPECT_EQ(u->tls(), c.scheme == "https");
  EXPECT_EQ(u->to_string(), c.to_string);
}

INSTANTIATE_TEST_SUITE_P(
    Table, ParseUrlOk,
    ::testing::Values(
        UrlCase{"https default port", "https://influxdb.example.com/api/v0", "https",
                "influxdb.example.com", "443", "/api/v0", "https://influxdb.example.com/api/v0"},
        UrlCase{"http default port", "http://h", "http", "h", "80", "", "http://h"},
        UrlCase{"explicit port", "http://127.0.0.1:8086/api/v0", "http", "127.0.0.1", "8086",
                "/api/v0", "http://127.0.0.1:8086/api/v0"},
        UrlCase{"explicit default port", "https://h:443/x", "https", "h", "443", "/x",
                "https://h/x"},
        UrlCase{"https on 80 keeps port", "https://h:80", "https", "h", "80", "", "https://h:80"},
        UrlCase{"max port", "http://h:65535", "http", "h", "65535", "", "http://h:65535"},
        UrlCase{"port 1", "http://h:1/", "http", "h", "1", "", "http://h:1"},
        UrlCase{"trailing slash", "https://h/api/v0/", "https", "h", "443", "/api/v0",
                "https://h/api/v0"},
        UrlCase{"many trailing slashes", "https://h/api/v0///", "https", "h", "443", "/api/v0",
                "https://h/api/v0"},
        UrlCase{"root slash", "https://h/", "https", "h", "443", "", "https://h"},
        UrlCase{"ipv6 with port", "http://[::1]:8080/api", "http", "::1", "8080", "/api",
                "http://[::1]:8080/api"},
        UrlCase{"ipv6 default port", "https://[2001:db8::1]", "https", "2001:db8::1", "443", "",
                "https://[2001:db8::1]"},
        UrlCase{"ipv6 trailing slash", "http://[::1]/", "http", "::1", "80", "", "http://[::1]"},
        // Since parse_url is Boost.URL's (issue 11):
        UrlCase{"ipv6 literal with path", "http://[::1]:8080/x", "http", "::1", "8080", "/x",
                "http://[::1]:8080/x"},
        UrlCase{"ipv4 mapped ipv6", "https://[::ffff:192.0.2.1]:8443", "https", "::ffff:192.0.2.1",
                "8443", "", "https://[::ffff:192.0.2.1]:8443"},
        UrlCase{"uppercase scheme", "HTTPS://h/api/v0", "https", "h", "443", "/api/v0",
                "https://h/api/v0"},
        UrlCase{"mixed case scheme", "Http://h:8086", "http", "h", "8086", "", "http://h:8086"},
        UrlCase{"percent-encoding in path kept as written", "http://h/a%20b/%7Ec%2F", "http", "h",
                "80", "/a%20b/%7Ec%2F", "http://h/a%20b/%7Ec%2F"},
        UrlCase{"dot segments kept as written", "http://h/a/../b/.", "http", "h", "80", "/a/../b/.",
                "http://h/a/../b/."},
        UrlCase{"empty port is the default", "http://h:/x", "http", "h", "80", "/x", "http://h/x"},
        UrlCase{"leading zeros in port", "http://h:08086/x", "http", "h", "8086", "/x",
                "http://h:8086/x"},
        UrlCase{"brackets in path as --print redacts it", "https://hooks.example.com/[redacted]",
                "https", "hooks.example.com", "443", "/%5Bredacted%5D",
                "https://hooks.example.com/%5Bredacted%5D"},
        UrlCase{"printable delimiters in path encoded", "http://h/a\"<>\\^`{|}", "http", "h", "80",
                "/a%22%3C%3E%5C%5E%60%7B%7C%7D", "http://h/a%22%3C%3E%5C%5E%60%7B%7C%7D"},
        UrlCase{"sub-delims in path", "http://h/a;b=c,d", "http", "h", "80", "/a;b=c,d",
                "http://h/a;b=c,d"}),
    tw::testing::CaseName());

struct BadUrlCase {
  std::string name;
  std::string text;
  std::string secret;  // must not appear in the message ("" if none)
};

class ParseUrlBad : public ::testing::TestWithParam<BadUrlCase> {};

TEST_P(ParseUrlBad, Rejects) {
  const auto& c = GetParam();
  auto u = parse_url(c.text);
  ASSERT_FALSE(u.ok()) << c.text << " parsed as host \"" << u->host << "\" port \"" << u->port
                       << "\" path \"" << u->path << "\"";
  EXPECT_EQ(u.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(u.error().message.find("invalid URL"), std::string::npos) << u.error().message;
  if (!c.secret.empty()) {
    EXPECT_EQ(u.error().message.find(c.secret), std::string::npos)
        << "the error message repeats a credential: " << u.error().message;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, ParseUrlBad,
    ::testing::Values(
        BadUrlCase{"empty", "", ""}, BadUrlCase{"no scheme", "influxdb.example.com/api", ""},
        BadUrlCase{"ftp", "ftp://h/x", ""}, BadUrlCase{"no host", "http://", ""},
        BadUrlCase{"no host with path", "https:///api", ""},
        BadUrlCase{"no host with port", "http://:80", ""},
        BadUrlCase{"credentials", "https://user:hunter2secret@h/x", "hunter2secret"},
        BadUrlCase{"user only", "https://admin@h/x", ""},
        BadUrlCase{"query", "https://h/api?token=abc", ""},
        BadUrlCase{"fragment", "https://h/api#frag", ""},
        BadUrlCase{"query right after host", "https://h?token=querysecret", "querysecret"},
        BadUrlCase{"query after port", "https://h:8443?x=1", ""},
        BadUrlCase{"fragment right after host", "https://h#frag", ""},
        BadUrlCase{"port zero", "http://h:0", ""}, BadUrlCase{"port too big", "http://h:65536", ""},
        BadUrlCase{"port huge", "http://h:999999", ""},
        BadUrlCase{"port letters", "http://h:abc", ""},
        BadUrlCase{"port negative", "http://h:-1", ""},
        BadUrlCase{"unterminated ipv6", "http://[::1/x", ""},
        BadUrlCase{"junk after ipv6", "http://[::1]x/", ""},
        BadUrlCase{"empty ipv6", "http://[]:80/", ""},
        // Found by fuzz/url_fuzz.cpp: without a scheme, quoting the URL redacted from byte 2 and
        // threw std::out_of_range for "@" (a lone '@' is shorter than that).
        BadUrlCase{"lone at sign", "@", ""},
        BadUrlCase{"credentials without scheme", "pw@h/x", "pw"},
        BadUrlCase{"user and password without scheme", "admin:hunter2secret@h", "hunter2secret"},
        // Found by fuzz/url_fuzz.cpp: hosts that Url::to_string() could not write back (and that
        // would go into the Host header as they are).
        BadUrlCase{"fuzz: bracket in host", "http://\xff\x87::1]:8080/api", ""},
        BadUrlCase{"ipv6 without brackets", "http://::1:8080/api", ""},
        BadUrlCase{"bracket in name", "http://h[1]:80", ""},
        BadUrlCase{"name in brackets", "http://[influxdb.example.com]:8086", ""},
        BadUrlCase{"space in host", "http://h x:80/api", ""},
        BadUrlCase{"header injection", "http://h\r\nX-Injected: 1:80/api", ""},
        // Since parse_url is Boost.URL's (issue 11):
        // Found by fuzz/url_fuzz.cpp: Boost.URL 1.81 fails an assertion on these.
        BadUrlCase{"fuzz: scheme then fragment", "http:#", ""},
        BadUrlCase{"fuzz: scheme then query", "https:?x", ""},
        BadUrlCase{"ipv6 port out of range", "http://[::1]:70000/x", ""},
        // Boost.URL 1.81 parses these as port 8 and path "o/x", and as an empty host and port
        // and path ":1:8080"; parse_url checks that the path starts with '/'.
        BadUrlCase{"letters after the port's digits", "http://h:8o/x", ""},
        BadUrlCase{"ipv6 without brackets or port", "http://::1", ""},
        BadUrlCase{"port past 64 bits", "http://h:99999999999999999999999", ""},
        BadUrlCase{"port zero with leading zeros", "http://h:0000", ""},
        BadUrlCase{"empty host uppercase scheme", "HTTP:///x", ""},
        BadUrlCase{"empty host root", "http:///", ""}, BadUrlCase{"no authority", "http:h/x", ""},
        BadUrlCase{"one slash", "https:/h/x", ""},
        BadUrlCase{"ipv6 too short", "http://[1:2:3]/", ""},
        BadUrlCase{"ipv6 too many colons", "http://[:::]/", ""},
        BadUrlCase{"ipv6 zone id", "http://[fe80::1%25eth0]/", ""},
        BadUrlCase{"ipvfuture", "http://[v1.x]/", ""},
        BadUrlCase{"percent-encoded host", "http://h%41st/", ""},
        BadUrlCase{"non-ascii host", "http://h\xc3\xa9/", ""},
        BadUrlCase{"backslash in host", "http://h\\x/", ""},
        BadUrlCase{"invalid percent-encoding in path", "http://h/a%zz", ""},
        BadUrlCase{"space in path", "http://h/a b", ""},
        BadUrlCase{"line break in path", "http://h/x\r\nX-Injected: 1", ""},
        BadUrlCase{"non-ascii path", "http://h/\xff", ""},
        BadUrlCase{"empty query", "http://h/x?", ""}, BadUrlCase{"empty fragment", "http://h#", ""},
        BadUrlCase{"credentials with uppercase scheme", "HTTPS://u:pw5ecret@h", "pw5ecret"},
        BadUrlCase{"credentials with a space", "https://u:pw 5ecret@h", "5ecret"}),
    tw::testing::CaseName());

TEST(ParseUrl, MessagesNameWhatIsWrong) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"ftp://h/x", "must start with http:// or https://"},
      {"javascript:alert(1)", "must start with http:// or https://"},
      {"http:h", "must start with http:// or https://"},
      {"https://", "no host"},
      {"http://:8086/x", "no host"},
      {"http://h:99999", "invalid port"},
      {"http://h:0", "invalid port"},
      {"https://user:pw@h/x", "credentials in the URL are not supported"},
      {"https://user:p w@h/x", "credentials in the URL are not supported"},
      {"https://h/x?a=1", "query strings and fragments are not supported"},
      {"https://h/x#top", "query strings and fragments are not supported"},
      {"https://h/x y?a=1", "query strings and fragments are not supported"},
      {"http://[1:2:3]/", "invalid IPv6 address"},
      {"http://[v1.x]/", "invalid IPv6 address"},
      {"http://::1:8080/", "an IPv6 address goes in brackets"},
      {"http://h x/", "a space or control character in the host"},
      {"http://h%41/", "percent-encoding in the host is not supported"},
      {"http://h:8o/", "invalid host or port"},
      {"http://h/a b", "invalid characters in the path"},
  };
  for (const auto& [text, why] : cases) {
    auto u = parse_url(text);
    ASSERT_FALSE(u.ok()) << text;
    EXPECT_NE(u.error().message.find(why), std::string::npos) << text << ": " << u.error().message;
  }
}

TEST(ResolveLocation, Rfc3986References) {
  auto from = parse_url("http://h:8086/api/v0");
  ASSERT_TRUE(from.ok());
  const std::string target = "/api/v0/tokens?limit=10";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"moved/tokens", "http://h:8086 /api/v0/moved/tokens"},
      {"../v1/tokens", "http://h:8086 /api/v1/tokens"},
      {"?page=2", "http://h:8086 /api/v0/tokens?page=2"},
      {"/a/./b/../c#fragment", "http://h:8086 /a/c"},
      {".", "http://h:8086 /api/v0/"},
      {"..", "http://h:8086 /api/"},
      {"../../../../x", "http://h:8086 /x"},  // ".." above the root is dropped
      {"/../..", "http://h:8086 /"},
      {"/a%20b?q=%20", "http://h:8086 /a%20b?q=%20"},
      {"//h:8086", "http://h:8086 /"},
      {"HTTP://h:8086/b", "http://h:8086 /b"},
      {"https://[::1]/c?x=1#y", "https://[::1] /c?x=1"},
      {"  /padded  ", "http://h:8086 /padded"},
  };
  for (const auto& [location, expected] : cases) {
    auto r = resolve_location(*from, target, location);
    ASSERT_TRUE(r.ok()) << location << ": " << r.error().message;
    EXPECT_EQ(r->url.path, "") << location;
    EXPECT_EQ(r->url.to_string() + " " + r->target, expected) << location;
  }
}

TEST(ResolveLocation, Refusals) {
  auto from = parse_url("http://h:8086/api/v0");
  ASSERT_TRUE(from.ok());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "without a Location header"},
      {"#only-a-fragment", "without a Location header"},
      {"ftp://h/x", "not an http(s) URL"},
      {"mailto:ops@example.com", "not an http(s) URL"},
      // Found by fuzz/url_fuzz.cpp: Boost.URL 1.81 fails an assertion on these.
      {"x:?", "not an http(s) URL"},
      {"http:?a", "not an http(s) URL"},
      {"mailto:#", "not an http(s) URL"},
      {"http:/x", "not an http(s) URL"},
      {"/a b", "with a Location that is not a valid URL"},
      {"/\xff", "with a Location that is not a valid URL"},
      {"/x\r\nSet-Cookie: a=b", "with a Location that is not a valid URL"},
      {"http:///x", "redirecting to an unusable location"},
      {"http://u:hunter2@h:8086/x", "redirecting to an unusable location"},
      {"http://h:0/x", "redirecting to an unusable location"},
      {"http://h:8086x/y", "with a Location that is not a valid URL"},
      {"//::1:8086/y", "with a Location that is not a valid URL"},
  };
  for (const auto& [location, why] : cases) {
    auto r = resolve_location(*from, "/api/v0/tokens", location);
    ASSERT_FALSE(r.ok()) << location;
    EXPECT_EQ(r.error().code, ErrorCode::kHttpStatus);
    EXPECT_NE(r.error().message.find(why), std::string::npos)
        << location << ": " << r.error().message;
    EXPECT_EQ(r.error().message.find("hunter2"), std::string::npos) << r.error().message;
  }
}

TEST(ParseUrl, ToStringNeverContainsCredentials) {
  // Credentials are rejected, so no Url ever carries them; to_string is safe for messages.
  auto u = parse_url("https://h:8443/api/v0");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->to_string(), "https://h:8443/api/v0");
}

TEST(HttpReason, KnownStatuses) {
  EXPECT_EQ(http_reason(200), "OK");
  EXPECT_EQ(http_reason(404), "Not Found");
  EXPECT_EQ(http_reason(401), "Unauthorized");
}

// --- HTTP client: body limit, interim responses --------------------------------------------------

std::string chunked(const std::string& body, std::size_t chunk) {
  std::string out;
  for (std::size_t i = 0; i < body.size(); i += chunk) {
    std::size_t n = std::min(chunk, body.size() - i);
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", n);
    out += size;
    out.append(body, i, n);
    out += "\r\n";
  }
  return out + "0\r\n\r\n";
}

// GETs /api/v0/tokens from a server that answers `raw` as it is.
Result<HttpResponse> get_raw(const std::string& raw, std::size_t max_body = std::size_t{1} << 20) {
  TestHttpServer server([&](const RecordedRequest&) {
    CannedResponse r;
    r.raw = raw;
    return r;
  });
  auto url = parse_url(server.base_url("/api/v0"));
  EXPECT_TRUE(url.ok());
  HttpRequest req;
  req.target = "/tokens";
  HttpOptions opts;
  opts.timeout = std::chrono::seconds(10);
  opts.max_body_bytes = max_body;
  return http_request(*url, req, opts);
}

void expect_error(const Result<HttpResponse>& resp, const std::string& part) {
  ASSERT_FALSE(resp.ok());
  EXPECT_NE(resp.error().message.find(part), std::string::npos) << resp.error().message;
}

constexpr const char* kOverOneMiB = "the response body is larger than the limit of 1 MiB";

TEST(HttpBodyLimit, ChunkedBodyOverTheLimitFailsAtTheLimit) {
  const std::string body(3 << 20, 'a');
  expect_error(
      get_raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body, 100000)),
      kOverOneMiB);
}

TEST(HttpBodyLimit, OneChunkAnnouncedBeyondTheLimitFailsBeforeItsData) {
  expect_error(  // a 1 GiB chunk
      get_raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40000000\r\nabc"),
      "larger than the limit");
}

TEST(HttpBodyLimit, CloseDelimitedBodyOverTheLimitFails) {
  const std::string body(3 << 20, 'a');
  expect_error(get_raw("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body), kOverOneMiB);
}

TEST(HttpBodyLimit, ContentLengthOverTheLimitFailsBeforeReading) {
  expect_error(get_raw("HTTP/1.1 200 OK\r\nContent-Length: 2097152\r\n\r\nabc"), kOverOneMiB);
}

TEST(HttpBodyLimit, BodiesUpToTheLimitAreReadWhole) {
  const std::string body(std::size_t{1} << 20, 'b');
  for (bool use_chunks : {true, false}) {
    auto resp = get_raw(
        use_chunks ? "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body, 70000)
                   : "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body,
        body.size());
    ASSERT_TRUE(resp.ok()) << (use_chunks ? "chunked: " : "close-delimited: ")
                           << resp.error().message;
    EXPECT_EQ(resp->status, 200);
    EXPECT_EQ(resp->body, body);
  }
}

TEST(HttpInterim, ContinueBeforeTheRealResponseIsSkipped) {
  auto resp = get_raw(
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]");
  ASSERT_TRUE(resp.ok()) << resp.error().message;
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "[]");
  EXPECT_EQ(resp->content_type, "application/json");
}

TEST(HttpInterim, EndlessInterimResponsesFail) {
  std::string interim;
  for (int i = 0; i < 50; ++i) interim += "HTTP/1.1 100 Continue\r\n\r\n";
  expect_error(get_raw(interim), "interim (1xx) responses and no final one");
}

}  // namespace
}  // namespace tw::influx

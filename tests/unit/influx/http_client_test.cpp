// Tests for influx/http_client.h: URL parsing, the body limit while reading and skipped interim
// (1xx) responses (requests as such are covered through RestClusterClient in
// rest_source_test.cpp, redirects in http_redirect_test.cpp).

#include "influx/http_client.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>

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
        UrlCase{"ipv6 trailing slash", "http://[::1]/", "http", "::1", "80", "", "http://[::1]"}),
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
        BadUrlCase{"header injection", "http://h\r\nX-Injected: 1:80/api", ""}),
    tw::testing::CaseName());

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

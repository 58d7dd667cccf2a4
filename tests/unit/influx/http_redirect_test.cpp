// Tests for the HTTP client as real servers use HTTP (issue 10): redirects followed within the
// origin only — the Authorization header never reaches another one — and Retry-After.

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "influx/http_client.h"
#include "influx/rest_source.h"
#include "tests/unit/core/test_support.h"
#include "tests/unit/influx/test_http_server.h"

namespace tw::influx {
namespace {

using tw::testing::CannedResponse;
using tw::testing::RecordedRequest;
using tw::testing::TempDir;
using tw::testing::TestHttpServer;
using Headers = std::vector<std::pair<std::string, std::string>>;
using std::chrono::seconds;

const std::string kSecret = "mgmt-SECRET-0f5e2b8c71d94a36";

// An answer with extra headers (the canned server writes only Content-Type and -Length).
CannedResponse answer(int status, const Headers& headers, const std::string& body = "[]") {
  CannedResponse r;
  r.raw = "HTTP/1.1 " + std::to_string(status) + " Canned\r\n";
  for (const auto& [k, v] : headers) r.raw += k + ": " + v + "\r\n";
  r.raw += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\nConnection: close\r\n\r\n" + body;
  return r;
}

CannedResponse redirect(int status, const std::string& location) {
  return answer(status, {{"Location", location}}, "");
}

Result<HttpResponse> send(const TestHttpServer& server, const std::string& method,
                          const std::string& target, const HttpOptions& options = {},
                          const std::string& body = "") {
  auto url = parse_url(server.base_url("/api/v0"));
  EXPECT_TRUE(url.ok());
  HttpRequest req;
  req.method = method;
  req.target = target;
  req.body = body;
  req.headers.emplace_back("Authorization", "Bearer " + kSecret);
  return http_request(*url, req, options);
}

std::vector<std::string> targets(const TestHttpServer& server) {
  std::vector<std::string> out;
  for (const auto& r : server.requests()) out.push_back(r.method + " " + r.target);
  return out;
}

void expect_one_clean_line(const std::string& message) {
  EXPECT_EQ(message.find(kSecret), std::string::npos) << "token leaked: " << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

// --- same origin: followed -----------------------------------------------------------------

class SameOriginRedirect : public ::testing::TestWithParam<int> {};

TEST_P(SameOriginRedirect, GetIsFollowedAndTheLocationReplacesTheBasePath) {
  const int status = GetParam();
  TestHttpServer server([&](const RecordedRequest& r) {
    if (r.target == "/api/v0/tokens") return redirect(status, "/moved/tokens?page=all");
    return CannedResponse{200, R"([{"id":"a"}])"};
  });
  auto resp = send(server, "GET", "/tokens");
  ASSERT_TRUE(resp.ok()) << resp.error().message;
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, R"([{"id":"a"}])");
  EXPECT_EQ(targets(server),
            (std::vector<std::string>{"GET /api/v0/tokens", "GET /moved/tokens?page=all"}));
  for (const auto& r : server.requests()) {
    EXPECT_EQ(r.headers.at("authorization"), "Bearer " + kSecret);  // the same origin: kept
  }
}

INSTANTIATE_TEST_SUITE_P(Statuses, SameOriginRedirect, ::testing::Values(301, 302, 303, 307, 308));

TEST(HttpRedirect, LocationFormsResolveAgainstTheRequest) {
  struct Case {
    std::string location, expected_target;
  };
  const std::vector<Case> cases = {
      {"moved/tokens", "/api/v0/moved/tokens"},  // relative to the request's directory
      {"../v1/tokens", "/api/v1/tokens"},        // dot segments removed
      {"?page=2", "/api/v0/tokens?page=2"},      // a query alone keeps the path
      {"/a/./b/../c#fragment", "/a/c"},          // fragments are not sent
      {"/api/v2/tokens", "/api/v2/tokens"},      // absolute path
      {"../../../../x", "/x"},                   // ".." above the root dropped (RFC 3986 §5.2.4)
      {"/a%20b?q=%2F", "/a%20b?q=%2F"},          // percent-encoding sent as written
  };
  for (const auto& c : cases) {
    TestHttpServer server([&](const RecordedRequest& r) {
      if (r.target == "/api/v0/tokens") return redirect(302, c.location);
      return CannedResponse{200, "[]"};
    });
    auto resp = send(server, "GET", "/tokens");
    ASSERT_TRUE(resp.ok()) << c.location << ": " << resp.error().message;
    ASSERT_EQ(server.request_count(), 2u) << c.location;
    EXPECT_EQ(server.requests()[1].target, c.expected_target) << c.location;
  }
}

TEST(HttpRedirect, AbsoluteUrlOfTheSameOriginIsFollowed) {
  // One server redirecting to itself by absolute URL: scheme in capitals, scheme-relative, plain.
  std::size_t hops = 0;
  std::vector<std::string> locations;
  TestHttpServer self([&](const RecordedRequest&) {
    if (hops < locations.size()) return redirect(308, locations[hops++]);
    return CannedResponse{200, "done"};
  });
  const std::string port = std::to_string(self.port());
  locations = {"HTTP://127.0.0.1:" + port + "/b", "//127.0.0.1:" + port + "/c",
               "http://127.0.0.1:" + port + "/d?x=1"};
  auto resp = send(self, "GET", "/tokens");
  ASSERT_TRUE(resp.ok()) << resp.error().message;
  EXPECT_EQ(resp->body, "done");
  EXPECT_EQ(targets(self),
            (std::vector<std::string>{"GET /api/v0/tokens", "GET /b", "GET /c", "GET /d?x=1"}));
}

TEST(HttpRedirect, PatchAndDeleteAreRepeatedBy307And308WithTheirBody) {
  for (int status : {307, 308}) {
    for (const std::string method : {"PATCH", "DELETE"}) {
      TestHttpServer server([&](const RecordedRequest& r) {
        if (r.target == "/api/v0/tokens/t1") return redirect(status, "/v2/tokens/t1");
        return CannedResponse{200, "{}"};
      });
      const std::string body = method == "PATCH" ? R"({"permissions":[]})" : "";
      auto resp = send(server, method, "/tokens/t1", {}, body);
      ASSERT_TRUE(resp.ok()) << resp.error().message;
      ASSERT_EQ(server.request_count(), 2u);
      EXPECT_EQ(server.requests()[1].method, method);
      EXPECT_EQ(server.requests()[1].target, "/v2/tokens/t1");
      EXPECT_EQ(server.requests()[1].body, body);
      EXPECT_EQ(server.requests()[1].headers.at("authorization"), "Bearer " + kSecret);
    }
  }
}

TEST(HttpRedirect, ThreeHopsAreFollowedAndAFourthIsRefused) {
  int hops = 0;
  int limit = 3;
  TestHttpServer server([&](const RecordedRequest&) {
    if (hops < limit) return redirect(302, "/hop" + std::to_string(++hops));
    return CannedResponse{200, "[]"};
  });
  auto ok = send(server, "GET", "/tokens");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(server.request_count(), 4u);

  hops = 0;
  limit = 100;  // a loop
  auto looped = send(server, "GET", "/tokens");
  ASSERT_FALSE(looped.ok());
  EXPECT_EQ(looped.error().code, ErrorCode::kHttpStatus);
  EXPECT_EQ(looped.error().http_status, 302);
  EXPECT_NE(looped.error().message.find("GET http://127.0.0.1:" + std::to_string(server.port()) +
                                        "/hop3 answered 302 Found after 3 redirects"),
            std::string::npos)
      << looped.error().message;
  expect_one_clean_line(looped.error().message);
  EXPECT_EQ(server.request_count(), 8u);  // 4 more: the first request and three hops
}

TEST(HttpRedirect, NotFollowedWhenMaxRedirectsIsZero) {
  TestHttpServer server([](const RecordedRequest&) { return redirect(301, "/elsewhere"); });
  HttpOptions opts;
  opts.max_redirects = 0;
  auto resp = send(server, "GET", "/tokens", opts);
  ASSERT_TRUE(resp.ok()) << resp.error().message;
  EXPECT_EQ(resp->status, 301);
  EXPECT_EQ(resp->location, "/elsewhere");
  EXPECT_EQ(server.request_count(), 1u);
}

TEST(HttpRedirect, OneDeadlineCoversEveryHop) {
  // Each answer takes 250 ms, well within the 600 ms timeout; the three together do not.
  TestHttpServer server([](const RecordedRequest& r) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    if (r.target.size() < 8) return CannedResponse{200, "[]"};
    return redirect(302, r.target.substr(0, r.target.size() - 4));
  });
  HttpOptions opts;
  opts.timeout = std::chrono::milliseconds(600);
  auto resp = send(server, "GET", "/tokens/abcd/efgh", opts);  // /api/v0/tokens/abcd/efgh
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.error().code, ErrorCode::kTimeout) << resp.error().message;
  EXPECT_NE(resp.error().message.find("timed out after 600ms"), std::string::npos)
      << resp.error().message;
}

// --- refused -------------------------------------------------------------------------------

TEST(HttpRedirect, AnotherOriginIsRefusedAndNeverContacted) {
  TestHttpServer other([](const RecordedRequest&) { return CannedResponse{200, "[]"}; });
  std::vector<std::string> locations = {
      other.base_url("/api/v0/tokens"),                                       // another port
      "http://localhost:" + std::to_string(other.port()) + "/api/v0/tokens",  // another host
      "//127.0.0.1:" + std::to_string(other.port()) + "/x",                   // scheme-relative
  };
  for (const auto& location : locations) {
    for (int status : {301, 302, 303, 307, 308}) {
      TestHttpServer here([&](const RecordedRequest&) { return redirect(status, location); });
      auto resp = send(here, "GET", "/tokens");
      ASSERT_FALSE(resp.ok()) << location;
      const Error& e = resp.error();
      EXPECT_EQ(e.code, ErrorCode::kHttpStatus);
      EXPECT_EQ(e.http_status, status);
      const std::string from = "http://127.0.0.1:" + std::to_string(here.port());
      const std::string to_host =
          location.find("localhost") != std::string::npos ? "localhost" : "127.0.0.1";
      const std::string to = "http://" + to_host + ":" + std::to_string(other.port());
      EXPECT_NE(e.message.find("GET " + from + "/api/v0/tokens answered " + std::to_string(status)),
                std::string::npos)
          << e.message;
      EXPECT_NE(e.message.find("redirecting to another origin, " + to +
                               "; refused so that the management token is not sent there "
                               "(redirects are followed only within " +
                               from + ")"),
                std::string::npos)
          << e.message;
      expect_one_clean_line(e.message);
      EXPECT_EQ(here.request_count(), 1u);
    }
  }
  EXPECT_EQ(other.request_count(), 0u) << "a request reached the other origin";
}

TEST(HttpRedirect, AnotherSchemeOfTheSameHostAndPortIsAnotherOrigin) {
  // http://127.0.0.1:P redirecting to https://127.0.0.1:P — the same host and port.
  std::string location;
  TestHttpServer server([&](const RecordedRequest&) { return redirect(301, location); });
  const std::string port = std::to_string(server.port());
  location = "https://127.0.0.1:" + port + "/api/v0/tokens";
  auto resp = send(server, "GET", "/tokens");
  ASSERT_FALSE(resp.ok());
  EXPECT_NE(resp.error().message.find("another origin, https://127.0.0.1:" + port),
            std::string::npos)
      << resp.error().message;
  EXPECT_EQ(server.request_count(), 1u);
}

TEST(HttpRedirect, AnotherOriginWithoutCredentialsIsRefusedToo) {
  TestHttpServer other([](const RecordedRequest&) { return CannedResponse{200, "[]"}; });
  TestHttpServer here([&](const RecordedRequest&) { return redirect(307, other.base_url("/x")); });
  auto url = parse_url(here.base_url("/hook"));
  ASSERT_TRUE(url.ok());
  HttpRequest req;
  req.method = "POST";
  req.body = "{}";
  auto resp = http_request(*url, req, {});
  ASSERT_FALSE(resp.ok());
  EXPECT_NE(resp.error().message.find("; refused (redirects are followed only within"),
            std::string::npos)
      << resp.error().message;
  EXPECT_EQ(other.request_count(), 0u);
}

TEST(HttpRedirect, ADestructiveRequestIsNeverTurnedIntoAGet) {
  for (int status : {301, 302, 303}) {
    for (const std::string method : {"DELETE", "PATCH", "POST"}) {
      TestHttpServer server([&](const RecordedRequest&) { return redirect(status, "/v2/t1"); });
      auto resp = send(server, method, "/tokens/t1", {}, method == "DELETE" ? "" : "{}");
      ASSERT_FALSE(resp.ok()) << method << " " << status;
      EXPECT_EQ(resp.error().http_status, status);
      EXPECT_NE(resp.error().message.find(
                    "redirecting to http://127.0.0.1:" + std::to_string(server.port()) +
                    "/v2/t1; refused, since only a 307 or 308 redirect "
                    "repeats a " +
                    method),
                std::string::npos)
          << resp.error().message;
      EXPECT_EQ(server.request_count(), 1u);
    }
  }
}

TEST(HttpRedirect, UnusableLocationsFailClearly) {
  struct Case {
    std::string location, message;
  };
  const std::vector<Case> cases = {
      {"", "answered 302 Found without a Location header"},
      {"ftp://127.0.0.1/tokens", "redirecting to a location that is not an http(s) URL"},
      {"mailto:ops@example.com", "redirecting to a location that is not an http(s) URL"},
      {"http://user:hunter2@127.0.0.1/x", "redirecting to an unusable location"},
      {"/a b", "with a Location that is not a valid URL"},
      {"http:///x", "redirecting to an unusable location"},
  };
  for (const auto& c : cases) {
    TestHttpServer server([&](const RecordedRequest&) {
      return c.location.empty() ? answer(302, {}, "") : redirect(302, c.location);
    });
    auto resp = send(server, "GET", "/tokens");
    ASSERT_FALSE(resp.ok()) << c.location;
    EXPECT_NE(resp.error().message.find(c.message), std::string::npos)
        << c.location << ": " << resp.error().message;
    EXPECT_EQ(resp.error().message.find("hunter2"), std::string::npos) << resp.error().message;
    expect_one_clean_line(resp.error().message);
    EXPECT_EQ(server.request_count(), 1u);
  }
}

// --- Retry-After ---------------------------------------------------------------------------

TEST(RetryAfter, ParsesSecondsAndHttpDatesAndCapsThem) {
  const Timestamp now = tw::testing::ts("2026-03-01T12:00:00Z");
  struct Case {
    std::string value, date;
    std::optional<Duration> expected;
  };
  const std::vector<Case> cases = {
      {"120", "", seconds(120)},
      {" 5 ", "", seconds(5)},
      {"0", "", seconds(0)},
      {"3600", "", seconds(3600)},
      {"7200", "", kMaxRetryAfter},
      {"99999999999999999999", "", kMaxRetryAfter},
      {"-5", "", std::nullopt},
      {"1.5", "", std::nullopt},
      {"soon", "", std::nullopt},
      {"", "", std::nullopt},
      // HTTP-date: from our clock without a Date header, from the server's Date with one.
      {"Sun, 01 Mar 2026 12:01:30 GMT", "", seconds(90)},
      {"Sun, 01 Mar 2026 12:01:30 GMT", "Sun, 01 Mar 2026 12:01:00 GMT", seconds(30)},
      {"Sun, 01 Mar 2026 12:01:30 GMT", "garbage", seconds(90)},
      {"Sun, 01 Mar 2026 11:00:00 GMT", "", seconds(0)},  // in the past: now
      {"Mon, 02 Mar 2026 12:00:00 GMT", "", kMaxRetryAfter},
      // Only IMF-fixdate is read (RFC 9110 requires it of senders).
      {"Sunday, 01-Mar-26 12:01:30 GMT", "", std::nullopt},
      {"Sun Mar  1 12:01:30 2026", "", std::nullopt},
      {"Sun, 31 Feb 2026 12:01:30 GMT", "", std::nullopt},
      {"Xyz, 01 Mar 2026 12:01:30 GMT", "", std::nullopt},
      {"Sun, 01 Mar 2026 25:01:30 GMT", "", std::nullopt},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(parse_retry_after(c.value, c.date, now), c.expected)
        << "\"" << c.value << "\" with Date \"" << c.date << "\"";
  }
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            tw::testing::ts("1994-11-06T08:49:37Z"));
}

TEST(RetryAfter, TheClientReadsItFromTheResponse) {
  Headers headers = {{"Retry-After", "42"}};
  TestHttpServer server([&](const RecordedRequest&) { return answer(429, headers, "{}"); });
  auto resp = send(server, "GET", "/tokens");
  ASSERT_TRUE(resp.ok()) << resp.error().message;
  EXPECT_EQ(resp->status, 429);
  EXPECT_EQ(resp->retry_after, std::optional<Duration>(seconds(42)));

  // An HTTP-date without a Date header is measured from the injected clock.
  ManualClock clock(tw::testing::ts("2026-03-01T12:00:00Z"));
  HttpOptions opts;
  opts.clock = &clock;
  headers = {{"Retry-After", "Sun, 01 Mar 2026 12:02:00 GMT"}};
  resp = send(server, "GET", "/tokens", opts);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->retry_after, std::optional<Duration>(seconds(120)));

  headers = {};
  resp = send(server, "GET", "/tokens");
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->retry_after, std::nullopt);
}

// --- through RestClusterClient ------------------------------------------------------------

class RestHttpBehaviour : public ::testing::Test {
 protected:
  std::unique_ptr<RestClusterClient> client(const TestHttpServer& server) {
    SourceConfig cfg;
    cfg.cluster = "test";
    cfg.url = server.base_url("/api/v0");
    cfg.token_file = token_file_;
    cfg.timeout = seconds(10);
    auto url = parse_url(cfg.url);
    EXPECT_TRUE(url.ok());
    return std::make_unique<RestClusterClient>(cfg, *url, "");
  }
  TempDir dir_;
  std::string token_file_ = dir_.write("mgmt.token", kSecret + "\n");
  CallContext ctx_;
};

TEST_F(RestHttpBehaviour, TooManyRequestsAndUnavailableCarryTheWait) {
  for (int status : {429, 503}) {
    TestHttpServer server([&](const RecordedRequest&) {
      return answer(status, {{"Retry-After", "30"}}, R"({"code":429,"message":"slow down"})");
    });
    auto c = client(server);
    auto list = c->list_tokens(ctx_);
    ASSERT_FALSE(list.ok());
    const Error& e = list.error();
    EXPECT_EQ(e.code, ErrorCode::kHttpStatus);
    EXPECT_EQ(e.http_status, status);
    EXPECT_EQ(e.retry_after, std::optional<Duration>(seconds(30)));
    EXPECT_NE(e.message.find("/api/v0/tokens answered " + std::to_string(status)),
              std::string::npos)
        << e.message;
    EXPECT_NE(e.message.find("; the server asks to retry after 30s"), std::string::npos)
        << e.message;
    expect_one_clean_line(e.message);

    auto revoke = c->revoke("t1", ctx_);
    ASSERT_FALSE(revoke.ok());
    EXPECT_EQ(revoke.error().retry_after, std::optional<Duration>(seconds(30)));
    auto read = c->get_token("t1", ctx_);
    ASSERT_FALSE(read.ok());
    EXPECT_EQ(read.error().retry_after, std::optional<Duration>(seconds(30)));
  }
}

TEST_F(RestHttpBehaviour, AWaitIsTakenOnlyFrom429And503) {
  for (auto [status, headers] : std::vector<std::pair<int, Headers>>{
           {500, {{"Retry-After", "30"}}}, {429, {}}, {503, {{"Retry-After", "later"}}}}) {
    TestHttpServer server([&](const RecordedRequest&) { return answer(status, headers, "{}"); });
    auto list = client(server)->list_tokens(ctx_);
    ASSERT_FALSE(list.ok());
    EXPECT_EQ(list.error().retry_after, std::nullopt) << list.error().message;
    EXPECT_EQ(list.error().message.find("retry after"), std::string::npos) << list.error().message;
  }
}

TEST_F(RestHttpBehaviour, APagedListIsRefusedNotRecordedPartially) {
  const std::string next = "<http://127.0.0.1/api/v0/tokens?page=2>; rel=\"next\"";
  for (const auto& link : {next, "<http://h/t?p=1>; rel=\"prev\", " + next,
                           std::string("<http://h/t?p=2>; REL=\"last next\"")}) {
    TestHttpServer server([&](const RecordedRequest&) {
      return answer(200, {{"Link", link}}, R"([{"id":"a"}])");
    });
    auto list = client(server)->list_tokens(ctx_);
    ASSERT_FALSE(list.ok()) << link;
    EXPECT_EQ(list.error().code, ErrorCode::kParse);
    EXPECT_NE(list.error().message.find("answered one page of a paged token list"),
              std::string::npos)
        << list.error().message;
  }
  // Other relations are not a page.
  TestHttpServer server([&](const RecordedRequest&) {
    return answer(200, {{"Link", "<http://h/docs>; rel=\"help\", <http://h/x>; rel=prev"}},
                  R"([{"id":"a"}])");
  });
  auto list = client(server)->list_tokens(ctx_);
  ASSERT_TRUE(list.ok()) << list.error().message;
  EXPECT_EQ(list->tokens.size(), 1u);
}

TEST_F(RestHttpBehaviour, AnErrorAfterARedirectNamesWhereItWasRedirected) {
  TestHttpServer server([](const RecordedRequest& r) {
    if (r.target == "/api/v0/tokens") return redirect(301, "/v2/tokens?all=1");
    return answer(404, {}, R"({"code":404,"message":"not found"})");
  });
  auto list = client(server)->list_tokens(ctx_);
  ASSERT_FALSE(list.ok());
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  EXPECT_NE(list.error().message.find("GET " + base + "/api/v0/tokens (redirected to " + base +
                                      "/v2/tokens) answered 404 Not Found"),
            std::string::npos)
      << list.error().message;
}

TEST_F(RestHttpBehaviour, ACrossOriginRedirectOfTheListFailsThePollWithoutTheToken) {
  TestHttpServer other([](const RecordedRequest&) { return CannedResponse{200, "[]"}; });
  TestHttpServer here(
      [&](const RecordedRequest&) { return redirect(302, other.base_url("/api/v0/tokens")); });
  auto list = client(here)->list_tokens(ctx_);
  ASSERT_FALSE(list.ok());
  EXPECT_NE(list.error().message.find("refused so that the management token is not sent there"),
            std::string::npos)
      << list.error().message;
  expect_one_clean_line(list.error().message);
  EXPECT_EQ(other.request_count(), 0u);
}

}  // namespace
}  // namespace tw::influx

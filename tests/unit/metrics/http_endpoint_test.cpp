// Tests for metrics/http_endpoint.h: handle_request as a plain function (routes, methods, /readyz
// JSON, basic auth against real bcrypt hashes) and HttpEndpoint over real sockets on port 0
// (keep-alive, HEAD, the 8 KiB header bound, request deadlines, the connection limit, start and
// stop errors). The wire client is plain POSIX sockets with poll() deadlines, so a server that
// misbehaves fails a test instead of hanging it. TLS over the wire is covered by the integration
// tests.

#include "metrics/http_endpoint.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace tw::metrics {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// --- helpers
// --------------------------------------------------------------------------------------

// A bcrypt hash of `password` at the lowest cost (fast enough for tests).
std::string bcrypt(const std::string& password) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  if (crypt_gensalt_rn("$2b$", 4, nullptr, 0, salt, sizeof salt) == nullptr) {
    throw std::runtime_error("crypt_gensalt_rn failed");
  }
  struct crypt_data data {};
  const char* hash = crypt_rn(password.c_str(), salt, &data, sizeof data);
  if (hash == nullptr || hash[0] == '*') throw std::runtime_error("crypt_rn failed");
  return hash;
}

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    auto n = (static_cast<unsigned char>(in[i]) << 16) |
             (static_cast<unsigned char>(in[i + 1]) << 8) | static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i + 1 == in.size()) {
    auto n = static_cast<unsigned char>(in[i]) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    auto n =
        (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string basic(std::string_view user_colon_password) {
  return "Basic " + base64(user_colon_password);
}

constexpr const char* kBody = "tokenwarden_build_info{version=\"test\"} 1\n";

struct Counters {
  std::atomic<int> metrics{0};
  std::atomic<bool> healthy{true};
};

EndpointHandlers handlers_for(Counters& c, ReadyState ready = {true, {}}) {
  EndpointHandlers h;
  h.metrics = [&c] {
    ++c.metrics;
    return std::string(kBody);
  };
  h.healthy = [&c] { return c.healthy.load(); };
  h.ready = [ready] { return ready; };
  return h;
}

Request get(std::string target, std::string authorization = "") {
  return Request{"GET", std::move(target), std::move(authorization)};
}

// --- handle_request
// ---------------------------------------------------------------------------------

TEST(HandleRequest, MetricsGetAndHead) {
  Counters c;
  auto h = handlers_for(c);
  for (const char* method : {"GET", "HEAD"}) {
    SCOPED_TRACE(method);
    Response r = handle_request(Request{method, "/metrics", ""}, h, nullptr);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_EQ(r.body, kBody);
    EXPECT_FALSE(r.ask_for_credentials);
  }
  EXPECT_EQ(c.metrics.load(), 2);
}

TEST(HandleRequest, QueryStringsAreIgnored) {
  Counters c;
  auto h = handlers_for(c);
  EXPECT_EQ(handle_request(get("/metrics?name[]=x&debug=1"), h, nullptr).body, kBody);
  EXPECT_EQ(handle_request(get("/healthz?"), h, nullptr).status, 200);
  EXPECT_EQ(handle_request(get("/readyz?verbose"), h, nullptr).status, 200);
  EXPECT_EQ(handle_request(get("/nope?/metrics"), h, nullptr).status, 404);
}

TEST(HandleRequest, Healthz) {
  Counters c;
  auto h = handlers_for(c);
  Response ok = handle_request(get("/healthz"), h, nullptr);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "ok\n");
  c.healthy = false;
  Response bad = handle_request(get("/healthz"), h, nullptr);
  EXPECT_EQ(bad.status, 503);
  EXPECT_NE(bad.body, "ok\n");
  EXPECT_FALSE(bad.body.empty());
}

TEST(HandleRequest, ReadyzReady) {
  Counters c;
  Response r = handle_request(get("/readyz"), handlers_for(c), nullptr);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j, nlohmann::json::parse(R"({"ready":true,"reasons":[]})"));
}

TEST(HandleRequest, ReadyzNotReadyListsReasonsAsValidJson) {
  static constexpr char kControl[] = "control \x01\x1f and nul \0 inside";
  const std::vector<std::string> reasons = {
      "cluster \"prod\" has not been polled yet",
      "line one\nline two\r\ttabbed",
      std::string(kControl, sizeof kControl - 1),
      "back\\slash </script> and caf\xc3\xa9",
  };
  Counters c;
  Response r = handle_request(get("/readyz"), handlers_for(c, ReadyState{false, reasons}), nullptr);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.content_type, "application/json");
  nlohmann::json j;
  ASSERT_NO_THROW(j = nlohmann::json::parse(r.body)) << r.body;
  EXPECT_EQ(j.at("ready"), false);
  ASSERT_TRUE(j.at("reasons").is_array());
  EXPECT_EQ(j.at("reasons").get<std::vector<std::string>>(), reasons);
}

TEST(HandleRequest, ReadyzReasonWithInvalidUtf8StaysValidJson) {
  Counters c;
  Response r = handle_request(
      get("/readyz"), handlers_for(c, ReadyState{false, {"bad byte \xff\xfe here"}}), nullptr);
  nlohmann::json j;
  ASSERT_NO_THROW(j = nlohmann::json::parse(r.body)) << r.body;
  ASSERT_EQ(j.at("reasons").size(), 1u);
  EXPECT_NE(j.at("reasons")[0].get<std::string>().find("here"), std::string::npos);
}

TEST(HandleRequest, OtherMethodsAre405WithAllow) {
  Counters c;
  auto h = handlers_for(c);
  for (const char* method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "get"}) {
    SCOPED_TRACE(method);
    Response r = handle_request(Request{method, "/metrics", ""}, h, nullptr);
    EXPECT_EQ(r.status, 405);
    EXPECT_EQ(r.allow, "GET, HEAD");
  }
  EXPECT_EQ(c.metrics.load(), 0) << "the handler is not called for a 405";
}

TEST(HandleRequest, UnknownPathsAre404) {
  Counters c;
  auto h = handlers_for(c);
  for (const char* path :
       {"/metricsx", "/metrics/", "/Metrics", "/healthz/x", "/favicon.ico", "metrics"}) {
    SCOPED_TRACE(path);
    Response r = handle_request(get(path), h, nullptr);
    EXPECT_EQ(r.status, 404);
    EXPECT_TRUE(r.allow.empty());
  }
  EXPECT_EQ(c.metrics.load(), 0);
}

TEST(HandleRequest, RootServesAnIndexPage) {
  Counters c;
  Response r = handle_request(get("/"), handlers_for(c), nullptr);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_NE(r.body.find("href=\"/metrics\""), std::string::npos);
}

// --- basic auth
// -------------------------------------------------------------------------------------------

class Auth : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    alice_hash_ = new std::string(bcrypt("s3cret"));
    bob_hash_ = new std::string(bcrypt("pa:ss word"));
  }
  static void TearDownTestSuite() {
    delete alice_hash_;
    delete bob_hash_;
  }
  static std::map<std::string, std::string> users() {
    return {{"alice", *alice_hash_}, {"bob", *bob_hash_}};
  }

  Response call(const std::string& authorization, const std::string& target = "/metrics") {
    return handle_request(get(target, authorization), handlers_, &auth_);
  }

  static std::string* alice_hash_;
  static std::string* bob_hash_;
  Counters counters_;
  EndpointHandlers handlers_ = handlers_for(counters_);
  Authenticator auth_{users()};
};
std::string* Auth::alice_hash_ = nullptr;
std::string* Auth::bob_hash_ = nullptr;

TEST_F(Auth, HashesFromTheTestHelperAreBcrypt) {
  EXPECT_EQ(alice_hash_->size(), 60u);
  EXPECT_EQ(alice_hash_->substr(0, 7), "$2b$04$");
}

TEST_F(Auth, MissingHeaderAsksForCredentials) {
  EXPECT_TRUE(auth_.enabled());
  Response r = call("");
  EXPECT_EQ(r.status, 401);
  EXPECT_TRUE(r.ask_for_credentials);
  EXPECT_EQ(r.body.find("tokenwarden_build_info"), std::string::npos);
  EXPECT_EQ(counters_.metrics.load(), 0);
}

TEST_F(Auth, RightPasswordPasses) {
  Response r = call(basic("alice:s3cret"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, kBody);
  EXPECT_FALSE(r.ask_for_credentials);
  EXPECT_EQ(call(basic("bob:pa:ss word")).status, 200)
      << "the password is everything after the first ':'";
  EXPECT_EQ(call(basic("alice:s3cret"), "/healthz").status, 200);
  EXPECT_EQ(call(basic("alice:s3cret"), "/readyz").status, 200);
}

TEST_F(Auth, TheBase64PaddingMayBeLeftOut) {
  std::string header = basic("bob:pa:ss word");  // 14 bytes: one '='
  ASSERT_EQ(header.back(), '=');
  header.pop_back();
  EXPECT_EQ(call(header).status, 200);
  EXPECT_EQ(call("basic  " + base64("alice:s3cret") + " ").status, 200)
      << "the scheme is case-insensitive and the value is trimmed";
}

TEST_F(Auth, WrongCredentialsAre401) {
  const std::vector<std::string> headers = {
      basic("alice:wrong"),
      basic("alice:"),
      basic("alice:s3cret "),
      basic("alice:S3CRET"),
      basic("mallory:s3cret"),  // unknown user
      basic("bob:s3cret"),      // alice's password for bob
      basic(":s3cret"),
      basic("alices3cret"),  // no colon
      "Basic !!!not base64!!!",
      // Decoded with OpenSSL since issue 11, checked first: EVP_DecodeBlock alone would read
      // '=' as zero bits and skip whitespace; the old decoder stopped at the first '='.
      basic("alice:s3cret") + "=trailing",
      basic("alice:s3cret") + "==",
      basic("bob:pa:ss word") + "garbage",
      basic("alice:s3cret") + "\n" + base64("x"),
      "Basic YWxp Y2U6czNjcmV0",
      "Basic " + base64("alice:s3cret").substr(0, 13),  // a lone 6-bit group
      "Basic ",
      "Basic",
      "Bearer " + base64("alice:s3cret"),
      base64("alice:s3cret"),  // no scheme
      "Digest username=\"alice\"",
  };
  for (const auto& h : headers) {
    SCOPED_TRACE(h);
    Response r = call(h);
    EXPECT_EQ(r.status, 401);
    EXPECT_TRUE(r.ask_for_credentials);
  }
  EXPECT_EQ(counters_.metrics.load(), 0);
}

TEST_F(Auth, ASuccessIsCachedPerCredentialsNotPerUser) {
  ASSERT_EQ(call(basic("alice:s3cret")).status, 200);
  EXPECT_EQ(call(basic("alice:wrong")).status, 401)
      << "a cached success must not admit another password";
  EXPECT_EQ(call(basic("alice:s3cret")).status, 200);
  EXPECT_TRUE(auth_.check(basic("alice:s3cret")));
  EXPECT_FALSE(auth_.check(basic("alice:s3cret2")));
}

TEST_F(Auth, ThePasswordIsNotTheHash) {
  EXPECT_EQ(call(basic("alice:" + *alice_hash_)).status, 401);
}

TEST(AuthDisabled, NoUsersMeansEverythingPasses) {
  Authenticator auth({});
  EXPECT_FALSE(auth.enabled());
  EXPECT_TRUE(auth.check(""));
  EXPECT_TRUE(auth.check("Basic garbage"));
  Counters c;
  auto h = handlers_for(c);
  Response r = handle_request(get("/metrics"), h, &auth);
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.ask_for_credentials);
  EXPECT_EQ(handle_request(get("/metrics", basic("x:y")), h, &auth).status, 200);
}

TEST(AuthDisabled, AnUnusableHashNeverAuthenticates) {
  // Not a hash crypt understands: crypt fails ("*0"), which must not compare equal to anything.
  Authenticator auth({{"alice", "*0"}, {"bob", ""}});
  EXPECT_FALSE(auth.check(basic("alice:*0")));
  EXPECT_FALSE(auth.check(basic("alice:")));
  EXPECT_FALSE(auth.check(basic("bob:")));
}

// --- the wire
// ---------------------------------------------------------------------------------------------

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return s;
}

// A blocking client over a POSIX socket; every read has a deadline.
class Client {
 public:
  explicit Client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~Client() { close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool send(std::string_view data) {
    while (!data.empty()) {
      auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // One response; nullopt on EOF, error or deadline before a whole response arrived.
  std::optional<HttpResponse> read_response(bool head = false,
                                            std::chrono::milliseconds timeout = 5000ms) {
    const auto deadline = Clock::now() + timeout;
    std::size_t end = std::string::npos;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill(deadline)) return std::nullopt;
    }
    HttpResponse r;
    std::string head_text = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    auto line_end = head_text.find("\r\n");
    std::string status_line = head_text.substr(0, line_end);
    if (status_line.size() < 12 || status_line.compare(0, 5, "HTTP/") != 0) return std::nullopt;
    r.status = std::stoi(status_line.substr(9, 3));
    std::size_t pos = line_end == std::string::npos ? head_text.size() : line_end + 2;
    while (pos < head_text.size()) {
      auto next = head_text.find("\r\n", pos);
      if (next == std::string::npos) next = head_text.size();
      std::string line = head_text.substr(pos, next - pos);
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        r.headers[lower(line.substr(0, colon))] = value;
      }
      pos = next + 2;
    }
    if (!head) {
      std::size_t length =
          r.headers.contains("content-length") ? std::stoul(r.headers["content-length"]) : 0;
      while (buf_.size() < length) {
        if (!fill(deadline)) return std::nullopt;
      }
      r.body = buf_.substr(0, length);
      buf_.erase(0, length);
    }
    return r;
  }

  // True when the server closes the connection (EOF or reset) before the deadline; data that
  // arrives first is kept for read_response.
  bool closed_by_server(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (fill(deadline)) {
    }
    return eof_;
  }

  // True while no close from the server is pending (checked without waiting).
  bool still_open() {
    if (eof_) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return true;
    char c = 0;
    auto n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
  }

  const std::string& buffered() const { return buf_; }

 private:
  // Reads what is available before the deadline; false on EOF, error or deadline.
  bool fill(Clock::time_point deadline) {
    if (eof_) return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() < 0) return false;
    pollfd p{fd_, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready <= 0) return false;
    char chunk[4096];
    auto n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
      buf_.append(chunk, static_cast<std::size_t>(n));
      return true;
    }
    if (n == 0 || errno == ECONNRESET) eof_ = true;
    return false;
  }

  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string buf_;
};

std::string request(std::string_view method, std::string_view target,
                    std::string_view extra_headers = "") {
  return std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
         std::string(extra_headers) + "\r\n";
}

class Endpoint : public ::testing::Test {
 protected:
  // Starts on 127.0.0.1:0 with `options` (listen is overridden unless set).
  void start(EndpointOptions options = {}) {
    if (options.listen == EndpointOptions{}.listen) options.listen = "127.0.0.1:0";
    auto r = HttpEndpoint::start(std::move(options), handlers_for(counters_), null_logger());
    ASSERT_TRUE(r.ok()) << r.error().message;
    endpoint_ = std::move(*r);
    ASSERT_NE(endpoint_->port(), 0);
  }
  std::uint16_t port() const { return endpoint_->port(); }

  Counters counters_;
  std::unique_ptr<HttpEndpoint> endpoint_;
};

TEST_F(Endpoint, GetMetrics) {
  start();
  EXPECT_EQ(endpoint_->url(), "http://127.0.0.1:" + std::to_string(port()));
  Client c(port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(request("GET", "/metrics")));
  auto r = c.read_response();
  ASSERT_TRUE(r.has_value()) << c.buffered();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, kBody);
  EXPECT_EQ(r->header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r->header("content-length"), std::to_string(std::string_view(kBody).size()));
  EXPECT_EQ(r->header("cache-control"), "no-store");
}

TEST_F(Endpoint, KeepAliveServesSeveralRequestsOnOneConnection) {
  start();
  Client c(port());
  ASSERT_TRUE(c.send(request("GET", "/metrics")));
  auto first = c.read_response();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->status, 200);
  EXPECT_TRUE(c.still_open());
  ASSERT_TRUE(c.send(request("GET", "/healthz")));
  auto second = c.read_response();
  ASSERT_TRUE(second.has_value()) << "the connection was not kept alive";
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ(second->body, "ok\n");
  // Pipelined: both requests in one write, answered in order.
  ASSERT_TRUE(c.send(request("GET", "/nope") + request("GET", "/metrics")));
  auto third = c.read_response();
  auto fourth = c.read_response();
  ASSERT_TRUE(third.has_value() && fourth.has_value());
  EXPECT_EQ(third->status, 404);
  EXPECT_EQ(fourth->status, 200);
  EXPECT_EQ(fourth->body, kBody);
  EXPECT_EQ(counters_.metrics.load(), 2);
}

TEST_F(Endpoint, HeadHasALengthButNoBody) {
  start();
  Client c(port());
  ASSERT_TRUE(c.send(request("HEAD", "/metrics")));
  auto head = c.read_response(/*head=*/true);
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->header("content-length"), std::to_string(std::string_view(kBody).size()));
  // A body after the HEAD response would be read as the start of the next response.
  ASSERT_TRUE(c.send(request("GET", "/healthz")));
  auto next = c.read_response();
  ASSERT_TRUE(next.has_value()) << c.buffered();
  EXPECT_EQ(next->status, 200);
  EXPECT_EQ(next->body, "ok\n");
}

TEST_F(Endpoint, ConnectionCloseAndHttp10CloseAfterTheResponse) {
  start();
  {
    Client c(port());
    ASSERT_TRUE(c.send(request("GET", "/healthz", "Connection: close\r\n")));
    auto r = c.read_response();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(c.closed_by_server(2000ms));
  }
  {
    Client c(port());
    ASSERT_TRUE(c.send("GET /healthz HTTP/1.0\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(c.closed_by_server(2000ms));
  }
}

TEST_F(Endpoint, MethodNotAllowedCarriesAllow) {
  start();
  Client c(port());
  ASSERT_TRUE(c.send(request("POST", "/metrics", "Content-Length: 0\r\n")));
  auto r = c.read_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->header("allow"), "GET, HEAD");
  EXPECT_EQ(counters_.metrics.load(), 0);
}

TEST_F(Endpoint, RequestBodiesAreNeverReadAndEndTheConnection) {
  start();
  {
    Client c(port());
    ASSERT_TRUE(c.send(request("POST", "/metrics", "Content-Length: 5\r\n") + "hello"));
    auto r = c.read_response();
    ASSERT_TRUE(r.has_value()) << c.buffered();
    EXPECT_EQ(r->status, 405);
    EXPECT_EQ(r->header("allow"), "GET, HEAD");
    EXPECT_TRUE(c.closed_by_server(2000ms))
        << "the unread body must not be parsed as a next request";
  }
  {
    Client c(port());
    ASSERT_TRUE(c.send(request("GET", "/metrics", "Content-Length: 5\r\n") + "hello"));
    auto r = c.read_response();
    ASSERT_TRUE(r.has_value()) << c.buffered();
    EXPECT_EQ(r->status, 413);
    EXPECT_TRUE(c.closed_by_server(2000ms));
  }
  {
    Client c(port());
    ASSERT_TRUE(c.send(request("GET", "/metrics", "Transfer-Encoding: chunked\r\n") +
                       "5\r\nhello\r\n0\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r.has_value()) << c.buffered();
    EXPECT_EQ(r->status, 413);
    EXPECT_TRUE(c.closed_by_server(2000ms));
  }
  EXPECT_EQ(counters_.metrics.load(), 0);
}

TEST_F(Endpoint, OversizedHeaderIs413AndCloses) {
  start();
  Client c(port());
  ASSERT_TRUE(
      c.send(request("GET", "/metrics", "X-Padding: " + std::string(9 * 1024, 'a') + "\r\n")));
  auto r = c.read_response();
  ASSERT_TRUE(r.has_value()) << c.buffered();
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(c.closed_by_server(2000ms));
  EXPECT_EQ(counters_.metrics.load(), 0);

  // A header just under the bound is served.
  Client ok(port());
  ASSERT_TRUE(
      ok.send(request("GET", "/metrics", "X-Padding: " + std::string(7 * 1024, 'a') + "\r\n")));
  auto served = ok.read_response();
  ASSERT_TRUE(served.has_value());
  EXPECT_EQ(served->status, 200);
}

TEST_F(Endpoint, MalformedRequestClosesTheConnection) {
  start();
  Client c(port());
  ASSERT_TRUE(c.send("THIS IS NOT HTTP\r\n\r\n"));
  EXPECT_TRUE(c.closed_by_server(2000ms));
  // The server is still serving.
  Client next(port());
  ASSERT_TRUE(next.send(request("GET", "/healthz")));
  auto r = next.read_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
}

TEST_F(Endpoint, AnIdleClientDoesNotDelayOthers) {
  EndpointOptions options;
  options.request_timeout = 30s;  // the idle client outlives the test unless the server is serial
  start(options);
  Client idle(port());
  ASSERT_TRUE(idle.connected());
  Client partial(port());
  ASSERT_TRUE(partial.send("GET /metrics HTTP/1.1\r\nHost: x\r\n"));  // never finished

  const auto begin = Clock::now();
  Client c(port());
  ASSERT_TRUE(c.send(request("GET", "/metrics")));
  auto r = c.read_response(false, 2000ms);
  ASSERT_TRUE(r.has_value()) << "a second client was not served while the first was idle";
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(Clock::now() - begin, 2s);
  EXPECT_TRUE(idle.still_open()) << "the idle client is served concurrently, not dropped";
  EXPECT_TRUE(partial.still_open());
}

TEST_F(Endpoint, SlowClientIsClosedAfterTheRequestTimeout) {
  EndpointOptions options;
  options.request_timeout = 300ms;
  start(options);
  const auto begin = Clock::now();
  Client idle(port());
  Client partial(port());
  ASSERT_TRUE(partial.send("GET /metrics HTTP/1.1\r\nHost: x\r\n"));
  EXPECT_TRUE(idle.closed_by_server(5000ms)) << "an idle connection stayed open";
  EXPECT_TRUE(partial.closed_by_server(5000ms)) << "a half-sent request stayed open";
  EXPECT_GE(Clock::now() - begin, 250ms) << "closed before the timeout";
  EXPECT_EQ(counters_.metrics.load(), 0);
}

TEST_F(Endpoint, AtTheCapTheLongestIdleConnectionMakesRoom) {
  // The adversarial report: 64 keep-alive clients that idle after one request locked every
  // other client out for the 60 s keep-alive. Now the cap sheds the longest-idle one.
  EndpointOptions options;
  options.max_connections = 4;
  options.request_timeout = 30s;
  options.idle_timeout = 30s;  // the shedding, not the timeout, must let the newcomer in
  start(options);
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < 4; ++i) {
    idle.push_back(std::make_unique<Client>(port()));
    ASSERT_TRUE(idle.back()->send(request("GET", "/healthz")));
    ASSERT_TRUE(idle.back()->read_response().has_value());
  }
  std::vector<std::unique_ptr<Client>> scrapers;  // kept open: each round starts at the cap
  for (int round = 0; round < 3; ++round) {
    scrapers.push_back(std::make_unique<Client>(port()));
    Client& scraper = *scrapers.back();
    ASSERT_TRUE(scraper.send(request("GET", "/metrics")));
    auto r = scraper.read_response(false, 2000ms);
    ASSERT_TRUE(r.has_value()) << "a new client was locked out by idle ones (round " << round
                               << ")";
    EXPECT_EQ(r->status, 200);
    // The longest-idle one was closed for it, the others were not.
    EXPECT_TRUE(idle[static_cast<std::size_t>(round)]->closed_by_server(2000ms)) << round;
    for (std::size_t i = static_cast<std::size_t>(round) + 1; i < idle.size(); ++i) {
      EXPECT_TRUE(idle[i]->still_open()) << i;
    }
  }
}

TEST_F(Endpoint, AWholeIdleConnectionIsShedBeforeOneWithHalfARequest) {
  EndpointOptions options;
  options.max_connections = 2;
  options.request_timeout = 30s;
  options.idle_timeout = 30s;
  start(options);
  Client partial(port());
  ASSERT_TRUE(partial.send("GET /metrics HTTP/1.1\r\nHost: x\r\n"));  // older, half sent
  Client idle(port());
  ASSERT_TRUE(idle.send(request("GET", "/healthz")));
  ASSERT_TRUE(idle.read_response().has_value());

  Client next(port());
  ASSERT_TRUE(next.send(request("GET", "/healthz")));
  ASSERT_TRUE(next.read_response(false, 2000ms).has_value());
  EXPECT_TRUE(idle.closed_by_server(2000ms));
  EXPECT_TRUE(partial.still_open());
  // The half-sent request can still complete.
  ASSERT_TRUE(partial.send("\r\n"));
  auto r = partial.read_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
}

TEST_F(Endpoint, WhenEveryConnectionIsBusyANewOneIsRefused) {
  // A connection that is being answered is not shed: with a client that does not read a large
  // response, the only slot stays busy and a newcomer is closed.
  EndpointOptions options;
  options.listen = "127.0.0.1:0";
  options.max_connections = 1;
  options.request_timeout = 30s;
  EndpointHandlers h;
  h.metrics = [] { return std::string(64 << 20, '#'); };
  auto started = HttpEndpoint::start(options, h, null_logger());
  ASSERT_TRUE(started.ok()) << started.error().message;
  endpoint_ = std::move(*started);
  Client busy(port());
  ASSERT_TRUE(busy.send(request("GET", "/metrics")));
  // Wait until the response is being written (its first bytes arrive), without reading it all.
  ASSERT_TRUE(busy.read_response(true).has_value());

  Client refused(port());
  EXPECT_TRUE(refused.closed_by_server(2000ms)) << "a newcomer was kept beyond the cap";
  EXPECT_TRUE(busy.still_open());
}

TEST_F(Endpoint, IdleKeepAliveConnectionsCloseAfterTheIdleTimeout) {
  EndpointOptions options;
  options.request_timeout = 30s;
  options.idle_timeout = 300ms;
  start(options);
  Client c(port());
  ASSERT_TRUE(c.send(request("GET", "/healthz")));
  ASSERT_TRUE(c.read_response().has_value());
  const auto begin = Clock::now();
  EXPECT_TRUE(c.closed_by_server(5000ms)) << "an idle keep-alive connection stayed open";
  EXPECT_GE(Clock::now() - begin, 200ms) << "closed before the idle timeout";
}

TEST(EndpointDefaults, IdleTimeoutIsWellBelowAScrapeInterval) {
  EXPECT_LE(EndpointOptions{}.idle_timeout, 5s);
  EXPECT_EQ(EndpointOptions{}.max_connections, 64u);
}

TEST_F(Endpoint, BasicAuthOverTheWire) {
  EndpointOptions options;
  options.web.users = {{"prometheus", bcrypt("scrape-me")}};
  start(options);
  Client c(port());
  ASSERT_TRUE(c.send(request("GET", "/metrics")));
  auto denied = c.read_response();
  ASSERT_TRUE(denied.has_value());
  EXPECT_EQ(denied->status, 401);
  EXPECT_TRUE(lower(denied->header("www-authenticate")).starts_with("basic "))
      << denied->header("www-authenticate");
  EXPECT_NE(denied->header("www-authenticate").find("realm="), std::string::npos);
  EXPECT_EQ(counters_.metrics.load(), 0);

  ASSERT_TRUE(c.send(
      request("GET", "/metrics", "Authorization: " + basic("prometheus:scrape-me") + "\r\n")));
  auto allowed = c.read_response();
  ASSERT_TRUE(allowed.has_value());
  EXPECT_EQ(allowed->status, 200);
  EXPECT_EQ(allowed->body, kBody);
  EXPECT_TRUE(allowed->header("www-authenticate").empty());
}

TEST_F(Endpoint, PortInUseFailsNamingTheAddress) {
  start();
  const std::string taken = "127.0.0.1:" + std::to_string(port());
  EndpointOptions options;
  options.listen = taken;
  Counters c;
  auto r = HttpEndpoint::start(options, handlers_for(c), null_logger());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(taken), std::string::npos) << r.error().message;
  // The first endpoint is unaffected.
  Client client(port());
  ASSERT_TRUE(client.send(request("GET", "/healthz")));
  auto resp = client.read_response();
  ASSERT_TRUE(resp.has_value());
  EXPECT_EQ(resp->status, 200);
}

TEST(EndpointStart, InvalidListenAddressesFail) {
  for (const char* listen : {"no-port-here", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:65536",
                             "127.0.0.1:99999", "127.0.0.1:-1", "127.0.0.1:80x"}) {
    SCOPED_TRACE(listen);
    EndpointOptions options;
    options.listen = listen;
    Counters c;
    auto r = HttpEndpoint::start(options, handlers_for(c), null_logger());
    EXPECT_FALSE(r.ok()) << "listening on " << (r.ok() ? (*r)->url() : "");
    if (!r.ok()) {
      EXPECT_FALSE(r.error().message.empty());
    }
  }
}

TEST(EndpointStart, MissingTlsFilesFail) {
  EndpointOptions options;
  options.listen = "127.0.0.1:0";
  options.web.tls_cert_file = "/nonexistent/tokenwarden-test/cert.pem";
  options.web.tls_key_file = "/nonexistent/tokenwarden-test/key.pem";
  Counters c;
  auto r = HttpEndpoint::start(options, handlers_for(c), null_logger());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("cert.pem"), std::string::npos) << r.error().message;
}

TEST_F(Endpoint, StopIsIdempotentAndReleasesThePort) {
  start();
  const auto p = port();
  endpoint_->stop();
  endpoint_->stop();
  Client c(p);
  EXPECT_FALSE(c.connected() && c.send(request("GET", "/healthz")) &&
               c.read_response(false, 1000ms).has_value())
      << "still served after stop()";
  EXPECT_FALSE(c.connected()) << "the port still accepts connections after stop()";
  endpoint_.reset();  // the destructor after stop() is a no-op
}

TEST_F(Endpoint, StopWithOpenConnectionsReturns) {
  EndpointOptions options;
  options.request_timeout = 30s;
  start(options);
  Client idle(port());
  Client served(port());
  ASSERT_TRUE(served.send(request("GET", "/healthz")));
  ASSERT_TRUE(served.read_response().has_value());
  const auto begin = Clock::now();
  endpoint_.reset();  // destructor stops; must not wait for the idle clients' deadlines
  EXPECT_LT(Clock::now() - begin, 2s);
}

TEST_F(Endpoint, ListensOnIpv6Loopback) {
  EndpointOptions options;
  options.listen = "[::1]:0";
  Counters c;
  auto r = HttpEndpoint::start(options, handlers_for(c), null_logger());
  if (!r.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << r.error().message;
  EXPECT_EQ((*r)->url(), "http://[::1]:" + std::to_string((*r)->port()));
}

}  // namespace
}  // namespace tw::metrics

#include "metrics/http_endpoint.h"

#include <crypt.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "core/base64.h"
#include "core/json_writer.h"
#include "core/sha256.h"
#include "core/strings.h"
#include "net/listener.h"

namespace tw::metrics {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr int kMaxRequestsPerConnection = 10000;

bool equal_constant_time(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

// --- basic auth -------------------------------------------------------------------------------

struct Authenticator::Impl {
  std::map<std::string, std::string> users;
  std::mutex mu;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point>
      verified;  // sha256(user:pass)
};

Authenticator::Authenticator(std::map<std::string, std::string> users)
    : impl_(std::make_unique<Impl>()) {
  impl_->users = std::move(users);
}
Authenticator::~Authenticator() = default;
bool Authenticator::enabled() const { return !impl_->users.empty(); }

bool Authenticator::check(const std::string& header) {
  if (!enabled()) return true;
  // The scheme name is case-insensitive (RFC 7617).
  if (header.size() < 6 || to_lower(std::string_view(header).substr(0, 6)) != "basic ")
    return false;
  auto credentials = base64_decode(trim(std::string_view(header).substr(6)));
  if (!credentials) return false;
  const std::string& decoded = *credentials;
  auto colon = decoded.find(':');
  if (colon == std::string::npos) return false;
  std::string user = decoded.substr(0, colon);
  std::string pass = decoded.substr(colon + 1);
  auto it = impl_->users.find(user);
  if (it == impl_->users.end()) return false;
  const std::string key = sha256_hex(decoded);
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(impl_->mu);
    auto v = impl_->verified.find(key);
    if (v != impl_->verified.end() && now - v->second < std::chrono::minutes(5)) return true;
  }
  struct crypt_data data {};
  const char* out = crypt_rn(pass.c_str(), it->second.c_str(), &data, sizeof data);
  bool ok = out != nullptr && out[0] != '*' && equal_constant_time(out, it->second);
  if (ok) {
    std::lock_guard lock(impl_->mu);
    if (impl_->verified.size() > 1000) impl_->verified.clear();
    impl_->verified[key] = now;
  }
  return ok;
}

// --- the handler --------------------------------------------------------------------------------

Response handle_request(const Request& req, const EndpointHandlers& h, Authenticator* auth) {
  Response r;
  std::string_view path = req.target;
  path = path.substr(0, path.find('?'));
  if (req.method != "GET" && req.method != "HEAD") {
    r.status = 405;
    r.allow = "GET, HEAD";
    r.body = "only GET and HEAD are served\n";
    return r;
  }
  if (path != "/metrics" && path != "/healthz" && path != "/readyz" && path != "/") {
    r.status = 404;
    r.body = "not found: try /metrics, /healthz or /readyz\n";
    return r;
  }
  if (auth != nullptr && auth->enabled() && !auth->check(req.authorization)) {
    r.status = 401;
    r.body = "authentication required\n";
    r.ask_for_credentials = true;
    return r;
  }
  if (path == "/") {
    r.content_type = "text/html; charset=utf-8";
    r.body =
        "<!DOCTYPE html><title>tokenwarden</title><h1>tokenwarden</h1>"
        "<p><a href=\"/metrics\">/metrics</a> <a href=\"/healthz\">/healthz</a> "
        "<a href=\"/readyz\">/readyz</a></p>\n";
  } else if (path == "/metrics") {
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = h.metrics ? h.metrics() : std::string();
  } else if (path == "/healthz") {
    bool ok = !h.healthy || h.healthy();
    r.status = ok ? 200 : 503;
    r.body = ok ? "ok\n" : "the event loop is not running\n";
  } else {
    ReadyState s = h.ready ? h.ready() : ReadyState{true, {}};
    r.status = s.ready ? 200 : 503;
    r.content_type = "application/json";
    JsonWriter w(r.body);
    w.begin_object().field("ready", s.ready).key("reasons").begin_array();
    for (const auto& reason : s.reasons) w.value(reason);
    w.end_array().end_object();
    r.body += '\n';
  }
  return r;
}

// --- the server
// -----------------------------------------------------------------------------------

struct HttpEndpoint::Impl {
  // One open connection. Touched only on the endpoint's thread.
  struct Conn {
    beast::tcp_stream* stream = nullptr;         // set once its coroutine runs; closing it ends it
    const beast::flat_buffer* buffer = nullptr;  // holds a request not yet complete, if any
    bool waiting = true;      // for a request (or in the TLS handshake), not answering one
    bool shed = false;        // closed to make room; its coroutine is ending
    std::uint64_t since = 0;  // when it began waiting, as a tick of wait_ticks (no clock read)
  };
  // Declared before the io_context: coroutine frames destroyed with it erase their entries.
  std::list<Conn> conns;
  std::uint64_t wait_ticks = 0;

  EndpointOptions options;
  EndpointHandlers handlers;
  Logger log = null_logger();
  std::unique_ptr<Authenticator> auth;
  asio::io_context ioc{1};
  std::optional<tcp::acceptor> acceptor;
  std::unique_ptr<ssl::context> tls;
  std::thread thread;
  std::string host;
  std::uint16_t port = 0;
  bool stopped = false;

  template <class Stream>
  asio::awaitable<void> serve(Stream& stream, beast::tcp_stream& lowest, Conn& conn) {
    beast::flat_buffer buffer(16 * 1024);
    conn.buffer = &buffer;
    for (int n = 0; n < kMaxRequestsPerConnection; ++n) {
      http::request_parser<http::empty_body> parser;
      parser.header_limit(8 * 1024);
      parser.body_limit(boost::none);  // never read: a body gets 405/413 from the header alone
      // The first request may take request_timeout; later ones may idle on keep-alive for
      // idle_timeout (well below a scrape interval, so idle scrapers do not hold slots).
      lowest.expires_after(n == 0 ? options.request_timeout : options.idle_timeout);
      if (n > 0) {
        conn.waiting = true;
        conn.since = ++wait_ticks;
      }
      // Headers only: a request with a body is answered (405 or 413) without reading it.
      auto [ec, bytes] = co_await http::async_read_header(stream, buffer, parser, kTuple);
      (void)bytes;
      conn.waiting = false;
      const bool get_or_head = !ec && (parser.get().method() == http::verb::get ||
                                       parser.get().method() == http::verb::head);
      if (!ec && get_or_head && !parser.is_done()) ec = http::error::body_limit;
      if (ec) {
        if (ec == http::error::body_limit || ec == http::error::header_limit) {
          http::response<http::string_body> res{http::status::payload_too_large, 11};
          res.set(http::field::content_type, "text/plain");
          res.body() = "request too large\n";
          res.prepare_payload();
          lowest.expires_after(options.request_timeout);
          co_await http::async_write(stream, res, kTuple);
        }
        co_return;
      }
      const auto& msg = parser.get();
      Request req;
      req.method = std::string(msg.method_string());
      req.target = std::string(msg.target());
      req.authorization = std::string(msg[http::field::authorization]);
      Response out = handle_request(req, handlers, auth.get());
      http::response<http::string_body> res{static_cast<http::status>(out.status), msg.version()};
      res.set(http::field::server, "tokenwarden");
      res.set(http::field::content_type, out.content_type);
      res.set(http::field::cache_control, "no-store");
      if (out.ask_for_credentials)
        res.set(http::field::www_authenticate, "Basic realm=\"tokenwarden\"");
      if (!out.allow.empty()) res.set(http::field::allow, out.allow);
      // An unread body ends the connection, and so does the last request a connection may make:
      // either way the response says so (Connection: close), so the client does not reuse it.
      res.keep_alive(msg.keep_alive() && parser.is_done() && n + 1 < kMaxRequestsPerConnection);
      if (msg.method() == http::verb::head) {
        res.content_length(out.body.size());
      } else {
        res.body() = std::move(out.body);
        res.prepare_payload();
      }
      lowest.expires_after(options.request_timeout);
      auto [wec, written] = co_await http::async_write(stream, res, kTuple);
      (void)written;
      if (wec || !res.keep_alive()) co_return;
    }
  }

  asio::awaitable<void> connection(tcp::socket socket, std::list<Conn>::iterator self) {
    struct Forget {  // the entry goes with the coroutine, however it ends
      std::list<Conn>& list;
      std::list<Conn>::iterator it;
      ~Forget() { list.erase(it); }
    } forget{conns, self};
    if (self->shed) co_return;
    Conn& conn = *self;
    beast::tcp_stream stream(std::move(socket));
    conn.stream = &stream;
    if (!tls) {
      co_await serve(stream, stream, conn);
      beast::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    } else {
      beast::ssl_stream<beast::tcp_stream> s(std::move(stream), *tls);
      conn.stream = &beast::get_lowest_layer(s);
      beast::get_lowest_layer(s).expires_after(options.request_timeout);
      auto [hec] = co_await s.async_handshake(ssl::stream_base::server, kTuple);
      if (!hec) {
        co_await serve(s, beast::get_lowest_layer(s), conn);
        beast::get_lowest_layer(s).expires_after(std::chrono::seconds(1));
        auto [sec] = co_await s.async_shutdown(kTuple);
        (void)sec;
      }
    }
  }

  void accepted(tcp::socket socket) {
    if (open_connections() >= options.max_connections && !shed_oldest_waiting()) {
      beast::error_code ignored;  // every slot is answering a request: refuse this one
      socket.close(ignored);
      return;
    }
    auto self = conns.emplace(conns.end());
    self->since = ++wait_ticks;
    asio::co_spawn(ioc, connection(std::move(socket), self), [](std::exception_ptr) {});
  }

  std::size_t open_connections() const {
    std::size_t n = 0;
    for (const auto& c : conns) n += c.shed ? 0 : 1;
    return n;
  }

  // Makes room at the connection cap: closes the connection that has waited longest for a
  // request, preferring one with no part of a request received. False if all are answering.
  bool shed_oldest_waiting() {
    Conn* victim = nullptr;
    auto partial = [](const Conn& c) { return c.buffer != nullptr && c.buffer->size() > 0; };
    for (auto& c : conns) {
      if (c.shed || !c.waiting) continue;
      if (victim == nullptr || partial(*victim) > partial(c) ||
          (partial(*victim) == partial(c) && c.since < victim->since)) {
        victim = &c;
      }
    }
    if (victim == nullptr) return false;
    victim->shed = true;
    if (victim->stream != nullptr) victim->stream->close();
    log.debug("closed the longest-idle connection to admit a new one",
              {{"max_connections", static_cast<std::int64_t>(options.max_connections)}});
    return true;
  }
};

HttpEndpoint::HttpEndpoint(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpEndpoint::~HttpEndpoint() { stop(); }

namespace {

// The server's TLS context from the web config: certificate chain, the key that must match it,
// and the client CA for mutual TLS. Shared by start() and check_tls_files().
Status load_tls(ssl::context& ctx, const WebConfig& web) {
  boost::system::error_code ec;
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  ctx.use_certificate_chain_file(web.tls_cert_file, ec);
  if (!ec) ctx.use_private_key_file(web.tls_key_file, ssl::context::pem, ec);
  if (ec) {
    return make_error(ErrorCode::kInvalidArgument, "cannot load the TLS certificate or key (" +
                                                       printable(web.tls_cert_file, 200) +
                                                       "): " + ec.message());
  }
  if (!web.tls_client_ca_file.empty()) {
    ctx.load_verify_file(web.tls_client_ca_file, ec);
    if (ec) {
      return make_error(ErrorCode::kInvalidArgument, "cannot load the client CA " +
                                                         printable(web.tls_client_ca_file, 200) +
                                                         ": " + ec.message());
    }
    ctx.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  }
  return {};
}

}  // namespace

Status check_tls_files(const WebConfig& web) {
  if (!web.tls()) return {};
  ssl::context ctx(ssl::context::tls_server);
  return load_tls(ctx, web);
}

Result<std::unique_ptr<HttpEndpoint>> HttpEndpoint::start(EndpointOptions options,
                                                          EndpointHandlers handlers, Logger log) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->handlers = std::move(handlers);
  impl->log = std::move(log);
  impl->auth = std::make_unique<Authenticator>(impl->options.web.users);
  const std::string& listen = impl->options.listen;
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return make_error(ErrorCode::kInvalidArgument,
                      "http.listen \"" + listen + "\" is not host:port");
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  const std::string port_text = listen.substr(colon + 1);
  auto resolved = net::resolve_host(impl->ioc, host);
  if (!resolved) {
    return make_error(ErrorCode::kInvalidArgument, "http.listen: cannot resolve \"" + host + "\"");
  }
  const asio::ip::address address = *resolved;
  const auto& web = impl->options.web;
  if (web.tls()) {
    impl->tls = std::make_unique<ssl::context>(ssl::context::tls_server);
    if (auto st = load_tls(*impl->tls, web); !st.ok()) {
      return make_error(st.error().code, "web_config: " + st.error().message);
    }
  }
  // Digits only, at most 65535: stoul alone accepts "80x" (80), "-1" (wraps) and 65536 (truncated
  // to 0 below), each of which would listen somewhere else than asked.
  unsigned long port_number = 0;
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos ||
      (port_number = std::stoul(port_text)) > 65535) {
    return make_error(ErrorCode::kInvalidArgument,
                      "http.listen: invalid port \"" + port_text + "\"");
  }
  tcp::endpoint endpoint(address, static_cast<std::uint16_t>(port_number));
  impl->acceptor.emplace(impl->ioc);
  if (auto failed = net::listen_on(*impl->acceptor, endpoint)) {
    return make_error(ErrorCode::kNetwork,
                      "cannot listen on " + listen + ": " + failed->error.message());
  }
  impl->port = impl->acceptor->local_endpoint().port();
  impl->host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  Impl* raw = impl.get();
  asio::co_spawn(raw->ioc,
                 net::accept_loop(
                     *raw->acceptor,
                     [raw](tcp::socket socket) { raw->accepted(std::move(socket)); }, raw->log),
                 asio::detached);
  impl->thread = std::thread([raw] { raw->ioc.run(); });
  return std::unique_ptr<HttpEndpoint>(new HttpEndpoint(std::move(impl)));
}

std::uint16_t HttpEndpoint::port() const { return impl_->port; }

std::string HttpEndpoint::url() const {
  return std::string(impl_->tls ? "https://" : "http://") + impl_->host + ":" +
         std::to_string(impl_->port);
}

void HttpEndpoint::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  asio::post(impl_->ioc, [impl = impl_.get()] {
    boost::system::error_code ignored;
    if (impl->acceptor) impl->acceptor->close(ignored);
  });
  // The daemon is stopping: connections still open (idle keep-alives, a scrape in flight) are
  // dropped; a scraper retries at its next interval.
  impl_->ioc.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  // The loop may stop before the posted close runs; the thread is gone, so close here: once stop()
  // returns the port is released (clients get "connection refused", not a hang until destruction).
  boost::system::error_code ignored;
  if (impl_->acceptor) impl_->acceptor->close(ignored);
}

}  // namespace tw::metrics

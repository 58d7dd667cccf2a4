#include "sim/server.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <future>
#include <list>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "core/strings.h"
#include "net/listener.h"
#include "sim/generator.h"
#include "sim/service.h"
#include "sim/wire.h"

namespace tw::sim {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

constexpr auto kIdleTimeout = std::chrono::seconds(120);  // keep-alive connection, no request
constexpr auto kIoTimeout = std::chrono::seconds(60);     // one read or write step
constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
constexpr auto kDrainTimeout = std::chrono::seconds(5);  // reading the rest of a 413 body
constexpr std::size_t kMaxDrain = std::size_t{64} << 20;
constexpr auto kStopGrace = std::chrono::seconds(2);
constexpr std::uint32_t kMaxHeader = 64 * 1024;
constexpr std::size_t kSlowChunks = 20;

// A live connection, registered while its session runs; touched only on the I/O thread.
struct Conn {
  std::function<void()> close;  // closes the socket and cancels the connection's timer
  bool interruptible = true;    // false while an ordinary response is being written
};

std::string status_line(int status) {
  auto r = http::obsolete_reason(static_cast<http::status>(status));
  std::string_view reason(r.data(), r.size());
  std::string line = "HTTP/1.1 " + std::to_string(status) + " ";
  line += (reason.empty() || reason == "<unknown-status>") ? std::string_view("Unknown") : reason;
  line += "\r\n";
  return line;
}

std::string response_head(const SimResponse& r, std::size_t content_length, bool keep_alive) {
  std::string h = status_line(r.status);
  h += "Server: tokenwarden-sim\r\n";
  const bool typed = std::any_of(r.headers.begin(), r.headers.end(),
                                 [](const auto& kv) { return kv.first == "Content-Type"; });
  if (r.status != 204 && r.status >= 200) {
    if (!typed) h += "Content-Type: application/json\r\n";
    h += "Content-Length: " + std::to_string(content_length) + "\r\n";
  }
  for (const auto& [k, v] : r.headers) h += k + ": " + v + "\r\n";
  h += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  h += "\r\n";
  return h;
}

bool is_parse_error(const beast::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

// Unregisters a connection however its session ends.
struct ConnRegistration {
  std::list<std::shared_ptr<Conn>>& list;
  std::list<std::shared_ptr<Conn>>::iterator it;
  ~ConnRegistration() { list.erase(it); }
};

std::string url_host(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

Error invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

}  // namespace

struct SimServer::Impl {
  ~Impl() {
    shutdown();
    acceptor.reset();
    ioc.reset();  // destroys any coroutine frames left after a forced stop
  }

  void shutdown();
  void accepted(tcp::socket socket);
  asio::awaitable<void> plain_session(tcp::socket socket);
  asio::awaitable<void> tls_session(tcp::socket socket);
  template <class Stream>
  asio::awaitable<void> serve(Stream& stream, asio::steady_timer& timer, Conn& conn);
  template <class Stream>
  asio::awaitable<bool> respond(Stream& stream, asio::steady_timer& timer, Conn& conn,
                                const SimResponse& r, bool keep_alive, bool head_only);
  template <class Stream>
  asio::awaitable<bool> write(Stream& stream, std::string_view a, std::string_view b = {});
  asio::awaitable<bool> wait(asio::steady_timer& timer, Duration d);
  std::list<std::shared_ptr<Conn>>::iterator add_conn();
  auto on_done() {
    return [this](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        logger.error("connection failed", {{"error", ex.what()}});
      }
    };
  }

  Flavor flavor = Flavor::kClustered;
  std::string account_id;
  std::string cluster_id;
  std::string scheme;
  std::string host;
  std::uint16_t port = 0;
  Logger logger = null_logger();
  std::unique_ptr<TokenStore> store;
  std::unique_ptr<Service> service;
  std::optional<ssl::context> tls;
  std::list<std::shared_ptr<Conn>> conns;  // I/O thread only
  bool stopping = false;                   // I/O thread only
  std::unique_ptr<asio::io_context> ioc;
  std::optional<tcp::acceptor> acceptor;
  std::thread thread;
  std::promise<void> done_promise;
  std::future<void> done = done_promise.get_future();
  std::mutex stop_mu;
  bool stopped = false;
};

std::list<std::shared_ptr<Conn>>::iterator SimServer::Impl::add_conn() {
  return conns.insert(conns.end(), std::make_shared<Conn>());
}

asio::awaitable<bool> SimServer::Impl::wait(asio::steady_timer& timer, Duration d) {
  timer.expires_after(d);
  auto [ec] = co_await timer.async_wait(kTuple);
  co_return !ec && !stopping;
}

template <class Stream>
asio::awaitable<bool> SimServer::Impl::write(Stream& stream, std::string_view a,
                                             std::string_view b) {
  beast::get_lowest_layer(stream).expires_after(kIoTimeout);
  std::array<asio::const_buffer, 2> buffers{asio::buffer(a.data(), a.size()),
                                            asio::buffer(b.data(), b.size())};
  auto [ec, n] = co_await asio::async_write(stream, buffers, kTuple);
  (void)n;
  co_return !ec;
}

template <class Stream>
asio::awaitable<bool> SimServer::Impl::respond(Stream& stream, asio::steady_timer& timer,
                                               Conn& conn, const SimResponse& r, bool keep_alive,
                                               bool head_only) {
  auto& lowest = beast::get_lowest_layer(stream);
  std::string_view body = r.body && !head_only ? std::string_view(*r.body) : std::string_view();
  std::size_t length = r.body ? r.body->size() : 0;
  conn.interruptible = true;
  switch (r.fault.value_or(FaultKind::kStatus)) {
    case FaultKind::kReset: {
      beast::error_code ec;
      lowest.socket().set_option(asio::socket_base::linger(true, 0), ec);
      lowest.close();
      co_return false;
    }
    case FaultKind::kTimeout: {
      // Hold the connection: read and discard until the client goes away, the hold passes or
      // the server stops (the tcp_stream deadline ends the read).
      std::array<char, 512> sink;
      auto until = std::chrono::steady_clock::now() + r.delay;
      for (;;) {
        lowest.expires_at(until);
        auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), kTuple);
        (void)n;
        if (ec || stopping) break;
      }
      lowest.close();
      co_return false;
    }
    case FaultKind::kSlow: {
      std::string head = response_head(r, length, keep_alive);
      if (!co_await write(stream, head)) co_return false;
      std::size_t chunks = std::max<std::size_t>(1, std::min(kSlowChunks, body.size()));
      Duration step = r.delay / static_cast<Duration::rep>(chunks);
      std::size_t per = (body.size() + chunks - 1) / chunks;
      for (std::size_t i = 0; i < chunks; ++i) {
        if (!co_await wait(timer, step)) co_return false;
        std::size_t from = std::min(body.size(), i * per);
        std::size_t n = std::min(per, body.size() - from);
        if (n > 0 && !co_await write(stream, body.substr(from, n))) co_return false;
      }
      co_return true;
    }
    case FaultKind::kTruncate: {
      std::string head = response_head(r, length, false);
      bool sent = body.empty()
                      ? co_await write(stream, std::string_view(head).substr(0, head.size() / 2))
                      : co_await write(stream, head, body.substr(0, body.size() / 2));
      (void)sent;
      beast::error_code ec;
      lowest.socket().shutdown(tcp::socket::shutdown_send, ec);
      lowest.close();
      co_return false;
    }
    default:
      break;
  }
  if (r.delay.count() > 0 && !co_await wait(timer, r.delay)) co_return false;
  conn.interruptible = false;
  std::string head = response_head(r, length, keep_alive);
  co_return co_await write(stream, head, body);
}

template <class Stream>
asio::awaitable<void> SimServer::Impl::serve(Stream& stream, asio::steady_timer& timer,
                                             Conn& conn) {
  auto& lowest = beast::get_lowest_layer(stream);
  beast::flat_buffer buffer;
  for (;;) {
    conn.interruptible = true;
    if (stopping) co_return;
    http::request_parser<http::string_body> parser;
    parser.header_limit(kMaxHeader);
    parser.body_limit(kMaxRequestBody);
    lowest.expires_after(kIdleTimeout);
    auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, kTuple);
    (void)hn;
    bool too_large = hec == http::error::body_limit;
    if (hec && !too_large) {
      if (is_parse_error(hec)) {
        SimResponse bad;
        bad.status = 400;
        bad.body = std::make_shared<const std::string>(error_body(400, "malformed HTTP request"));
        co_await respond(stream, timer, conn, bad, false, false);
      }
      co_return;
    }
    if (!too_large) {
      auto expect = parser.get()[http::field::expect];
      if (beast::iequals(expect, "100-continue")) {
        if (!co_await write(stream, "HTTP/1.1 100 Continue\r\n\r\n")) co_return;
      }
      lowest.expires_after(kIoTimeout);
      auto [bec, bn] = co_await http::async_read(stream, buffer, parser, kTuple);
      (void)bn;
      too_large = bec == http::error::body_limit;
      if (bec && !too_large) co_return;
    }
    auto& msg = parser.get();
    SimRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    if (auto it = msg.find(http::field::authorization); it != msg.end()) {
      req.authorization = std::string(it->value());
    }
    req.body_too_large = too_large;
    if (!too_large) req.body = std::move(msg.body());
    bool keep_alive = !too_large && msg.keep_alive();
    SimResponse resp = service->handle(req);
    bool ok = co_await respond(stream, timer, conn, resp, keep_alive, req.method == "HEAD");
    if (too_large) {
      // Read (and drop) the rest of the body so that closing does not reset the connection
      // before the client has read the 413.
      conn.interruptible = true;
      beast::error_code ec;
      lowest.socket().shutdown(tcp::socket::shutdown_send, ec);
      lowest.expires_after(kDrainTimeout);
      std::array<char, 16 * 1024> sink;
      for (std::size_t total = 0; total < kMaxDrain;) {
        auto [rec, n] = co_await lowest.async_read_some(asio::buffer(sink), kTuple);
        if (rec) break;
        total += n;
      }
      co_return;
    }
    if (!ok || !keep_alive || stopping) break;
  }
  beast::error_code ec;
  lowest.socket().shutdown(tcp::socket::shutdown_send, ec);
}

asio::awaitable<void> SimServer::Impl::plain_session(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  asio::steady_timer timer(stream.get_executor());
  ConnRegistration reg{conns, add_conn()};
  Conn& conn = **reg.it;
  conn.close = [&stream, &timer] {
    timer.cancel();
    stream.close();
  };
  co_await serve(stream, timer, conn);
}

asio::awaitable<void> SimServer::Impl::tls_session(tcp::socket socket) {
  beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *tls);
  asio::steady_timer timer(stream.get_executor());
  ConnRegistration reg{conns, add_conn()};
  Conn& conn = **reg.it;
  conn.close = [&stream, &timer] {
    timer.cancel();
    beast::get_lowest_layer(stream).close();
  };
  beast::get_lowest_layer(stream).expires_after(kHandshakeTimeout);
  auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, kTuple);
  if (!ec) co_await serve(stream, timer, conn);
}

void SimServer::Impl::accepted(tcp::socket socket) {
  if (stopping) return;
  beast::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  if (tls) {
    asio::co_spawn(*ioc, tls_session(std::move(socket)), on_done());
  } else {
    asio::co_spawn(*ioc, plain_session(std::move(socket)), on_done());
  }
}

void SimServer::Impl::shutdown() {
  std::lock_guard lock(stop_mu);
  if (stopped) return;
  stopped = true;
  if (!thread.joinable()) return;
  asio::post(*ioc, [this] {
    stopping = true;
    beast::error_code ec;
    acceptor->close(ec);
    // Copy: close() may end sessions, which erase themselves from the list.
    std::vector<std::shared_ptr<Conn>> open(conns.begin(), conns.end());
    for (auto& c : open) {
      if (c->interruptible && c->close) c->close();
    }
  });
  if (done.wait_for(kStopGrace) != std::future_status::ready) {
    logger.warn("responses still being written at shutdown; dropping them");
    ioc->stop();
  }
  thread.join();
}

SimServer::SimServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SimServer::~SimServer() = default;

Result<std::unique_ptr<SimServer>> SimServer::start(SimOptions options) {
  if (options.management_token.empty() && options.token_file.empty()) {
    return invalid("the simulator needs a management token (token or token file)");
  }
  if (!options.token_file.empty() && ::access(options.token_file.c_str(), R_OK) != 0) {
    return invalid("cannot read the token file \"" + printable(options.token_file, 200) + "\"");
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return invalid("TLS needs both a certificate file and a key file");
  }
  if (options.flavor == Flavor::kDedicated) {
    std::random_device rd;
    Rng rng((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
    for (auto* id : {&options.account_id, &options.cluster_id}) {
      if (id->empty()) *id = random_uuid(rng);
      if (!is_uuid(*id))
        return invalid("account and cluster ids must be UUIDs, got \"" + printable(*id, 80) + "\"");
      *id = to_lower(*id);
    }
  } else {
    options.account_id.clear();
    options.cluster_id.clear();
  }

  auto impl = std::make_unique<Impl>();
  impl->flavor = options.flavor;
  impl->account_id = options.account_id;
  impl->cluster_id = options.cluster_id;
  impl->logger = options.logger;
  impl->ioc = std::make_unique<asio::io_context>(1);
  beast::error_code ec;
  if (!options.tls_cert_file.empty()) {
    impl->tls.emplace(ssl::context::tls_server);
    impl->tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                           ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                           ssl::context::no_tlsv1_1);
    impl->tls->use_certificate_chain_file(options.tls_cert_file, ec);
    if (ec) {
      return invalid("cannot load the TLS certificate \"" + printable(options.tls_cert_file, 200) +
                     "\": " + ec.message());
    }
    impl->tls->use_private_key_file(options.tls_key_file, ssl::context::pem, ec);
    if (ec) {
      return invalid("cannot load the TLS key \"" + printable(options.tls_key_file, 200) +
                     "\": " + ec.message());
    }
  }
  impl->scheme = impl->tls ? "https" : "http";

  auto resolved = net::resolve_host(*impl->ioc, options.listen_host);
  if (!resolved) {
    return invalid("cannot resolve the listen host \"" + printable(options.listen_host, 100) +
                   "\"");
  }
  const asio::ip::address address = *resolved;
  tcp::endpoint endpoint(address, options.port);
  impl->acceptor.emplace(*impl->ioc);
  if (auto failed = net::listen_on(*impl->acceptor, endpoint)) {
    return make_error(ErrorCode::kNetwork,
                      std::string("cannot ") + failed->step + " " + url_host(address.to_string()) +
                          ":" + std::to_string(options.port) + ": " + failed->error.message());
  }
  impl->port = impl->acceptor->local_endpoint().port();
  impl->host = options.listen_host;

  if (options.without_auth && options.flavor != Flavor::kInfluxdb3) {
    return invalid("running without authentication is an influxdb3 flavour option");
  }
  impl->store = std::make_unique<TokenStore>(
      options.account_id, options.cluster_id, options.clock,
      options.flavor == Flavor::kInfluxdb3 ? IdStyle::kNumeric : IdStyle::kUuid);
  impl->service = std::make_unique<Service>(std::move(options), *impl->store);
  Impl* raw = impl.get();
  asio::co_spawn(*raw->ioc,
                 net::accept_loop(
                     *raw->acceptor,
                     [raw](tcp::socket socket) { raw->accepted(std::move(socket)); }, raw->logger),
                 raw->on_done());
  raw->thread = std::thread([raw] {
    try {
      raw->ioc->run();
    } catch (const std::exception& e) {
      raw->logger.error("simulator I/O thread failed", {{"error", e.what()}});
    }
    raw->done_promise.set_value();
  });
  return std::unique_ptr<SimServer>(new SimServer(std::move(impl)));
}

std::uint16_t SimServer::port() const { return impl_->port; }

std::string SimServer::root_url() const {
  return impl_->scheme + "://" + url_host(impl_->host) + ":" + std::to_string(impl_->port);
}

std::string SimServer::base_url() const {
  return impl_->flavor == Flavor::kInfluxdb3 ? root_url() : root_url() + "/api/v0";
}

std::string SimServer::tokens_url() const {
  if (impl_->flavor == Flavor::kInfluxdb3) return root_url() + "/api/v3/query_sql";
  if (impl_->flavor == Flavor::kClustered) return base_url() + "/tokens";
  return base_url() + "/accounts/" + impl_->account_id + "/clusters/" + impl_->cluster_id +
         "/tokens";
}

Flavor SimServer::flavor() const { return impl_->flavor; }
const std::string& SimServer::account_id() const { return impl_->account_id; }
const std::string& SimServer::cluster_id() const { return impl_->cluster_id; }
TokenStore& SimServer::store() { return *impl_->store; }
void SimServer::stop() { impl_->shutdown(); }

const char* to_string(Flavor flavor) {
  switch (flavor) {
    case Flavor::kDedicated:
      return "dedicated";
    case Flavor::kInfluxdb3:
      return "influxdb3";
    case Flavor::kClustered:
      break;
  }
  return "clustered";
}

}  // namespace tw::sim

#include "influx/http_client.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
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
#include <memory>
#include <optional>

#include "core/strings.h"
#include "core/version.h"

namespace tw::influx {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

struct CallState {
  std::optional<Result<HttpResponse>> result;
  const char* step = "starting";
  bool timed_out = false;
  long verify_result = X509_V_OK;
};

std::string describe(const beast::error_code& ec) {
  if (ec == beast::error::timeout) return "timed out";
  if (ec == http::error::partial_message || ec == asio::error::eof ||
      ec == asio::ssl::error::stream_truncated) {
    return "connection closed before the response was complete";
  }
  return ec.message();
}

std::string limit_text(std::size_t bytes) {
  if (bytes >= (std::size_t{1} << 20) && bytes % (std::size_t{1} << 20) == 0) {
    return std::to_string(bytes >> 20) + " MiB";
  }
  return std::to_string(bytes) + " bytes";
}

Error read_error(const beast::error_code& ec, std::size_t max_body) {
  if (ec == http::error::body_limit) {
    return make_error(ErrorCode::kNetwork,
                      "the response body is larger than the limit of " + limit_text(max_body));
  }
  return make_error(ec == beast::error::timeout ? ErrorCode::kTimeout : ErrorCode::kNetwork,
                    describe(ec) + " while reading the response");
}

// At most this many interim (1xx) responses are skipped before the final one.
constexpr int kMaxInterimResponses = 8;

template <class Stream>
asio::awaitable<void> exchange(Stream& stream, http::request<http::string_body>& req,
                               std::size_t max_body,
                               std::chrono::steady_clock::time_point deadline,
                               std::shared_ptr<CallState> state) {
  auto& lowest = beast::get_lowest_layer(stream);
  state->step = "sending the request";
  lowest.expires_at(deadline);
  auto [wec, written] = co_await http::async_write(stream, req, kTuple);
  (void)written;
  if (wec) {
    state->result = make_error(wec == beast::error::timeout ? ErrorCode::kTimeout : ErrorCode::kNetwork,
                               describe(wec) + " while sending the request");
    co_return;
  }
  state->step = "reading the response";
  beast::flat_buffer buffer;
  // The body is taken piece by piece (buffer_body), so nothing past the limit is ever buffered.
  std::optional<http::response_parser<http::buffer_body>> parser;
  for (int interim = 0;; ++interim) {
    parser.emplace();
    parser->body_limit(max_body);
    parser->header_limit(64 * 1024);
    lowest.expires_at(deadline);
    auto [hec, hread] = co_await http::async_read_header(stream, buffer, *parser, kTuple);
    (void)hread;
    if (hec) {
      state->result = read_error(hec, max_body);
      co_return;
    }
    // Interim responses (100 Continue, 103 Early Hints) precede the real one and are skipped
    // (RFC 9110 §15.2); 101 Switching Protocols is final and was not asked for.
    const unsigned status = parser->get().result_int();
    if (status < 100 || status >= 200 || status == 101) break;
    if (interim + 1 >= kMaxInterimResponses) {
      state->result = make_error(ErrorCode::kNetwork,
                                 "the server sent " + std::to_string(kMaxInterimResponses) +
                                     " interim (1xx) responses and no final one");
      co_return;
    }
  }
  HttpResponse resp;
  resp.status = static_cast<int>(parser->get().result_int());
  resp.content_type = std::string(parser->get()[http::field::content_type]);
  auto length = parser->content_length();
  const bool plain_length = length && !parser->chunked() && !parser->is_done();
  if (plain_length && *length > max_body) {
    state->result = read_error(http::error::body_limit, max_body);
    co_return;
  }
  if (!plain_length) {
    // Chunked, close-delimited or empty: read in pieces. The body string grows geometrically
    // but never past the limit, and a piece that would pass it fails the read at once.
    // Beast checks the limit of a chunked body at each chunk header (before its data), but for
    // a close-delimited body it counts input it has not yet handed over, so that one is checked
    // here only, piece by piece.
    if (!parser->chunked()) parser->body_limit(boost::none);
    constexpr std::size_t kPiece = 64 * 1024;
    auto piece = std::make_unique<char[]>(kPiece);
    while (!parser->is_done()) {
      parser->get().body().data = piece.get();
      parser->get().body().size = kPiece;
      lowest.expires_at(deadline);
      auto [rec, read] = co_await http::async_read(stream, buffer, *parser, kTuple);
      (void)read;
      if (rec == http::error::need_buffer) rec = {};
      if (rec) {
        state->result = read_error(rec, max_body);
        co_return;
      }
      const std::size_t got = kPiece - parser->get().body().size;
      if (got > max_body - resp.body.size()) {
        state->result = read_error(http::error::body_limit, max_body);
        co_return;
      }
      if (resp.body.capacity() < resp.body.size() + got) {
        resp.body.reserve(
            std::min(max_body, std::max(resp.body.size() + got, 2 * resp.body.capacity())));
      }
      resp.body.append(piece.get(), got);
    }
    state->result = std::move(resp);
    co_return;
  }
  // A body of known length is read straight into its final buffer in large reads. The socket's
  // low-water mark keeps a fast reader from waking for every packet (a 25 MB token list would
  // otherwise take ~50k tiny reads).
  const auto total = static_cast<std::size_t>(*length);
  resp.body.reserve(total);
  auto leftover = buffer.data();
  std::size_t have = std::min(asio::buffer_size(leftover), total);
  resp.body.assign(static_cast<const char*>(leftover.data()), have);
  resp.body.resize(total);
  auto& socket = lowest.socket();
  constexpr std::size_t kLowWater = 256 * 1024;
  while (have < total) {
    std::size_t remaining = total - have;
    boost::system::error_code ignored;
    socket.set_option(asio::socket_base::receive_low_watermark(static_cast<int>(std::min(remaining, kLowWater))),
                      ignored);
    lowest.expires_at(deadline);
    auto [rec, n] = co_await stream.async_read_some(asio::buffer(resp.body.data() + have, remaining), kTuple);
    have += n;
    if (rec && have < total) {
      state->result = read_error(
          rec == asio::error::eof ? beast::error_code(http::error::partial_message) : rec,
          max_body);
      co_return;
    }
  }
  state->result = std::move(resp);
}

asio::awaitable<void> run_call(Url url, HttpRequest request, HttpOptions options,
                               std::chrono::steady_clock::time_point deadline,
                               std::shared_ptr<CallState> state) {
  auto executor = co_await asio::this_coro::executor;
  state->step = "resolving the host name";
  tcp::resolver resolver(executor);
  auto [rec, endpoints] = co_await resolver.async_resolve(url.host, url.port, kTuple);
  if (rec) {
    state->result = make_error(ErrorCode::kNetwork, "cannot resolve host \"" + printable(url.host, 100) +
                                                        "\": " + rec.message());
    co_return;
  }

  http::request<http::string_body> req;
  auto verb = http::string_to_verb(request.method);
  req.method(verb);
  req.target(url.path + request.target);
  req.version(11);
  req.set(http::field::host, url.authority());
  req.set(http::field::user_agent, std::string("tokenwarden/") + kVersion);
  req.set(http::field::connection, "close");
  for (const auto& [k, v] : request.headers) req.set(k, v);
  if (!request.body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = request.body;
  }
  req.prepare_payload();

  if (!url.tls()) {
    beast::tcp_stream stream(executor);
    state->step = "connecting";
    stream.expires_at(deadline);
    auto [cec, ep] = co_await stream.async_connect(endpoints, kTuple);
    (void)ep;
    if (cec) {
      state->result = make_error(cec == beast::error::timeout ? ErrorCode::kTimeout : ErrorCode::kNetwork,
                                 describe(cec) + " while connecting");
      co_return;
    }
    co_await exchange(stream, req, options.max_body_bytes, deadline, state);
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    co_return;
  }

  ssl::context ctx(ssl::context::tls_client);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  beast::error_code ec;
  if (!options.ca_file.empty()) {
    ctx.load_verify_file(options.ca_file, ec);
    if (ec) {
      state->result = make_error(ErrorCode::kInvalidArgument,
                                 "cannot load CA file \"" + printable(options.ca_file, 200) +
                                     "\": " + ec.message());
      co_return;
    }
  } else {
    ctx.set_default_verify_paths(ec);
  }
  ctx.set_verify_mode(ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> stream(executor, ctx);
  beast::error_code addr_ec;
  asio::ip::make_address(url.host, addr_ec);
  const bool ip_literal = !addr_ec;
  // OpenSSL checks the name as part of chain verification, so a mismatch is reported as such
  // (X509_V_ERR_HOSTNAME_MISMATCH), not as an unspecified callback failure.
  X509_VERIFY_PARAM* param = SSL_get0_param(stream.native_handle());
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  const bool name_set = ip_literal ? X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str()) == 1
                                   : X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), 0) == 1;
  if (!name_set ||
      (!ip_literal &&  // SNI carries host names only (RFC 6066)
       SSL_ctrl(stream.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                const_cast<char*>(url.host.c_str())) != 1)) {
    state->result = make_error(ErrorCode::kNetwork, "cannot set the TLS server name");
    co_return;
  }
  state->step = "connecting";
  beast::get_lowest_layer(stream).expires_at(deadline);
  auto [cec, ep] = co_await beast::get_lowest_layer(stream).async_connect(endpoints, kTuple);
  (void)ep;
  if (cec) {
    state->result = make_error(cec == beast::error::timeout ? ErrorCode::kTimeout : ErrorCode::kNetwork,
                               describe(cec) + " while connecting");
    co_return;
  }
  state->step = "in the TLS handshake";
  beast::get_lowest_layer(stream).expires_at(deadline);
  auto [hec] = co_await stream.async_handshake(ssl::stream_base::client, kTuple);
  if (hec) {
    long verify = SSL_get_verify_result(stream.native_handle());
    std::string why = describe(hec);
    if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
      why = std::string(ip_literal ? "the IP address \"" : "the host name \"") +
            printable(url.host, 100) + "\" does not match the server's certificate";
    } else if (verify != X509_V_OK) {
      why = std::string("certificate verification failed: ") + X509_verify_cert_error_string(verify);
    }
    state->result = make_error(hec == beast::error::timeout ? ErrorCode::kTimeout : ErrorCode::kNetwork,
                               "TLS handshake failed: " + why);
    co_return;
  }
  co_await exchange(stream, req, options.max_body_bytes, deadline, state);
  // No TLS close_notify exchange: the connection is closed and many servers never answer it.
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
    auto at = s.find('@', scheme_end == std::string::npos ? 0 : scheme_end + 3);
    auto end = s.find_first_of("/?#", scheme_end == std::string::npos ? 0 : scheme_end + 3);
    if (at != std::string::npos && (end == std::string::npos || at < end)) {
      s.replace(scheme_end + 3, at - scheme_end - 3, "[redacted]");
    }
    auto q = s.find_first_of("?#");
    if (q != std::string::npos) s = s.substr(0, q) + "?[redacted]";
    return printable(s, 200);
  };
  auto bad = [&](std::string why) {
    return make_error(ErrorCode::kInvalidArgument, "invalid URL \"" + shown() + "\": " + std::move(why));
  };
  Url url;
  std::string_view rest;
  if (starts_with(text, "http://")) {
    url.scheme = "http";
    rest = text.substr(7);
  } else if (starts_with(text, "https://")) {
    url.scheme = "https";
    rest = text.substr(8);
  } else {
    return bad("must start with http:// or https://");
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return bad("query strings and fragments are not supported");
  }
  auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    return bad("credentials in the URL are not supported (use token_file)");
  }
  if (authority.empty()) return bad("no host");
  if (authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 address");
    url.host = std::string(authority.substr(1, close - 1));
    if (url.host.empty()) return bad("empty IPv6 address");
    authority = authority.substr(close + 1);
    if (!authority.empty()) {
      if (authority.front() != ':') return bad("unexpected characters after the IPv6 address");
      url.port = std::string(authority.substr(1));
    }
  } else {
    auto colon = authority.rfind(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) url.port = std::string(authority.substr(colon + 1));
  }
  if (url.host.empty()) return bad("no host");
  if (url.port.empty()) {
    url.port = url.tls() ? "443" : "80";
  } else {
    if (url.port.size() > 5 || url.port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(url.port) == 0 || std::stoi(url.port) > 65535) {
      return bad("invalid port");
    }
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  url.path = std::string(path);
  return url;
}

Result<HttpResponse> http_request(const Url& base, const HttpRequest& request,
                                  const HttpOptions& options) {
  auto started = std::chrono::steady_clock::now();
  auto deadline = started + options.timeout;
  asio::io_context ioc(1);
  auto state = std::make_shared<CallState>();
  asio::co_spawn(ioc, run_call(base, request, options, deadline, state),
                 [state](std::exception_ptr e) {
                   if (e && !state->result) {
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       state->result = make_error(ErrorCode::kNetwork, ex.what());
                     }
                   }
                 });
  const std::string what = request.method + " " + base.to_string() + request.target;
  while (!state->result) {
    if (options.cancel != nullptr && options.cancel->load()) {
      return make_error(ErrorCode::kCancelled, what + " was cancelled by shutdown");
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline + std::chrono::milliseconds(200)) {
      // The per-step deadlines should have fired; this is the backstop (e.g. a slow resolver).
      return make_error(ErrorCode::kTimeout,
                        what + " timed out after " + format_duration(options.timeout) + " " +
                            state->step);
    }
    if (ioc.stopped()) break;
    ioc.run_for(std::chrono::milliseconds(50));
  }
  if (!state->result) return make_error(ErrorCode::kInternal, what + " ended without a result");
  auto result = std::move(*state->result);
  if (!result.ok()) {
    Error e = result.take_error();
    if (e.code == ErrorCode::kTimeout) {
      e.message = what + " timed out after " + format_duration(options.timeout) + " " + state->step;
    } else {
      e.message = what + ": " + e.message;
    }
    return e;
  }
  return result;
}

std::string_view http_reason(int status) {
  return http::obsolete_reason(static_cast<http::status>(status));
}

}  // namespace tw::influx

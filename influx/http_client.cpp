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
#include <charconv>
#include <memory>
#include <optional>

#include "core/strings.h"
#include "core/version.h"
#include "influx/url_reference.h"

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
  std::string retry_after;  // the Retry-After and Date headers, read by http_request
  std::string date;
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

// Whether a Link header value (RFC 8288) has a link with relation type "next":
// `<https://h/tokens?page=2>; rel="next", <…>; rel="last"`.
bool link_has_next(std::string_view value) {
  std::size_t i = 0;
  while (i < value.size()) {
    // A link-value: <target> then ;-separated parameters, up to a ',' outside <>.
    auto close = value.find('>', i);
    if (value.find('<', i) == std::string_view::npos || close == std::string_view::npos)
      return false;
    auto end = value.find(',', close);
    std::string_view params =
        value.substr(close + 1, end == std::string_view::npos ? end : end - close - 1);
    for (const auto& param : split(params, ';')) {
      auto eq = param.find('=');
      if (eq == std::string::npos || to_lower(trim(std::string_view(param).substr(0, eq))) != "rel")
        continue;
      std::string rel = to_lower(trim(std::string_view(param).substr(eq + 1)));
      std::erase(rel, '"');
      for (const auto& type : split(rel, ' ')) {
        if (type == "next") return true;
      }
    }
    if (end == std::string_view::npos) break;
    i = end + 1;
  }
  return false;
}

// At most this many interim (1xx) responses are skipped before the final one.
constexpr int kMaxInterimResponses = 8;

template <class Stream>
asio::awaitable<void> exchange(Stream& stream, http::request<http::string_body>& req,
                               std::size_t max_body, std::chrono::steady_clock::time_point deadline,
                               std::shared_ptr<CallState> state) {
  auto& lowest = beast::get_lowest_layer(stream);
  state->step = "sending the request";
  lowest.expires_at(deadline);
  auto [wec, written] = co_await http::async_write(stream, req, kTuple);
  (void)written;
  if (wec) {
    state->result =
        make_error(wec == beast::error::timeout ? ErrorCode::kTimeout : ErrorCode::kNetwork,
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
  resp.location = std::string(parser->get()[http::field::location]);
  for (auto [it, end] = parser->get().equal_range(http::field::link); it != end; ++it) {
    resp.next_page = resp.next_page || link_has_next(it->value());
  }
  state->retry_after = std::string(parser->get()[http::field::retry_after]);
  state->date = std::string(parser->get()[http::field::date]);
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
    socket.set_option(
        asio::socket_base::receive_low_watermark(static_cast<int>(std::min(remaining, kLowWater))),
        ignored);
    lowest.expires_at(deadline);
    auto [rec, n] =
        co_await stream.async_read_some(asio::buffer(resp.body.data() + have, remaining), kTuple);
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
    state->result =
        make_error(ErrorCode::kNetwork,
                   "cannot resolve host \"" + printable(url.host, 100) + "\": " + rec.message());
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
      state->result =
          make_error(cec == beast::error::timeout ? ErrorCode::kTimeout : ErrorCode::kNetwork,
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
      state->result = make_error(
          ErrorCode::kInvalidArgument,
          "cannot load CA file \"" + printable(options.ca_file, 200) + "\": " + ec.message());
      co_return;
    }
  } else {
    ctx.set_default_verify_paths(ec);
  }
  if (!options.cert_file.empty()) {
    ctx.use_certificate_chain_file(options.cert_file, ec);
    if (!ec) ctx.use_private_key_file(options.key_file, ssl::context::pem, ec);
    if (ec) {
      state->result =
          make_error(ErrorCode::kInvalidArgument, "cannot load the client certificate \"" +
                                                      printable(options.cert_file, 200) +
                                                      "\" or its key: " + ec.message());
      co_return;
    }
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
    state->result =
        make_error(cec == beast::error::timeout ? ErrorCode::kTimeout : ErrorCode::kNetwork,
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
      why =
          std::string("certificate verification failed: ") + X509_verify_cert_error_string(verify);
    }
    state->result =
        make_error(hec == beast::error::timeout ? ErrorCode::kTimeout : ErrorCode::kNetwork,
                   "TLS handshake failed: " + why);
    co_return;
  }
  co_await exchange(stream, req, options.max_body_bytes, deadline, state);
  // No TLS close_notify exchange: the connection is closed and many servers never answer it.
}

using SteadyTime = std::chrono::steady_clock::time_point;

// One request and its response on a fresh connection, by `deadline`.
Result<HttpResponse> send_once(const Url& base, const HttpRequest& request,
                               const HttpOptions& options, SteadyTime deadline) {
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
      return make_error(
          ErrorCode::kTimeout,
          what + " timed out after " + format_duration(options.timeout) + " " + state->step);
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
  if (!state->retry_after.empty()) {
    const SystemClock system;
    const Clock& clock = options.clock != nullptr ? *options.clock : system;
    result->retry_after = parse_retry_after(state->retry_after, state->date, clock.now());
  }
  return result;
}

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

int port_number(const std::string& port) {
  int n = -1;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
  return ec == std::errc() && end == port.data() + port.size() ? n : -1;
}

// scheme://host[:port]: what a redirect must keep to be followed.
std::string origin(const Url& u) { return u.scheme + "://" + u.authority(); }

bool same_origin(const Url& a, const Url& b) {
  return a.scheme == b.scheme && to_lower(a.host) == to_lower(b.host) &&
         port_number(a.port) == port_number(b.port) && port_number(a.port) > 0;
}

bool has_authorization(const HttpRequest& request) {
  return std::any_of(request.headers.begin(), request.headers.end(),
                     [](const auto& h) { return to_lower(h.first) == "authorization"; });
}

// The request to send next for a redirect answer, or the error that stops the call there.
Result<ResolvedLocation> next_hop(const Url& url, const HttpRequest& req, const HttpResponse& resp,
                                  int hop, int max_redirects) {
  const std::string what = req.method + " " + url.to_string() + req.target;
  std::string answered = what + " answered " + std::to_string(resp.status);
  if (auto reason = http_reason(resp.status); !reason.empty() && reason != "<unknown-status>") {
    answered += " " + std::string(reason);
  }
  auto fail = [&](std::string msg) {
    return make_error(ErrorCode::kHttpStatus, std::move(msg), resp.status);
  };
  if (hop >= max_redirects) {
    return fail(answered + " after " + std::to_string(max_redirects) +
                " redirects; no more than that are followed");
  }
  auto next = resolve_location(url, url.path + req.target, resp.location);
  if (!next.ok()) return fail(answered + " " + next.error().message);
  if (!same_origin(url, next->url)) {
    return fail(answered + " redirecting to another origin, " + printable(origin(next->url), 200) +
                (has_authorization(req) ? "; refused so that the management token is not sent there"
                                        : "; refused") +
                " (redirects are followed only within " + origin(url) + ")");
  }
  const bool repeats_method = resp.status == 307 || resp.status == 308;
  if (!repeats_method && req.method != "GET" && req.method != "HEAD") {
    return fail(answered + " redirecting to " +
                printable(origin(next->url) + next->target.substr(0, next->target.find('?')), 200) +
                "; refused, since only a 307 or 308 redirect repeats a " + req.method +
                " (it is not turned into a GET)");
  }
  return next;
}

}  // namespace

Result<HttpResponse> http_request(const Url& base, const HttpRequest& request,
                                  const HttpOptions& options) {
  const SteadyTime deadline = std::chrono::steady_clock::now() + options.timeout;
  auto resp = send_once(base, request, options, deadline);
  if (!resp.ok() || !is_redirect(resp->status) || options.max_redirects <= 0) return resp;
  // Followed with a copy: the URL's base path is replaced by the Location's whole path.
  Url url = base;
  HttpRequest req = request;
  for (int hop = 0;; ++hop) {
    auto next = next_hop(url, req, *resp, hop, options.max_redirects);
    if (!next.ok()) return next.take_error();
    url = std::move(next->url);
    req.target = std::move(next->target);
    resp = send_once(url, req, options, deadline);
    if (!resp.ok()) return resp;
    resp->redirected_to = url.to_string() + req.target.substr(0, req.target.find('?'));
    if (!is_redirect(resp->status)) return resp;
  }
}

std::string_view http_reason(int status) {
  return http::obsolete_reason(static_cast<http::status>(status));
}

std::optional<Timestamp> parse_http_date(std::string_view text) {
  // "Sun, 06 Nov 1994 08:49:37 GMT": fixed positions, as RFC 9110 requires senders to write it.
  static constexpr std::string_view kDays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  text = trim(text);
  if (text.size() != 29 || text.substr(3, 2) != ", " || text[7] != ' ' || text[11] != ' ' ||
      text[16] != ' ' || text[19] != ':' || text[22] != ':' || text.substr(25) != " GMT" ||
      std::find(std::begin(kDays), std::end(kDays), text.substr(0, 3)) == std::end(kDays)) {
    return std::nullopt;
  }
  auto number = [&](std::size_t at, std::size_t len) {
    int n = 0;
    auto [end, ec] = std::from_chars(text.data() + at, text.data() + at + len, n);
    return ec == std::errc() && end == text.data() + at + len ? n : -1;
  };
  auto month = std::find(std::begin(kMonths), std::end(kMonths), text.substr(8, 3));
  const int day = number(5, 2), year = number(12, 4);
  const int hour = number(17, 2), minute = number(20, 2), second = number(23, 2);
  if (month == std::end(kMonths) || year < 0 || hour < 0 || hour > 23 || minute < 0 ||
      minute > 59 || second < 0 || second > 60) {
    return std::nullopt;
  }
  const auto m = static_cast<unsigned>(month - std::begin(kMonths) + 1);
  if (day < 1 || !std::chrono::year_month_day(std::chrono::year(year), std::chrono::month(m),
                                              std::chrono::day(static_cast<unsigned>(day)))
                      .ok()) {
    return std::nullopt;
  }
  return make_timestamp(year, m, static_cast<unsigned>(day), hour, minute, std::min(second, 59));
}

std::optional<Duration> parse_retry_after(std::string_view value, std::string_view date,
                                          Timestamp now) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  const auto cap = [](Duration d) { return std::clamp<Duration>(d, Duration(0), kMaxRetryAfter); };
  if (value.find_first_not_of("0123456789") == std::string_view::npos) {
    // delta-seconds; a value too long to hold is beyond the cap anyway.
    if (value.size() > 9) return kMaxRetryAfter;
    return cap(std::chrono::seconds(std::stol(std::string(value))));
  }
  auto at = parse_http_date(value);
  if (!at) return std::nullopt;
  // Measured from the server's own Date when it sent one, so clock skew does not count.
  const Timestamp from = parse_http_date(date).value_or(now);
  return cap(*at - from);
}

}  // namespace tw::influx

#include "net/listener.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

namespace tw::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

std::optional<asio::ip::address> resolve_host(asio::io_context& ioc, const std::string& host) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (!ec) return address;
  tcp::resolver resolver(ioc);
  auto results = resolver.resolve(host, "", ec);
  if (ec || results.empty()) return std::nullopt;
  return results.begin()->endpoint().address();
}

std::optional<ListenFailure> listen_on(tcp::acceptor& acceptor, const tcp::endpoint& endpoint) {
  boost::system::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (ec) return ListenFailure{"open a socket for", ec};
  acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return ListenFailure{"listen on", ec};
  return std::nullopt;
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor,
                                  std::function<void(tcp::socket)> on_accept, Logger log) {
  constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
  asio::steady_timer backoff(acceptor.get_executor());
  while (acceptor.is_open()) {
    auto [ec, socket] = co_await acceptor.async_accept(kTuple);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      log.warn("accept failed", {{"error", ec.message()}});
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(kTuple);
      continue;
    }
    on_accept(std::move(socket));
  }
}

}  // namespace tw::net

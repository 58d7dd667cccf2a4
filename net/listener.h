#pragma once
// The listening side of the HTTP servers (metrics/http_endpoint.cpp, sim/server.cpp), written
// once: resolving the listen host, opening the listener, and the accept loop. What a connection
// then does (TLS handshake, request loop, limits, faults) stays with each server.
//
// Asio types: include this only from .cpp files (it pulls in Boost.Asio).
// Thread safety: accept_loop runs on the acceptor's executor; the others are called before it.
// Errors: as values (nullopt, ListenFailure); the callers word the message for their users.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <optional>
#include <string>

#include "core/log.h"

namespace tw::net {

// `host` as an address literal, else resolved by name (the first result); nullopt if neither.
std::optional<boost::asio::ip::address> resolve_host(boost::asio::io_context& ioc,
                                                     const std::string& host);

struct ListenFailure {
  const char* step;  // "open a socket for" or "listen on"
  boost::system::error_code error;
};

// Opens `acceptor` on `endpoint` (SO_REUSEADDR, the system's backlog); port 0 picks a free port.
std::optional<ListenFailure> listen_on(boost::asio::ip::tcp::acceptor& acceptor,
                                       const boost::asio::ip::tcp::endpoint& endpoint);

// Accepts until the acceptor is closed, handing each connection to `on_accept` (which spawns its
// session or refuses it). A failed accept (e.g. out of file descriptors) is logged ("accept
// failed") and retried after 100 ms rather than at once.
boost::asio::awaitable<void> accept_loop(
    boost::asio::ip::tcp::acceptor& acceptor,
    std::function<void(boost::asio::ip::tcp::socket)> on_accept, Logger log);

}  // namespace tw::net

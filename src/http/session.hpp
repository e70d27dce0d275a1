#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>

#include "http/server.hpp"

namespace wachat::http {

// A connection's socket, bound to the io_context (of an io_pool) that serves it.
using session_socket =
    boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::io_context::executor_type>;

// Serves one connection: keep-alive, bounded header/body size and time, routes each request.
void start_session(session_socket socket, std::shared_ptr<server_shared> shared);

}  // namespace wachat::http

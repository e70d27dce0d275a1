#pragma once
#include <boost/asio/ip/tcp.hpp>
#include <memory>

#include "http/server.hpp"

namespace wachat::http {

// Serves one connection: keep-alive, bounded header/body size and time, routes each request.
void start_session(boost::asio::ip::tcp::socket socket, std::shared_ptr<server_shared> shared);

}  // namespace wachat::http

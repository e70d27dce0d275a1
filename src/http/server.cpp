#include "http/server.hpp"

#include "http/session.hpp"
#include "infra/log.hpp"

namespace wachat::http {

namespace net = boost::asio;
using tcp = net::ip::tcp;

server::server(io_pool& pool, const std::string& host, std::uint16_t port,
               std::shared_ptr<server_shared> shared)
    : pool_(pool), acceptor_(pool.main()), shared_(std::move(shared)) {
  boost::system::error_code ec;
  auto address = net::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) {
    throw std::runtime_error("WACHAT_LISTEN host '" + host + "' is not an IP address");
  }
  tcp::endpoint ep{address, port};
  acceptor_.open(ep.protocol());
  acceptor_.set_option(net::socket_base::reuse_address(true));
  acceptor_.bind(ep, ec);
  if (ec) {
    throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + ": " +
                             ec.message());
  }
  acceptor_.listen(net::socket_base::max_listen_connections);
  port_ = acceptor_.local_endpoint().port();
}

void server::start() { do_accept(); }

void server::do_accept() {
  acceptor_.async_accept(pool_.next(), [this](boost::system::error_code ec, session_socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) {
      return;
    }
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      start_session(std::move(socket), shared_);
    } else {
      // Out of descriptors and the like: keep serving the connections we have.
      infra::log_warn("accept_failed", {{"error", ec.message()}});
    }
    do_accept();
  });
}

void server::stop_accepting() {
  shared_->draining = true;
  net::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
  });
}

}  // namespace wachat::http

#pragma once
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "http/io_pool.hpp"
#include "http/router.hpp"
#include "infra/metrics.hpp"

namespace wachat::http {

struct server_limits {
  std::chrono::milliseconds request_timeout{30000};  // headers + body of one request
  std::chrono::milliseconds write_timeout{30000};
  std::uint32_t header_limit = 16 * 1024;             // larger answers 431
  std::size_t default_body_limit = 1024 * 1024;       // for paths no route knows
};

// Shared between the acceptor and every session: lets shutdown wait for requests in flight.
struct server_shared {
  const router* routes = nullptr;
  server_limits limits;
  std::shared_ptr<infra::metrics> metrics;
  std::atomic<int> in_flight{0};
  std::atomic<bool> draining{false};
};

class server {
 public:
  // Listens on `pool.main()`; each connection goes to the pool's next io_context.
  server(io_pool& pool, const std::string& host, std::uint16_t port,
         std::shared_ptr<server_shared> shared);
  // The port actually bound (differs from the requested one when that was 0).
  std::uint16_t port() const { return port_; }
  void start();
  // Stops accepting; responses from now on close their connections.
  void stop_accepting();
  int in_flight() const { return shared_->in_flight.load(); }

 private:
  void do_accept();
  io_pool& pool_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<server_shared> shared_;
  std::uint16_t port_ = 0;
};

}  // namespace wachat::http

#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace wachat::test {

struct http_result {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

// A blocking HTTP/1.1 client over a real socket, for tests. Keeps the connection open between
// calls (keep-alive) until close() or a server-side close.
class http_client {
 public:
  http_client(std::string host, std::uint16_t port);
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  http_result request(const std::string& method, const std::string& target,
                      const std::string& body = {},
                      const std::map<std::string, std::string>& headers = {});
  void close();

 private:
  struct impl;
  impl* impl_;
};

// One-shot helpers.
http_result http_get(std::uint16_t port, const std::string& target,
                     const std::map<std::string, std::string>& headers = {});
http_result http_post(std::uint16_t port, const std::string& target, const std::string& body,
                      const std::map<std::string, std::string>& headers = {});

// A raw TCP connection for misbehaving-client tests (half requests, stalls).
class raw_connection {
 public:
  explicit raw_connection(std::uint16_t port);
  ~raw_connection();
  void send(const std::string& bytes);
  // Reads until the peer closes or `timeout_ms` passes; returns what arrived.
  std::string read_all(int timeout_ms);
  // True when the peer has closed the connection (read returns EOF or reset) within timeout.
  bool closed_by_peer_within(int timeout_ms);
  // One read: nullopt when nothing arrived within the timeout, "" when the peer closed.
  std::optional<std::string> receive(int timeout_ms);
  void close();

 private:
  int fd_ = -1;
};

// `sha256=<hex>` for `body` under `secret`, as Meta computes it.
std::string meta_signature(const std::string& secret, const std::string& body);

}  // namespace wachat::test

#include "support/http_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <stdexcept>

#include "infra/crypto.hpp"

namespace wachat::test {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct http_client::impl {
  std::string host;
  std::uint16_t port;
  net::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;

  void connect() {
    stream.emplace(ioc);
    stream->connect(tcp::endpoint{net::ip::make_address(host), port});
    buffer.clear();
  }
};

http_client::http_client(std::string host, std::uint16_t port) : impl_(new impl) {
  impl_->host = std::move(host);
  impl_->port = port;
}

http_client::~http_client() {
  close();
  delete impl_;
}

void http_client::close() {
  if (impl_->stream) {
    beast::error_code ec;
    impl_->stream->socket().shutdown(tcp::socket::shutdown_both, ec);
    impl_->stream.reset();
  }
}

http_result http_client::request(const std::string& method, const std::string& target,
                                 const std::string& body,
                                 const std::map<std::string, std::string>& headers) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool fresh = !impl_->stream;
    if (fresh) {
      impl_->connect();
    }
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
    req.set(bhttp::field::host, impl_->host);
    for (const auto& [k, v] : headers) {
      req.set(k, v);
    }
    req.body() = body;
    req.prepare_payload();
    req.keep_alive(true);
    beast::error_code ec;
    impl_->stream->expires_after(std::chrono::seconds(60));
    bhttp::write(*impl_->stream, req, ec);
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(256 * 1024 * 1024);
    if (!ec) {
      bhttp::read(*impl_->stream, impl_->buffer, parser, ec);
    }
    if (ec) {
      close();
      // A kept-alive connection the server closed meanwhile: retry once on a fresh one.
      if (!fresh && attempt == 0) {
        continue;
      }
      throw std::runtime_error("http request failed: " + ec.message());
    }
    auto res = parser.release();
    http_result out;
    out.status = static_cast<int>(res.result_int());
    out.body = res.body();
    for (const auto& f : res) {
      std::string name{f.name_string()};
      for (auto& c : name) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      out.headers[name] = std::string{f.value()};
    }
    if (!res.keep_alive()) {
      close();
    }
    return out;
  }
  throw std::runtime_error("unreachable");
}

http_result http_get(std::uint16_t port, const std::string& target,
                     const std::map<std::string, std::string>& headers) {
  http_client c{"127.0.0.1", port};
  return c.request("GET", target, {}, headers);
}

http_result http_post(std::uint16_t port, const std::string& target, const std::string& body,
                      const std::map<std::string, std::string>& headers) {
  http_client c{"127.0.0.1", port};
  return c.request("POST", target, body, headers);
}

raw_connection::raw_connection(std::uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close();
    throw std::runtime_error("raw connect failed");
  }
}

raw_connection::~raw_connection() { close(); }

void raw_connection::close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

std::optional<std::string> raw_connection::receive(int timeout_ms) {
  if (fd_ < 0) {
    return std::string{};
  }
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) {
    return std::nullopt;
  }
  char buf[65536];
  auto n = ::recv(fd_, buf, sizeof buf, 0);
  return n <= 0 ? std::string{} : std::string(buf, static_cast<std::size_t>(n));
}

void raw_connection::send(const std::string& bytes) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    auto n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      throw std::runtime_error("raw send failed");
    }
    off += static_cast<std::size_t>(n);
  }
}

std::string raw_connection::read_all(int timeout_ms) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[65536];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      break;
    }
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) {
      break;
    }
    auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      break;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

bool raw_connection::closed_by_peer_within(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[4096];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      return false;
    }
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) {
      return false;
    }
    auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      return true;
    }
  }
}

std::string meta_signature(const std::string& secret, const std::string& body) {
  infra::hmac_sha256_key key{secret};
  auto d = key.sign(body);
  return "sha256=" + infra::hex_encode(d.data(), d.size());
}

}  // namespace wachat::test

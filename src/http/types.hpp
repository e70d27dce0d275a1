#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/stream_sink.hpp"

namespace wachat::http {

namespace bhttp = boost::beast::http;
using request = bhttp::request<bhttp::string_body>;
using response = bhttp::response<bhttp::string_body>;

// Sends the response for one request. Thread-safe and callable from any thread (an actor's, a
// timer's); only the first call counts, so a timeout and a late answer cannot both be sent.
class responder {
 public:
  using send_fn = std::function<void(response)>;
  explicit responder(send_fn send) : state_(std::make_shared<state>(std::move(send))) {}
  void operator()(response res) const {
    if (!state_->used.exchange(true)) {
      state_->send(std::move(res));
    }
  }
  bool answered() const { return state_->used.load(); }

 private:
  struct state {
    explicit state(send_fn s) : send(std::move(s)) {}
    send_fn send;
    std::atomic<bool> used{false};
  };
  std::shared_ptr<state> state_;
};

// A response whose body is read from a file as it is sent (media): never whole in memory.
struct file_reply {
  bhttp::status status = bhttp::status::ok;
  std::vector<std::pair<std::string, std::string>> headers;  // Content-Length is set from `length`
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  // Reads up to `n` bytes at `offset`; 0 at the end; may throw. Called on the session's thread.
  std::function<std::size_t(std::uint64_t offset, char* buf, std::size_t n)> read;
};

// What a handler is given: the whole request, the values of `{name}` path segments, the
// decoded query, and the session's executor for timers.
struct request_context {
  request req;
  std::string path;
  std::map<std::string, std::string> params;
  std::vector<std::pair<std::string, std::string>> query;
  boost::asio::any_io_executor executor;
  // Turns the connection into a stream: writes `content_type` headers, then what is sent.
  // Use instead of the responder, never both.
  std::function<std::shared_ptr<stream_sink>(std::string content_type)> open_stream;
  // Answers with a file's bytes. Use instead of the responder, never both.
  std::function<void(file_reply)> send_file;
};

using handler = std::function<void(request_context&, responder)>;

}  // namespace wachat::http

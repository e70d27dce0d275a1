#pragma once
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "support/http_client.hpp"

namespace wachat::test {

// One dispatched Server-Sent Event (WHATWG HTML §9.2).
struct sse_event {
  std::string id;
  std::string event = "message";  // the stream's `event:` or the default type
  std::string data;               // `data:` lines joined by '\n'

  nlohmann::json json() const { return nlohmann::json::parse(data); }
};

// What wait_for() read: every event up to and including the one it waited for.
struct sse_wait {
  std::vector<sse_event> events;
  bool found = false;
  const sse_event& last() const { return events.back(); }
};

// A Server-Sent Events client over a real socket, for tests: sends one GET, checks the head,
// then parses events as they arrive (comments and `retry:` kept apart). Blocking, one thread.
class sse_client {
 public:
  // Connects to 127.0.0.1:`port`, sends `GET target` with `Authorization: Bearer token` (none
  // when empty) and `Last-Event-ID` when given, and reads the response head within `timeout`.
  sse_client(std::uint16_t port, const std::string& target, const std::string& token,
             const std::optional<std::string>& last_event_id = std::nullopt,
             std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~sse_client();
  sse_client(const sse_client&) = delete;
  sse_client& operator=(const sse_client&) = delete;

  int status() const { return status_; }
  // A response header by lower-case name ("" when absent).
  std::string header(const std::string& name) const;
  // 200 with a text/event-stream content type.
  bool is_stream() const;
  // The body of an answer that is not a stream (to Content-Length or the peer's close).
  std::string body(std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // The next event, or nullopt when none arrived within `timeout` or the stream ended.
  std::optional<sse_event> next(std::chrono::milliseconds timeout);
  // Reads events until one satisfies `match` or `timeout` passes.
  sse_wait wait_for(const std::function<bool(const sse_event&)>& match,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Every event that arrives until none has for `quiet` (or the stream ends).
  std::vector<sse_event> drain(std::chrono::milliseconds quiet);

  // Comment lines seen so far (without the leading ':' and one space).
  const std::vector<std::string>& comments() const { return comments_; }
  std::optional<int> retry_ms() const { return retry_ms_; }
  // True once the server closed the stream.
  bool ended() const { return ended_; }
  // Waits up to `timeout` for more bytes; false when none came (or the stream ended).
  bool read_some(std::chrono::milliseconds timeout);
  void close();

 private:
  void read_head(std::chrono::milliseconds timeout);
  void feed(const std::string& bytes);
  void parse_lines();
  void take_line(const std::string& line);

  std::unique_ptr<raw_connection> conn_;
  int status_ = 0;
  std::map<std::string, std::string> headers_;
  bool chunked_ = false;
  bool ended_ = false;
  std::string raw_;    // bytes after the head not yet de-chunked
  std::string text_;   // stream text not yet split into lines
  // The event being built.
  std::string id_, event_, data_;
  bool has_data_ = false;
  std::deque<sse_event> ready_;
  std::vector<std::string> comments_;
  std::optional<int> retry_ms_;
};

}  // namespace wachat::test

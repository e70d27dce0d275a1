#pragma once
#include <string>

namespace wachat::http {

// A response body written piece by piece (Server-Sent Events), handed by a session to the
// event hub. Thread-safe; send() queues. No Beast here: the hub's actor includes it.
class stream_sink {
 public:
  virtual ~stream_sink() = default;
  virtual void send(std::string chunk) = 0;
  virtual bool is_open() const = 0;
  virtual void close() = 0;
};

}  // namespace wachat::http

#include "http/session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <limits>
#include <optional>
#include <sstream>

#include "http/responses.hpp"
#include "infra/url.hpp"

namespace wachat::http {
namespace {

namespace beast = boost::beast;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// Bytes of live events an SSE reader may have waiting before it is dropped: a reader this far
// behind (minutes of a busy site) is gone or hostile, and must not make us grow without bound.
constexpr std::size_t max_stream_backlog = 64 * 1024 * 1024;

// RFC 9112 checks Beast leaves to us. A Transfer-Encoding whose final coding is not chunked
// would leave the body's length to the Content-Length (or to nothing): a request-smuggling
// shape behind a proxy that reads the same bytes differently (§6.1). HTTP/1.1 requires exactly
// one Host (§3.2).
std::optional<std::string> framing_error(const bhttp::request_header<>& h, bool chunked) {
  if (h.find(bhttp::field::transfer_encoding) != h.end()) {
    if (h.version() < 11) {
      return "Transfer-Encoding is not allowed in an HTTP/1.0 request.";
    }
    if (!chunked) {
      return "Transfer-Encoding must end with chunked.";
    }
    if (h.find(bhttp::field::content_length) != h.end()) {
      return "Transfer-Encoding and Content-Length must not be sent together.";
    }
  }
  auto hosts = h.count(bhttp::field::host);
  if (hosts > 1 || (hosts == 0 && h.version() >= 11)) {
    return "An HTTP/1.1 request needs exactly one Host header.";
  }
  return std::nullopt;
}

class session : public std::enable_shared_from_this<session> {
 public:
  session(session_socket socket, std::shared_ptr<server_shared> shared)
      : stream_(std::move(socket)), shared_(std::move(shared)) {}

  void run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&session::do_read, shared_from_this()));
  }

 private:
  void do_read() {
    if (shared_->draining) {
      return close_now();
    }
    parser_.emplace();
    parser_->header_limit(shared_->limits.header_limit);
    // No body limit while the header is read: Beast would fail the header read of any request
    // whose Content-Length exceeds the limit in force, before the route (and so its own limit,
    // up to 4 MiB for the webhook) is known, and with no way to answer. on_header sets it.
    // (Not boost::none: Beast 1.74 compares the length with it as an optional, and every
    // length is greater than none.)
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    route_name_ = "unmatched";
    // One deadline for headers and body together: a client that trickles bytes is still cut off.
    stream_.expires_after(shared_->limits.request_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             beast::bind_front_handler(&session::on_header, shared_from_this()));
  }

  void on_header(beast::error_code ec, std::size_t) {
    if (ec == bhttp::error::header_limit) {
      begin_request();
      return reply_and_close(json_error(bhttp::status::request_header_fields_too_large,
                                        "headers_too_large",
                                        "Request headers exceed 16 KiB."));
    }
    if (ec == beast::error::timeout || ec == net::error::eof || ec == bhttp::error::end_of_stream ||
        ec == net::error::connection_reset || ec == net::error::operation_aborted) {
      return close_now();  // the client left or stalled: there is nobody to answer
    }
    if (ec) {
      // Bytes that are not an HTTP request head (or one with conflicting framing: a
      // Content-Length beside chunked, two different lengths): say so before closing.
      begin_request();
      return reply_and_close(json_error(bhttp::status::bad_request, "invalid_request",
                                        "Malformed HTTP request: " + ec.message() + "."));
    }
    begin_request();
    const auto& h = parser_->get();
    if (auto why = framing_error(h, parser_->chunked())) {
      return reply_and_close(json_error(bhttp::status::bad_request, "invalid_request", *why));
    }
    auto [path, query] = infra::split_target(h.target());
    match_ = shared_->routes->match(h.method(), path);
    if (match_.matched != nullptr) {
      route_name_ = match_.matched->name;
    }
    // The route's limit, or the default one for a path no route takes (its body is still read
    // before the 404 or 405): the parser holds chunked bodies to it as they arrive. A
    // Content-Length was read while no limit was in force, so it is checked here.
    auto limit = match_.matched != nullptr ? match_.matched->max_body
                                           : shared_->limits.default_body_limit;
    parser_->body_limit(limit);
    auto length = parser_->content_length();
    if (length && *length > limit) {
      return on_body(bhttp::error::body_limit, 0);
    }
    if (parser_->is_done()) {
      return on_body({}, 0);
    }
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&session::on_body, shared_from_this()));
  }

  void on_body(beast::error_code ec, std::size_t) {
    if (ec == bhttp::error::body_limit) {
      return reply_and_close(
          json_error(bhttp::status::payload_too_large, "payload_too_large",
                     "Request body exceeds the limit for this path."));
    }
    if (ec == beast::error::timeout || ec == net::error::eof ||
        ec == net::error::connection_reset) {
      end_request();
      return close_now();
    }
    if (ec) {
      return reply_and_close(json_error(bhttp::status::bad_request, "invalid_request",
                                        "Malformed HTTP request."));
    }
    keep_alive_ = parser_->get().keep_alive();
    if (match_.matched == nullptr) {
      if (match_.path_known) {
        // RFC 9110 §15.5.6: a 405 names the methods the path does take.
        std::string allow;
        for (auto v : match_.allowed) {
          if (allow.find(std::string{bhttp::to_string(v)}) == std::string::npos) {
            allow += (allow.empty() ? "" : ", ") + std::string{bhttp::to_string(v)};
          }
        }
        auto res = json_error(bhttp::status::method_not_allowed, "method_not_allowed",
                              "Method not allowed on this path; it takes " + allow + ".");
        res.set(bhttp::field::allow, allow);
        return reply(std::move(res));
      }
      return reply(json_error(bhttp::status::not_found, "not_found", "No such resource."));
    }
    // The handler may take its time (an actor, the database); no read is pending meanwhile.
    stream_.expires_never();
    request_context ctx;
    ctx.req = parser_->release();
    auto [path, query] = infra::split_target(ctx.req.target());
    ctx.path = std::string{path};
    ctx.query = infra::parse_query(query);
    ctx.params = std::move(match_.params);
    ctx.executor = stream_.get_executor();
    auto self = shared_from_this();
    ctx.open_stream = [self](std::string content_type) -> std::shared_ptr<stream_sink> {
      return self->open_stream(std::move(content_type));
    };
    ctx.send_file = [self](file_reply f) {
      net::post(self->stream_.get_executor(), [self, f = std::move(f)]() mutable { self->reply_file(std::move(f)); });
    };
    responder respond{[self](response res) {
      net::post(self->stream_.get_executor(), [self, res = std::move(res)]() mutable {
        self->reply(std::move(res));
      });
    }};
    match_.matched->handle(ctx, std::move(respond));
  }

  class sink : public stream_sink {
   public:
    explicit sink(std::shared_ptr<session> s) : s_(std::move(s)) {}
    void send(std::string chunk) override {
      if (!open_) {
        return;
      }
      net::post(s_->stream_.get_executor(), [s = s_, chunk = std::move(chunk)]() mutable {
        if (s->stream_dropped_) {
          return;  // the reader is gone: nothing more is kept for it
        }
        s->stream_queued_bytes_ += chunk.size();
        s->stream_queue_.push_back(std::move(chunk));
        s->stream_write();
      });
    }
    bool is_open() const override { return open_ && s_->stream_open_; }
    void close() override {
      open_ = false;
      net::post(s_->stream_.get_executor(), [s = s_] { s->close_now(); });
    }

   private:
    std::shared_ptr<session> s_;
    std::atomic<bool> open_{true};
  };

  std::shared_ptr<stream_sink> open_stream(std::string content_type) {
    response head{bhttp::status::ok, 11};
    head.set(bhttp::field::content_type, content_type);
    head.set(bhttp::field::cache_control, "no-store");
    head.set(bhttp::field::server, "wachat");
    head.set("X-Accel-Buffering", "no");
    head.keep_alive(false);
    std::ostringstream text;
    // No Content-Length: the body runs until the connection closes (RFC 9112 §6.3).
    text << head.base();
    auto s = std::make_shared<sink>(shared_from_this());
    auto self = shared_from_this();
    net::post(stream_.get_executor(), [self, head_text = text.str()]() mutable {
      self->shared_->metrics->count_request(self->route_name_, 200);
      self->end_request();  // a stream is not a request in flight: shutdown need not wait for it
      self->stream_open_ = true;
      self->streaming_ = true;
      self->stream_.expires_never();
      self->stream_queued_bytes_ += head_text.size();
      self->stream_queue_.push_front(std::move(head_text));
      self->stream_write();
      self->watch_stream_close();
    });
    return s;
  }

  void stream_write() {
    if (stream_queue_.empty() || !stream_open_) {
      return;
    }
    // Checked also while a write is pending: a reader that stopped reading never completes it.
    if (stream_queued_bytes_ > max_stream_backlog) {
      // A reader this far behind is gone or hostile: drop it rather than grow without bound.
      // It can resume with Last-Event-ID from the last frame it received. The queue is left
      // as it is: a pending write still points into its front, and fails on the close.
      stream_open_ = false;
      stream_dropped_ = true;
      return close_now();
    }
    if (stream_writing_) {
      return;
    }
    stream_writing_ = true;
    net::async_write(stream_.socket(), net::buffer(stream_queue_.front()),
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->stream_writing_ = false;
                       self->stream_queued_bytes_ -= self->stream_queue_.front().size();
                       self->stream_queue_.pop_front();
                       if (ec) {
                         self->stream_open_ = false;
                         return self->close_now();
                       }
                       self->stream_write();
                     });
  }

  // The client never sends anything on an event stream; any read completion means it left.
  void watch_stream_close() {
    stream_.socket().async_read_some(
        net::buffer(drain_buf_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
          if (ec) {
            self->stream_open_ = false;
            self->close_now();
            return;
          }
          self->watch_stream_close();
        });
  }

  void reply_and_close(response res) {
    close_after_ = true;
    reply(std::move(res));
  }

  void reply(response res) {
    if (stream_open_ || streaming_) {
      return;  // the connection became an event stream; a late plain answer has no place
    }
    bool keep = keep_alive_ && !close_after_ && !shared_->draining;
    res.keep_alive(keep);
    res.set(bhttp::field::server, "wachat");
    shared_->metrics->count_request(route_name_, static_cast<int>(res.result_int()));
    res_ = std::make_shared<response>(std::move(res));
    stream_.expires_after(shared_->limits.write_timeout);
    bhttp::async_write(stream_, *res_,
                       beast::bind_front_handler(&session::on_write, shared_from_this(), !keep));
  }

  // The header, then the file chunk by chunk, each write under the write timeout: a reader
  // that stops reading is cut off, and memory stays one chunk whatever the file's size.
  void reply_file(file_reply f) {
    if (stream_open_ || streaming_) {
      return;
    }
    bool keep = keep_alive_ && !close_after_ && !shared_->draining;
    bhttp::response<bhttp::empty_body> head{f.status, 11};
    for (auto& [field, value] : f.headers) {
      head.set(field, value);
    }
    head.set(bhttp::field::server, "wachat");
    head.content_length(f.length);
    head.keep_alive(keep);
    shared_->metrics->count_request(route_name_, static_cast<int>(f.status));
    std::ostringstream text;
    text << head.base();
    file_ = std::make_unique<file_sending>();
    file_->reply = std::move(f);
    file_->head = text.str();
    file_->keep = keep;
    file_->chunk.resize(64 * 1024);
    file_->pos = file_->reply.offset;
    file_->remaining = file_->reply.length;
    stream_.expires_after(shared_->limits.write_timeout);
    net::async_write(stream_, net::buffer(file_->head), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_file_written(ec);
    });
  }

  void on_file_written(beast::error_code ec) {
    if (ec) {
      file_.reset();
      end_request();
      return close_now();
    }
    auto& f = *file_;
    if (f.remaining == 0) {
      bool keep = f.keep;
      file_.reset();
      return on_write(!keep, {}, 0);
    }
    std::size_t got = 0;
    try {
      got = f.reply.read(f.pos, f.chunk.data(), std::min<std::uint64_t>(f.chunk.size(), f.remaining));
    } catch (const std::exception&) {
      got = 0;
    }
    if (got == 0) {
      // The file ended early or could not be read: the length announced cannot be kept, and
      // only closing tells the client so.
      file_.reset();
      end_request();
      return close_now();
    }
    f.pos += got;
    f.remaining -= got;
    stream_.expires_after(shared_->limits.write_timeout);
    net::async_write(stream_, net::buffer(f.chunk.data(), got), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_file_written(ec);
    });
  }

  void on_write(bool close, beast::error_code ec, std::size_t) {
    res_.reset();
    end_request();
    if (ec) {
      return close_now();
    }
    if (close) {
      return close_gracefully();
    }
    do_read();
  }

  // Half-close, then read and discard what the client still sends for a moment, so that the
  // client sees our answer (say a 413) instead of a reset caused by its unread upload.
  void close_gracefully() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(2));
    drained_ = 0;
    drain();
  }

  void drain() {
    stream_.async_read_some(
        net::buffer(drain_buf_),
        [self = shared_from_this()](beast::error_code ec, std::size_t n) {
          self->drained_ += n;
          if (ec || self->drained_ > 64 * 1024 * 1024) {
            return self->close_now();
          }
          self->drain();
        });
  }

  void close_now() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  void begin_request() {
    if (!counted_) {
      counted_ = true;
      ++shared_->in_flight;
    }
  }

  void end_request() {
    if (counted_) {
      counted_ = false;
      --shared_->in_flight;
    }
  }

  // Its io_context's own executor: one thread runs it, so no strand (io_pool).
  beast::basic_stream<tcp, net::io_context::executor_type> stream_;
  beast::flat_buffer buffer_;
  std::shared_ptr<server_shared> shared_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  route_match match_;
  std::string route_name_;
  std::shared_ptr<response> res_;
  struct file_sending {
    file_reply reply;
    std::string head;
    bool keep = false;
    std::vector<char> chunk;
    std::uint64_t pos = 0;
    std::uint64_t remaining = 0;
  };
  std::unique_ptr<file_sending> file_;
  std::array<char, 16384> drain_buf_{};
  std::size_t drained_ = 0;
  std::deque<std::string> stream_queue_;
  std::size_t stream_queued_bytes_ = 0;
  bool stream_dropped_ = false;  // closed for lagging: later chunks are discarded
  bool stream_writing_ = false;
  bool streaming_ = false;
  std::atomic<bool> stream_open_{false};
  bool keep_alive_ = false;
  bool close_after_ = false;
  bool counted_ = false;
};

}  // namespace

void start_session(session_socket socket, std::shared_ptr<server_shared> shared) {
  std::make_shared<session>(std::move(socket), std::move(shared))->run();
}

}  // namespace wachat::http

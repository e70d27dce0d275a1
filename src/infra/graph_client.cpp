#include "infra/graph_client.hpp"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <deque>
#include <filesystem>
#include <future>
#include <limits>
#include <map>
#include <set>
#include <string_view>
#include <thread>

#include "infra/thread_priority.hpp"
#include "infra/url.hpp"
#include "infra/log.hpp"

namespace wachat::infra {
namespace {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;

constexpr std::uint32_t response_header_limit = 64 * 1024;
// A download's error answer (Meta's JSON error) is read up to this much.
constexpr std::uint64_t error_body_limit = 64 * 1024;

struct url_parts {
  bool tls = false;
  std::string host;  // without IPv6 brackets
  std::uint16_t port = 0;
  std::string target;  // path and query, starting with '/'
};

// `http(s)://host[:port][/path][?query]`; nullopt for anything else (user info included: no
// URL we call carries credentials in it).
std::optional<url_parts> parse_url(std::string_view url) {
  url_parts out;
  if (url.starts_with("https://")) {
    out.tls = true;
    url.remove_prefix(8);
  } else if (url.starts_with("http://")) {
    url.remove_prefix(7);
  } else {
    return std::nullopt;
  }
  auto end = url.find_first_of("/?#");
  auto authority = url.substr(0, end);
  std::string_view rest = end == std::string_view::npos ? std::string_view{} : url.substr(end);
  if (auto hash = rest.find('#'); hash != std::string_view::npos) {
    rest = rest.substr(0, hash);
  }
  out.target = rest.starts_with("/") ? std::string{rest} : "/" + std::string{rest};
  if (authority.empty() || authority.find('@') != std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view port_text;
  if (authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) {
      return std::nullopt;
    }
    out.host = std::string{authority.substr(1, close - 1)};
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return std::nullopt;
      }
      port_text = after.substr(1);
    }
  } else {
    auto colon = authority.rfind(':');
    out.host = std::string{authority.substr(0, colon)};
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
    }
  }
  if (out.host.empty()) {
    return std::nullopt;
  }
  out.port = out.tls ? 443 : 80;
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || ptr != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return std::nullopt;
    }
    out.port = static_cast<std::uint16_t>(port);
  }
  return out;
}

bool is_ip_literal(const std::string& host) {
  beast::error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

std::string host_and_port(const url_parts& u) {
  auto host = u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
  return fmt::format("{}:{}", host, u.port);
}

// The Host header: the port only when it is not the scheme's default.
std::string host_header(const url_parts& u) {
  auto host = u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
  if (u.port == (u.tls ? 443 : 80)) {
    return host;
  }
  return fmt::format("{}:{}", host, u.port);
}

std::string pool_key(const url_parts& u) {
  return fmt::format("{}://{}", u.tls ? "https" : "http", host_and_port(u));
}


bhttp::verb to_verb(graph_method m) {
  switch (m) {
    case graph_method::get:
      return bhttp::verb::get;
    case graph_method::post:
      return bhttp::verb::post;
    case graph_method::del:
      return bhttp::verb::delete_;
  }
  return bhttp::verb::get;
}

graph_error transport_error(std::string message) {
  graph_error e;
  e.type = "transport";
  e.title = std::move(message);
  e.transport = true;
  return e;
}

graph_response failed(graph_error error) {
  graph_response r;
  r.error = std::move(error);
  return r;
}

// One kept-alive connection, plain or TLS. Owned by one exchange at a time, or by the pool.
struct connection {
  connection(const net::any_io_executor& ex, ssl::context* tls) {
    if (tls != nullptr) {
      secure.emplace(ex, *tls);
    } else {
      plain.emplace(ex);
    }
  }

  beast::tcp_stream& tcp() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

  // An idle connection that has something to read was closed by the server (or is out of step
  // with it): either way it cannot carry the next request.
  bool looks_closed() {
    if (buffer.size() != 0 || !tcp().socket().is_open()) {
      return true;
    }
    pollfd p{tcp().socket().native_handle(), POLLIN | POLLRDHUP, 0};
    return ::poll(&p, 1, 0) != 0;
  }

  void close() {
    beast::error_code ec;
    tcp().socket().shutdown(tcp::socket::shutdown_both, ec);
    tcp().socket().close(ec);
  }

  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  steady::time_point idle_since;
};

class exchange;

}  // namespace

namespace detail {

// Shared by the client and its exchanges; everything but the atomics lives on the I/O thread.
struct graph_client_core {
  graph_client_options options;
  std::string base_prefix;  // base_url + "/" + version
  net::io_context ioc{1};
  ssl::context tls{ssl::context::tls_client};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::thread thread;
  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> opened{0};
  // Touched only on the I/O thread.
  std::map<std::string, std::deque<std::unique_ptr<connection>>> idle;
  std::set<std::shared_ptr<exchange>> in_flight;

  std::optional<url_parts> url_of(const graph_request& req) const;
  std::unique_ptr<connection> take_idle(const std::string& key);
  void give_back(const std::string& key, std::unique_ptr<connection> c);
  void start(graph_request req, graph_client::completion done, std::shared_ptr<download_sink> sink);
  void stop_on_io_thread();
};

}  // namespace detail

namespace {

// One request from submission to completion: acquire a connection (pooled or fresh: resolve,
// connect, TLS handshake), write, read, give the connection back. Lives on the I/O thread.
class exchange : public std::enable_shared_from_this<exchange> {
 public:
  exchange(detail::graph_client_core& client, url_parts url, graph_request req,
           graph_client::completion done, std::shared_ptr<download_sink> sink)
      : client_(client),
        url_(std::move(url)),
        key_(pool_key(url_)),
        idempotent_(req.method != graph_method::post),
        done_(std::move(done)),
        timeout_(req.timeout.value_or(client.options.timeout)),
        body_limit_(req.max_body_bytes.value_or(client.options.max_body_bytes)),
        resolver_(client.ioc),
        step_timer_(client.ioc),
        sink_(std::move(sink)),
        stall_(req.stall_timeout) {
    req_.method(to_verb(req.method));
    req_.target(url_.target);
    req_.version(11);
    req_.set(bhttp::field::host, host_header(url_));
    req_.set(bhttp::field::user_agent, "wachat/0.1");
    req_.set(bhttp::field::accept_encoding, "identity");
    if (!req.access_token.empty()) {
      req_.set(bhttp::field::authorization, "Bearer " + req.access_token);
    }
    if (!req.body.empty()) {
      req_.set(bhttp::field::content_type, req.content_type);
      req_.body() = std::move(req.body);
    }
    req_.keep_alive(true);
    req_.prepare_payload();
  }

  void start() {
    deadline_ = steady::now() + timeout_;
    conn_ = client_.take_idle(key_);
    if (conn_) {
      reused_ = true;
      return do_write();
    }
    do_resolve();
  }

  // Shutdown: every pending operation completes at once with operation_aborted.
  void cancel() {
    cancelled_ = true;
    resolver_.cancel();
    step_timer_.cancel();
    if (conn_) {
      conn_->close();
    }
  }

 private:
  void do_resolve() {
    phase_ = "resolving";
    connect_deadline_ = std::min(deadline_, steady::now() + client_.options.connect_timeout);
    step_expired_ = false;
    // The resolver has no deadline of its own: a timer cancels it.
    step_timer_.expires_at(connect_deadline_);
    step_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec && self->phase_ == std::string_view{"resolving"}) {
        self->step_expired_ = true;
        self->resolver_.cancel();
      }
    });
    resolver_.async_resolve(
        url_.host, std::to_string(url_.port),
        beast::bind_front_handler(&exchange::on_resolve, shared_from_this()));
  }

  void on_resolve(beast::error_code ec, tcp::resolver::results_type results) {
    step_timer_.cancel();
    if (cancelled_) {
      return finish_stopped();
    }
    if (step_expired_) {
      return finish_timeout(connect_deadline_);
    }
    if (ec) {
      return finish(failed(transport_error(
          fmt::format("DNS lookup of {} failed: {}", url_.host, ec.message()))));
    }
    phase_ = "connecting to";
    conn_ = std::make_unique<connection>(client_.ioc.get_executor(),
                                         url_.tls ? &client_.tls : nullptr);
    conn_->tcp().expires_at(connect_deadline_);
    conn_->tcp().async_connect(results,
                               beast::bind_front_handler(&exchange::on_connect, shared_from_this()));
  }

  void on_connect(beast::error_code ec, const tcp::endpoint&) {
    if (cancelled_) {
      return finish_stopped();
    }
    if (timed_out(ec, connect_deadline_)) {
      return finish_timeout(connect_deadline_);
    }
    if (ec) {
      return finish(failed(transport_error(
          fmt::format("connecting to {} failed: {}", host_and_port(url_), ec.message()))));
    }
    client_.opened.fetch_add(1);
    if (!url_.tls) {
      return do_write();
    }
    phase_ = "in the TLS handshake with";
    SSL* ssl = conn_->secure->native_handle();
    bool set_up = true;
    if (is_ip_literal(url_.host)) {
      // No SNI for addresses (RFC 6066); the certificate must name the address itself.
      set_up = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url_.host.c_str()) == 1;
    } else {
      set_up = SSL_set_tlsext_host_name(ssl, url_.host.c_str()) == 1 &&
               SSL_set1_host(ssl, url_.host.c_str()) == 1;
    }
    if (!set_up) {
      return finish(failed(transport_error(
          fmt::format("TLS set-up for {} failed", host_and_port(url_)))));
    }
    conn_->secure->set_verify_mode(ssl::verify_peer);
    conn_->tcp().expires_at(connect_deadline_);
    conn_->secure->async_handshake(
        ssl::stream_base::client,
        beast::bind_front_handler(&exchange::on_handshake, shared_from_this()));
  }

  void on_handshake(beast::error_code ec) {
    if (cancelled_) {
      return finish_stopped();
    }
    if (timed_out(ec, connect_deadline_)) {
      return finish_timeout(connect_deadline_);
    }
    if (ec) {
      std::string reason = ec.message();
      long verify = SSL_get_verify_result(conn_->secure->native_handle());
      if (verify != X509_V_OK) {
        reason = fmt::format("certificate not trusted: {}", X509_verify_cert_error_string(verify));
      }
      return finish(failed(transport_error(
          fmt::format("TLS handshake with {} failed: {}", host_and_port(url_), reason))));
    }
    do_write();
  }

  void do_write() {
    phase_ = "sending the request to";
    conn_->tcp().expires_at(deadline_);
    auto write = [this](auto& stream) {
      bhttp::async_write(stream, req_,
                         beast::bind_front_handler(&exchange::on_write, shared_from_this()));
    };
    if (conn_->secure) {
      write(*conn_->secure);
    } else {
      write(*conn_->plain);
    }
  }

  void on_write(beast::error_code ec, std::size_t bytes) {
    if (bytes > 0 || !ec) {
      sent_ = true;
    }
    if (cancelled_) {
      return finish_stopped();
    }
    if (timed_out(ec, deadline_)) {
      return finish_timeout(deadline_);
    }
    if (ec) {
      // Nothing left this process, so a fresh connection cannot repeat the call at Meta.
      if (retry_allowed(bytes == 0)) {
        return retry();
      }
      return finish(failed(transport_error(fmt::format(
          "sending the request to {} failed: {}", host_and_port(url_), ec.message()))));
    }
    do_read();
  }

  void do_read() {
    if (sink_) {
      return do_read_stream();
    }
    phase_ = "waiting for the answer from";
    parser_.emplace();
    parser_->header_limit(response_header_limit);
    parser_->body_limit(body_limit_);
    conn_->tcp().expires_at(deadline_);
    // The header first, on its own: Beast 1.74's eager async_read skips the body limit check
    // of a Content-Length body that arrives in the same read as the header.
    auto read = [this](auto& stream) {
      bhttp::async_read_header(
          stream, conn_->buffer, *parser_,
          beast::bind_front_handler(&exchange::on_header, shared_from_this()));
    };
    if (conn_->secure) {
      read(*conn_->secure);
    } else {
      read(*conn_->plain);
    }
  }

  void on_header(beast::error_code ec, std::size_t bytes) {
    if (ec || parser_->is_done()) {
      return on_read(ec, bytes);
    }
    auto read = [this](auto& stream) {
      bhttp::async_read(stream, conn_->buffer, *parser_,
                        beast::bind_front_handler(&exchange::on_read, shared_from_this()));
    };
    if (conn_->secure) {
      read(*conn_->secure);
    } else {
      read(*conn_->plain);
    }
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (cancelled_) {
      return finish_stopped();
    }
    if (timed_out(ec, deadline_)) {
      return finish_timeout(deadline_);
    }
    if (ec == bhttp::error::body_limit) {
      // Not a transport fault: the same call would fail the same way again.
      graph_error e;
      e.type = "response_too_large";
      e.title = fmt::format("the answer from {} is larger than {} bytes", host_and_port(url_),
                            body_limit_);
      e.http_status = static_cast<int>(parser_->get().result_int());
      return finish(failed(std::move(e)));
    }
    if (ec) {
      // A kept-alive connection the server closed before answering: a GET or DELETE can be
      // sent again safely, a POST could be sent twice at Meta and is reported instead.
      if (!parser_->got_some() && retry_allowed(false)) {
        return retry();
      }
      return finish(failed(transport_error(fmt::format(
          "reading the answer from {} failed: {}", host_and_port(url_), ec.message()))));
    }
    auto res = parser_->release();
    graph_response out;
    out.status = static_cast<int>(res.result_int());
    out.content_type = std::string{res[bhttp::field::content_type]};
    out.body = std::move(res.body());
    if (out.status < 200 || out.status > 299) {
      out.error = domain::parse_graph_error(out.status, out.body);
    }
    if (res.keep_alive() && req_.keep_alive()) {
      client_.give_back(key_, std::move(conn_));
    }
    finish(std::move(out));
  }

  // A download: the header, then the body chunk by chunk into the sink (or, for an error
  // answer, into a bounded string for Meta's error object).
  void do_read_stream() {
    phase_ = "waiting for the answer from";
    stream_parser_.emplace();
    stream_parser_->header_limit(response_header_limit);
    // No body limit while the header is read: Beast 1.74 checks a Content-Length against the
    // limit in force right then, and which limit applies (the file's, or 64 KiB for an error
    // answer) depends on the status. on_stream_header sets it. (Not boost::none: see session.cpp.)
    stream_parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    chunk_.resize(64 * 1024);
    arm_read_deadline();
    auto read = [this](auto& stream) {
      bhttp::async_read_header(stream, conn_->buffer, *stream_parser_,
                               beast::bind_front_handler(&exchange::on_stream_header, shared_from_this()));
    };
    if (conn_->secure) {
      read(*conn_->secure);
    } else {
      read(*conn_->plain);
    }
  }

  // Each read waits at most the stall timeout for its bytes, and never past the whole deadline.
  void arm_read_deadline() {
    read_deadline_ = deadline_;
    if (stall_) {
      read_deadline_ = std::min(deadline_, steady::now() + *stall_);
    }
    conn_->tcp().expires_at(read_deadline_);
  }

  void on_stream_header(beast::error_code ec, std::size_t) {
    if (ec) {
      return on_stream_failed(ec);
    }
    const auto& head = stream_parser_->get();
    status_ = static_cast<int>(head.result_int());
    content_type_ = std::string{head[bhttp::field::content_type]};
    error_body_mode_ = status_ < 200 || status_ > 299;
    const std::uint64_t limit = error_body_mode_ ? error_body_limit : body_limit_;
    auto length = stream_parser_->content_length();
    if (length && *length > limit) {
      if (error_body_mode_) {
        graph_error e = transport_error(fmt::format("{} answered HTTP {} with a body of {} bytes",
                                                    host_and_port(url_), status_, *length));
        e.http_status = status_;
        return finish(failed(std::move(e)));
      }
      return on_stream_failed(bhttp::error::body_limit);
    }
    stream_parser_->body_limit(limit);
    if (!error_body_mode_) {
      sink_->begin(length ? std::optional<std::uint64_t>{*length} : std::nullopt, content_type_);
    }
    read_chunk();
  }

  void read_chunk() {
    if (stream_parser_->is_done()) {
      return on_stream_done();
    }
    phase_ = "receiving the body from";
    stream_parser_->get().body().data = chunk_.data();
    stream_parser_->get().body().size = chunk_.size();
    arm_read_deadline();
    auto read = [this](auto& stream) {
      bhttp::async_read(stream, conn_->buffer, *stream_parser_,
                        beast::bind_front_handler(&exchange::on_chunk, shared_from_this()));
    };
    if (conn_->secure) {
      read(*conn_->secure);
    } else {
      read(*conn_->plain);
    }
  }

  void on_chunk(beast::error_code ec, std::size_t) {
    if (ec == bhttp::error::need_buffer) {
      ec = {};  // the chunk buffer is full: hand it on and read on
    }
    auto got = chunk_.size() - stream_parser_->get().body().size;
    if (got > 0 && !cancelled_) {
      if (error_body_mode_) {
        error_body_.append(chunk_.data(), got);
      } else if (!sink_->write(chunk_.data(), got)) {
        graph_error e;
        e.type = "download_refused";
        e.title = sink_->why();
        e.http_status = status_;
        return finish(failed(std::move(e)));
      }
    }
    if (ec) {
      return on_stream_failed(ec);
    }
    read_chunk();
  }

  void on_stream_failed(beast::error_code ec) {
    if (cancelled_) {
      return finish_stopped();
    }
    if (ec == beast::error::timeout || (ec && steady::now() >= read_deadline_)) {
      if (read_deadline_ < deadline_ && stall_) {
        return finish(failed(transport_error(fmt::format("no data for {} ms {} {}", stall_->count(), phase_,
                                                         host_and_port(url_)))));
      }
      return finish_timeout(deadline_);
    }
    if (ec == bhttp::error::body_limit) {
      graph_error e;
      e.type = "response_too_large";
      e.title = fmt::format("the answer from {} is larger than {} bytes", host_and_port(url_), body_limit_);
      e.http_status = status_;
      return finish(failed(std::move(e)));
    }
    if (!stream_parser_->got_some() && retry_allowed(false)) {
      return retry();
    }
    return finish(failed(transport_error(
        fmt::format("reading the answer from {} failed: {}", host_and_port(url_), ec.message()))));
  }

  void on_stream_done() {
    graph_response out;
    out.status = status_;
    out.content_type = content_type_;
    if (error_body_mode_) {
      out.body = std::move(error_body_);
      out.error = domain::parse_graph_error(out.status, out.body);
    }
    if (stream_parser_->get().keep_alive() && req_.keep_alive()) {
      client_.give_back(key_, std::move(conn_));
    }
    finish(std::move(out));
  }

  bool retry_allowed(bool nothing_sent) const {
    return reused_ && !retried_ && !cancelled_ && (nothing_sent || idempotent_);
  }

  void retry() {
    retried_ = true;
    reused_ = false;
    conn_->close();
    conn_.reset();
    do_resolve();
  }

  bool timed_out(beast::error_code ec, steady::time_point step_deadline) const {
    return ec == beast::error::timeout || (ec && steady::now() >= step_deadline);
  }

  void finish_timeout(steady::time_point step_deadline) {
    auto limit = step_deadline == deadline_ ? timeout_ : client_.options.connect_timeout;
    finish(failed(transport_error(fmt::format("timed out after {} ms {} {}", limit.count(),
                                              phase_, host_and_port(url_)))));
  }

  void finish_stopped() { finish(failed(transport_error("graph client stopped"))); }

  void finish(graph_response r) {
    if (finished_) {
      return;
    }
    finished_ = true;
    phase_ = "done";
    step_timer_.cancel();
    if (conn_) {
      conn_->close();
      conn_.reset();
    }
    r.request_sent = sent_;
    auto self = shared_from_this();
    client_.in_flight.erase(self);
    auto done = std::move(done_);
    try {
      done(std::move(r));
    } catch (const std::exception& e) {
      infra::log_error("graph_completion_threw", {{"what", e.what()}});
    } catch (...) {
      infra::log_error("graph_completion_threw");
    }
  }

  detail::graph_client_core& client_;
  url_parts url_;
  std::string key_;
  bhttp::request<bhttp::string_body> req_;
  bool idempotent_;
  graph_client::completion done_;
  std::chrono::milliseconds timeout_;
  std::size_t body_limit_;
  steady::time_point deadline_;
  steady::time_point connect_deadline_;
  tcp::resolver resolver_;
  net::steady_timer step_timer_;
  std::unique_ptr<connection> conn_;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser_;
  // Downloads only.
  std::shared_ptr<download_sink> sink_;
  std::optional<std::chrono::milliseconds> stall_;
  std::optional<bhttp::response_parser<bhttp::buffer_body>> stream_parser_;
  std::vector<char> chunk_;
  steady::time_point read_deadline_;
  int status_ = 0;
  std::string content_type_;
  bool error_body_mode_ = false;
  std::string error_body_;
  const char* phase_ = "starting";
  bool reused_ = false;
  bool retried_ = false;
  bool sent_ = false;
  bool cancelled_ = false;
  bool finished_ = false;
  bool step_expired_ = false;
};

}  // namespace

std::optional<url_parts> detail::graph_client_core::url_of(const graph_request& req) const {
  std::string url;
  if (req.path.starts_with("http://") || req.path.starts_with("https://")) {
    url = req.path;
  } else {
    url = base_prefix + (req.path.starts_with("/") ? "" : "/") + req.path;
  }
  auto parts = parse_url(url);
  if (!parts) {
    return std::nullopt;
  }
  char sep = parts->target.find('?') == std::string::npos ? '?' : '&';
  for (const auto& [key, value] : req.query) {
    parts->target += sep;
    parts->target += percent_encode(key);
    parts->target += '=';
    parts->target += percent_encode(value);
    sep = '&';
  }
  return parts;
}

std::unique_ptr<connection> detail::graph_client_core::take_idle(const std::string& key) {
  auto it = idle.find(key);
  if (it == idle.end()) {
    return nullptr;
  }
  auto now = steady::now();
  auto& queue = it->second;
  while (!queue.empty()) {
    // Most recently used first: the likeliest to be still open at the server.
    auto c = std::move(queue.back());
    queue.pop_back();
    if (now - c->idle_since < options.idle_timeout && !c->looks_closed()) {
      return c;
    }
    c->close();
  }
  return nullptr;
}

void detail::graph_client_core::give_back(const std::string& key, std::unique_ptr<connection> c) {
  if (stopping || options.max_idle_per_host == 0 || c->buffer.size() != 0) {
    c->close();
    return;
  }
  auto now = steady::now();
  auto& queue = idle[key];
  while (!queue.empty() &&
         (now - queue.front()->idle_since >= options.idle_timeout ||
          queue.size() >= options.max_idle_per_host)) {
    queue.front()->close();
    queue.pop_front();
  }
  c->idle_since = now;
  c->tcp().expires_never();
  queue.push_back(std::move(c));
}

void detail::graph_client_core::start(graph_request req, graph_client::completion done,
                                      std::shared_ptr<download_sink> sink) {
  if (stopping) {
    done(failed(transport_error("graph client stopped")));
    return;
  }
  auto url = url_of(req);
  if (!url) {
    // Only the scheme is named: an absolute URL's query may hold signed parameters.
    done(failed(transport_error("not a usable http(s) URL for the Graph API request")));
    return;
  }
  auto ex = std::make_shared<exchange>(*this, std::move(*url), std::move(req), std::move(done), std::move(sink));
  in_flight.insert(ex);
  ex->start();
}

void detail::graph_client_core::stop_on_io_thread() {
  stopping = true;
  for (auto& [key, queue] : idle) {
    for (auto& c : queue) {
      c->close();
    }
  }
  idle.clear();
  // Copy: a cancelled exchange may finish (and leave the set) later, never during cancel().
  auto running = in_flight;
  for (const auto& ex : running) {
    ex->cancel();
  }
}

graph_client_options graph_client_options::from_config(const infra::config& c) {
  graph_client_options o;
  o.base_url = c.graph_base_url;
  o.version = c.graph_version;
  o.ca_file = c.graph_ca_file;
  return o;
}

std::variant<std::unique_ptr<graph_client>, std::string> graph_client::create(
    graph_client_options options) {
  while (!options.base_url.empty() && options.base_url.back() == '/') {
    options.base_url.pop_back();
  }
  auto base = parse_url(options.base_url);
  if (!base || base->target.find('?') != std::string::npos) {
    return std::string{"the Graph API base URL must look like https://host[:port] or http://host[:port]"};
  }
  if (options.version.empty() || options.version.find_first_of("/?# ") != std::string::npos) {
    return std::string{"the Graph API version must be one path segment such as v24.0"};
  }
  if (options.timeout.count() <= 0 || options.connect_timeout.count() <= 0) {
    return std::string{"Graph API timeouts must be positive"};
  }
  auto core = std::make_shared<detail::graph_client_core>();
  core->options = options;
  core->base_prefix = options.base_url + "/" + options.version;
  beast::error_code ec;
  core->tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                            ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                            ssl::context::no_tlsv1_1,
                        ec);
  core->tls.set_verify_mode(ssl::verify_peer, ec);
  core->tls.set_default_verify_paths(ec);
  if (ec) {
    return fmt::format("cannot load the system certificate store: {}", ec.message());
  }
  if (options.ca_file) {
    std::error_code fs_ec;
    if (!std::filesystem::is_regular_file(*options.ca_file, fs_ec)) {
      return fmt::format("WACHAT_GRAPH_CA_FILE {} is not a readable file", *options.ca_file);
    }
    core->tls.load_verify_file(*options.ca_file, ec);
    if (ec) {
      return fmt::format("WACHAT_GRAPH_CA_FILE {} holds no usable PEM certificate: {}",
                         *options.ca_file, ec.message());
    }
  }
  core->work.emplace(core->ioc.get_executor());
  auto* raw = core.get();
  core->thread = std::thread([raw] {
    if (raw->options.background) {
      lower_this_thread_priority();
    }
    for (;;) {
      try {
        raw->ioc.run();
        return;
      } catch (const std::exception& e) {
        // A completion handler's own faults are caught in finish(); this is a last resort so
        // the I/O thread keeps serving the other calls.
        infra::log_error("graph_client_thread_threw", {{"what", e.what()}});
      }
    }
  });
  return std::unique_ptr<graph_client>{new graph_client{std::move(core)}};
}

graph_client::graph_client(std::shared_ptr<detail::graph_client_core> core)
    : core_(std::move(core)) {}

graph_client::~graph_client() {
  net::post(core_->ioc, [raw = core_.get()] { raw->stop_on_io_thread(); });
  core_->work.reset();
  if (core_->thread.joinable()) {
    core_->thread.join();
  }
  // Requests posted while the thread was stopping still owe their callers an answer.
  core_->stopping = true;
  core_->ioc.restart();
  core_->ioc.run();
}

void graph_client::stop() {
  core_->stopping = true;
  net::post(core_->ioc, [raw = core_.get()] { raw->stop_on_io_thread(); });
}

void graph_client::request(graph_request req, completion done) {
  if (core_->stopping) {
    done(failed(transport_error("graph client stopped")));
    return;
  }
  net::post(core_->ioc, [raw = core_.get(), req = std::move(req), done = std::move(done)]() mutable {
    raw->start(std::move(req), std::move(done), nullptr);
  });
}

void graph_client::download(graph_request req, std::shared_ptr<download_sink> sink, completion done) {
  if (core_->stopping) {
    done(failed(transport_error("graph client stopped")));
    return;
  }
  net::post(core_->ioc, [raw = core_.get(), req = std::move(req), done = std::move(done),
                         sink = std::move(sink)]() mutable {
    raw->start(std::move(req), std::move(done), std::move(sink));
  });
}

graph_response graph_client::request_blocking(graph_request req) {
  return download_blocking(std::move(req), nullptr);
}

graph_response graph_client::download_blocking(graph_request req, std::shared_ptr<download_sink> sink) {
  if (std::this_thread::get_id() == core_->thread.get_id()) {
    return failed(transport_error("a blocking call made on the graph client's own thread"));
  }
  std::promise<graph_response> promise;
  auto answer = promise.get_future();
  auto done = [&promise](graph_response r) { promise.set_value(std::move(r)); };
  if (sink) {
    download(std::move(req), std::move(sink), std::move(done));
  } else {
    request(std::move(req), std::move(done));
  }
  return answer.get();
}

std::string graph_client::url_for(const std::string& path) const {
  if (path.starts_with("http://") || path.starts_with("https://")) {
    return path;
  }
  return core_->base_prefix + (path.starts_with("/") ? "" : "/") + path;
}

const graph_client_options& graph_client::options() const { return core_->options; }

std::uint64_t graph_client::connections_opened() const { return core_->opened.load(); }

}  // namespace wachat::infra

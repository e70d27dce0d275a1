#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "domain/graph_error_policy.hpp"
#include "infra/config.hpp"

namespace wachat::infra {

namespace detail {
struct graph_client_core;
}

using graph_error = domain::graph_error;

enum class graph_method { get, post, del };

// One call to the Graph API. `path` is relative to the configured base URL and version
// ("/{phone_number_id}/messages" becomes "{base}/{version}/{phone_number_id}/messages"), or an
// absolute http(s) URL used as is (media downloads, paging.next links).
struct graph_request {
  graph_method method = graph_method::get;
  std::string path;
  std::vector<std::pair<std::string, std::string>> query;  // appended, percent-encoded
  std::string access_token;  // sent as `Authorization: Bearer`; never logged or returned
  std::string body;          // JSON text for POST; empty sends no body
  std::string content_type = "application/json";
  std::optional<std::chrono::milliseconds> timeout;  // overrides the client's default
  std::optional<std::size_t> max_body_bytes;          // overrides the client's default
  // Downloads only: the longest wait for the next bytes of the body (a stalled sender), within
  // `timeout`, which then bounds the whole transfer.
  std::optional<std::chrono::milliseconds> stall_timeout;
};

// Takes a download's body as it arrives (graph_client::download), on the client's I/O thread:
// it must not block for long, and must not throw.
class download_sink {
 public:
  virtual ~download_sink() = default;
  // The answer is 2xx and its body follows; `content_length` when the sender announced one.
  virtual void begin(std::optional<std::uint64_t> content_length, const std::string& content_type) = 0;
  // False stops the transfer: the download completes with an error of type "download_refused"
  // whose title is why().
  virtual bool write(const char* data, std::size_t size) = 0;
  virtual std::string why() const = 0;
};

struct graph_response {
  int status = 0;  // HTTP status; 0 when the call failed before an answer arrived
  std::string body;
  std::string content_type;
  // Set for every non-2xx answer and every transport failure; absent means success.
  std::optional<graph_error> error;
  // False only when no byte of the request left this process: then a failed call certainly did
  // nothing at Meta. True with a transport error means Meta may have acted on it.
  bool request_sent = false;

  bool ok() const { return !error.has_value(); }
};

struct graph_client_options {
  std::string base_url = "https://graph.facebook.com";  // http:// allowed for local fakes
  std::string version = "v24.0";
  std::optional<std::string> ca_file;  // PEM bundle trusted in addition to the system store
  std::chrono::milliseconds timeout{10000};          // one whole request, from submit to body
  std::chrono::milliseconds connect_timeout{5000};   // resolve + connect + TLS handshake
  // Idle kept-alive connections kept per host; when a request finishes with this many idle, the
  // oldest is closed. Sends overlap (at N/s with Meta answering in L seconds about N * L are in
  // flight), and after a burst every connection beyond the limit is closed, to be opened again
  // (resolve, connect, TLS) by later sends. With 8, the sending bench's closed loop (about
  // 3,000 sends/s into a local fake) opened a connection for every third send; with 64, 50 in
  // all (bench/RESULTS.md, set 14). Idle connections are only checked when taken.
  std::size_t max_idle_per_host = 64;
  std::chrono::milliseconds idle_timeout{30000};     // an idle connection older than this is dropped
  std::size_t max_body_bytes = 16 * 1024 * 1024;     // larger answers fail (transport error)
  // Run the I/O thread at a lower CPU priority (nice 10): for bulk transfers (media) that must
  // yield to message processing when the machine is busy.
  bool background = false;

  static graph_client_options from_config(const infra::config& c);
};

// Asynchronous client for Meta's Graph API. Runs its own I/O thread; `request` never blocks the
// caller. Keeps up to `max_idle_per_host` idle connections per host and reuses them. Thread-safe.
class graph_client {
 public:
  using completion = std::function<void(graph_response)>;

  // A client, or one clear line saying why it cannot be built (bad base URL, unreadable CA file).
  static std::variant<std::unique_ptr<graph_client>, std::string> create(
      graph_client_options options);

  // Cancels calls in flight (they complete with a transport error) and joins the I/O thread.
  // Must not run inside one of the client's own completion handlers.
  ~graph_client();
  graph_client(const graph_client&) = delete;
  graph_client& operator=(const graph_client&) = delete;

  // Cancels the calls in flight (they complete with a transport error) and fails every later
  // one at once; the client can then be destroyed whenever its last user is done with it.
  void stop();

  // Sends `req`; `done` is called exactly once, on the client's I/O thread, so it must not
  // block (hand the result to an actor or post it to a strand). A stale kept-alive connection
  // is retried once on a fresh one only when that cannot repeat the call at Meta (nothing was
  // sent, or the method is GET/DELETE).
  void request(graph_request req, completion done);

  // As request(), but a 2xx answer's body goes to `sink` as it arrives, never whole in memory
  // (the response's body stays empty); `max_body_bytes` still bounds it ("response_too_large").
  // A non-2xx answer's body (Meta's error, at most 64 KiB) is read as usual.
  void download(graph_request req, std::shared_ptr<download_sink> sink, completion done);
  graph_response download_blocking(graph_request req, std::shared_ptr<download_sink> sink);

  // Waits for the answer: for tests, tools and detached actors (a thread of their own) only;
  // never from an asio thread or a scheduled actor of the server. Called from the client's own
  // I/O thread it fails instead of deadlocking.
  graph_response request_blocking(graph_request req);

  // The URL `path` resolves to (no query), e.g. for building paging links in tests.
  std::string url_for(const std::string& path) const;

  const graph_client_options& options() const;

  // Connections opened since start (a kept-alive reuse does not count).
  std::uint64_t connections_opened() const;

 private:
  explicit graph_client(std::shared_ptr<detail::graph_client_core> core);
  std::shared_ptr<detail::graph_client_core> core_;
};

}  // namespace wachat::infra

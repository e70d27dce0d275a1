#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "domain/templates.hpp"
#include "infra/graph_client.hpp"

namespace wachat::actors {

// A site's message templates as its actor caches them (API.md §3.2): fetched from Graph with
// every page followed, kept for `ttl`, fetched again on `refresh` or after invalidate(). One
// fetch at a time; whoever asks meanwhile waits for it. No I/O of its own: it says which Graph
// request to make next, and the site actor makes it and hands back the answer. Used by the site
// actor only (one thread).
class template_cache {
 public:
  using done_fn = std::function<void(const std::optional<domain::graph_error>& failure)>;
  static constexpr std::chrono::minutes ttl{10};
  static constexpr int max_pages = 100;

  // `done` runs when the list is fresh: now, or once the fetch this starts (the request returned)
  // or one already running ends. `failure` is set when that fetch failed (the old list stays).
  std::optional<infra::graph_request> want(bool refresh, done_fn done, const std::string& waba_id,
                                           const std::string& token);
  // A page's answer for fetch `generation`: the next page's request, or none (the waiters ran).
  std::optional<infra::graph_request> page(std::uint64_t generation, const infra::graph_response& res);
  // The settings changed (another WABA or token): the next use fetches again.
  void invalidate();
  // Meta says a template changed: the next use fetches again; the list stays meanwhile.
  void expire() { fetched_mono_ = {}; }

  std::uint64_t generation() const { return generation_; }
  const std::vector<domain::template_def>& list() const { return list_; }
  std::optional<std::int64_t> fetched_at() const { return fetched_at_; }  // unix s
  const std::optional<domain::graph_error>& last_error() const { return last_error_; }

 private:
  infra::graph_request request_for(std::string path) const;
  void finish(std::optional<domain::graph_error> failure);

  std::vector<domain::template_def> list_;
  std::optional<std::int64_t> fetched_at_;
  std::chrono::steady_clock::time_point fetched_mono_{};
  std::optional<domain::graph_error> last_error_;
  bool fetching_ = false;
  std::uint64_t generation_ = 0;
  int pages_ = 0;
  std::vector<domain::template_def> partial_;
  std::vector<done_fn> waiters_;
  std::string token_;
};

}  // namespace wachat::actors

#include "actors/site/template_cache.hpp"

#include <ctime>

namespace wachat::actors {

infra::graph_request template_cache::request_for(std::string path) const {
  infra::graph_request req;
  req.method = infra::graph_method::get;
  req.path = std::move(path);
  req.access_token = token_;
  return req;
}

std::optional<infra::graph_request> template_cache::want(bool refresh, done_fn done, const std::string& waba_id,
                                                         const std::string& token) {
  const auto fresh = fetched_at_ && std::chrono::steady_clock::now() - fetched_mono_ < ttl;
  if (!refresh && fresh && !fetching_) {
    done(std::nullopt);
    return std::nullopt;
  }
  waiters_.push_back(std::move(done));
  if (fetching_) {
    return std::nullopt;  // the running fetch answers it
  }
  fetching_ = true;
  ++generation_;
  pages_ = 0;
  partial_.clear();
  token_ = token;
  auto req = request_for("/" + waba_id + "/message_templates");
  req.query = {{"fields", "name,language,status,category,components,quality_score"}, {"limit", "100"}};
  return req;
}

std::optional<infra::graph_request> template_cache::page(std::uint64_t generation, const infra::graph_response& res) {
  if (!fetching_ || generation != generation_) {
    return std::nullopt;  // a fetch given up (the settings changed meanwhile)
  }
  if (!res.ok()) {
    finish(res.error);
    return std::nullopt;
  }
  auto parsed = domain::parse_template_page(res.body);
  if (!parsed) {
    domain::graph_error e;
    e.http_status = res.status;
    e.title = "Graph answered the template list in an unexpected shape";
    finish(e);
    return std::nullopt;
  }
  for (auto& t : parsed->templates) {
    partial_.push_back(std::move(t));
  }
  if (parsed->next && ++pages_ < max_pages) {
    return request_for(*parsed->next);  // paging.next is an absolute URL
  }
  list_ = std::move(partial_);
  partial_.clear();
  fetched_at_ = static_cast<std::int64_t>(std::time(nullptr));
  fetched_mono_ = std::chrono::steady_clock::now();
  finish(std::nullopt);
  return std::nullopt;
}

void template_cache::finish(std::optional<domain::graph_error> failure) {
  fetching_ = false;
  last_error_ = failure;
  auto waiting = std::move(waiters_);
  waiters_.clear();
  for (auto& w : waiting) {
    w(failure);
  }
}

void template_cache::invalidate() {
  fetched_at_.reset();
  if (fetching_) {
    // The answers of the running fetch are for the old settings: its waiters get a failure,
    // and its pages are ignored (generation).
    ++generation_;
    domain::graph_error e;
    e.transport = true;
    e.title = "The site's settings changed while its templates were fetched; ask again";
    finish(e);
  }
}

}  // namespace wachat::actors

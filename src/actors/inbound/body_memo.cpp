#include "actors/inbound/body_memo.hpp"

#include <limits>

namespace wachat::actors {

void body_memo::keep(std::int64_t id, std::string body) {
  if (bodies_.size() >= max_rows_ || bytes_ + body.size() > max_bytes_) {
    return;
  }
  auto [it, inserted] = bodies_.try_emplace(id, std::move(body));
  if (inserted) {
    bytes_ += it->second.size();
  }
}

std::vector<std::int64_t> body_memo::held_above(std::int64_t after, std::size_t limit) const {
  std::vector<std::int64_t> out;
  for (auto it = bodies_.upper_bound(after); it != bodies_.end() && out.size() < limit; ++it) {
    out.push_back(it->first);
  }
  return out;
}

std::optional<std::string> body_memo::take(std::int64_t id) {
  auto it = bodies_.find(id);
  if (it == bodies_.end()) {
    return std::nullopt;
  }
  bytes_ -= it->second.size();
  auto body = std::move(it->second);
  bodies_.erase(it);
  return body;
}

void body_memo::erase_range(std::int64_t above, std::int64_t below) {
  auto it = bodies_.upper_bound(above);
  while (it != bodies_.end() && it->first < below) {
    bytes_ -= it->second.size();
    it = bodies_.erase(it);
  }
}

void body_memo::claimed(std::int64_t after, const std::vector<std::int64_t>& ids, std::size_t limit) {
  auto from = after;
  for (auto id : ids) {
    erase_range(from, id);
    from = id;
  }
  // Not full: nothing above `after` was left that it could lock.
  erase_range(from, ids.size() < limit ? std::numeric_limits<std::int64_t>::max() : from);
}

}  // namespace wachat::actors

#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

namespace wachat::infra {

// Requests waiting for an answer from the actors, filed under a ticket: the ticket travels with
// the request (plain data), the waiting entry (its responder) stays here. Whoever takes an entry
// first answers it — the actor's answer or the request's timeout — so a late one finds nothing.
// Sharded: every dashboard call and every send passes through one of these.
template <class Entry>
class ticket_map {
 public:
  std::uint64_t add(Entry e) {
    auto ticket = next_.fetch_add(1, std::memory_order_relaxed);
    auto& s = shards_[ticket % shards_.size()];
    std::lock_guard lock{s.mutex};
    s.waiting.emplace(ticket, std::move(e));
    return ticket;
  }

  // Takes every entry `expired` says is: a periodic sweep over the requests in flight (tens of
  // thousands at most), one shard locked at a time.
  template <class Pred>
  std::vector<Entry> take_if(Pred expired) {
    std::vector<Entry> out;
    for (auto& s : shards_) {
      std::lock_guard lock{s.mutex};
      for (auto it = s.waiting.begin(); it != s.waiting.end();) {
        if (expired(it->second)) {
          out.push_back(std::move(it->second));
          it = s.waiting.erase(it);
        } else {
          ++it;
        }
      }
    }
    return out;
  }

  std::optional<Entry> take(std::uint64_t ticket) {
    auto& s = shards_[ticket % shards_.size()];
    std::lock_guard lock{s.mutex};
    auto it = s.waiting.find(ticket);
    if (it == s.waiting.end()) {
      return std::nullopt;
    }
    auto e = std::move(it->second);
    s.waiting.erase(it);
    return e;
  }

 private:
  struct shard {
    std::mutex mutex;
    std::unordered_map<std::uint64_t, Entry> waiting;
  };
  std::array<shard, 16> shards_;
  std::atomic<std::uint64_t> next_{1};
};

}  // namespace wachat::infra

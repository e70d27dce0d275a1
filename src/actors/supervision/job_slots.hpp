#pragma once
#include <cstddef>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

namespace wachat::actors {

// The queue of a pool whose workers take one job at a time (docs/design.md, Supervision): jobs
// wait in order; each slot holds the job its worker is on; a job whose worker died goes back to
// the front once, and is handed back to be answered as failed when a second worker dies with
// it, rather than take down worker after worker. Plain data: the pool actor owns it.
template <class Job>
class job_slots {
 public:
  void resize(std::size_t slots) { held_.resize(slots); }
  void push(Job job) { queue_.push_back({std::move(job), false}); }
  bool waiting() const { return !queue_.empty(); }

  // Moves the next waiting job into slot `i`; it stays there until finish(i) or died(i).
  Job& take(std::size_t i) {
    held_[i] = std::move(queue_.front());
    queue_.pop_front();
    return held_[i]->job;
  }
  Job* held(std::size_t i) { return held_[i] ? &held_[i]->job : nullptr; }
  void finish(std::size_t i) { held_[i].reset(); }

  // Slot `i`'s worker died: its job goes back to the front of the queue, or, if it had been
  // given back before, is returned to be answered as failed.
  std::optional<Job> died(std::size_t i) {
    auto e = std::move(held_[i]);
    held_[i].reset();
    if (!e) {
      return std::nullopt;
    }
    if (e->given_back) {
      return std::move(e->job);
    }
    e->given_back = true;
    queue_.push_front(std::move(*e));
    return std::nullopt;
  }

 private:
  struct entry {
    Job job;
    bool given_back = false;  // its worker died with it once already
  };
  std::deque<entry> queue_;
  std::vector<std::optional<entry>> held_;
};

}  // namespace wachat::actors

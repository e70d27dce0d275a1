#include "actors/supervision/supervised_workers.hpp"

#include <algorithm>
#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "infra/log.hpp"

namespace wachat::actors {
namespace {

constexpr std::chrono::milliseconds first_backoff{100};
constexpr std::chrono::milliseconds max_backoff{5000};
// A worker that lived this long before it died starts the back-off again from the beginning.
constexpr std::chrono::seconds healthy_after{30};

}  // namespace

supervised_workers::supervised_workers(std::string pool, std::size_t count, spawn_fn spawn,
                                       std::shared_ptr<infra::metrics> metrics)
    : pool_(std::move(pool)),
      spawn_(std::move(spawn)),
      slots_(std::max<std::size_t>(count, 1)),
      metrics_(std::move(metrics)) {
  restarts_ = &metrics_->get_counter(pool_ + "_restarts_total",
                                     "Workers of this pool restarted after they died.");
}

void supervised_workers::start(caf::scheduled_actor* self) {
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    restart(self, i);
  }
}

bool supervised_workers::any_busy() const {
  return std::any_of(slots_.begin(), slots_.end(), [](const slot& s) { return s.busy; });
}

std::uint64_t supervised_workers::take(std::size_t i) {
  slots_[i].busy = true;
  return slots_[i].generation;
}

std::optional<std::size_t> supervised_workers::on_down(caf::scheduled_actor* self, const caf::down_msg& down) {
  auto it = std::find_if(slots_.begin(), slots_.end(),
                         [&](const slot& s) { return s.worker && s.worker.address() == down.source; });
  if (it == slots_.end()) {
    return std::nullopt;
  }
  const auto i = static_cast<std::size_t>(it - slots_.begin());
  auto& s = *it;
  s.up = false;
  s.busy = false;
  ++s.generation;  // whatever answer its last work still brings is stale
  s.worker = nullptr;
  if (stopping_) {
    return std::nullopt;
  }
  const auto lived = clock::now() - s.started;
  s.backoff = lived >= healthy_after ? first_backoff : std::clamp(s.backoff * 2, first_backoff, max_backoff);
  restarts_->fetch_add(1, std::memory_order_relaxed);
  infra::log_warn("worker_died", {{"pool", pool_},
                                  {"slot", std::to_string(i)},
                                  {"reason", to_string(down.reason)},
                                  {"restart_in_ms", std::to_string(s.backoff.count())}});
  // Anonymous and by handle, so that typed pools (whose interface lists restart_atom) can use it.
  caf::delayed_anon_send(caf::actor_cast<caf::actor>(self), s.backoff, restart_atom::value, i);
  return i;
}

void supervised_workers::restart(caf::scheduled_actor* self, std::size_t i) {
  if (stopping_ || i >= slots_.size() || slots_[i].up) {
    return;
  }
  auto& s = slots_[i];
  s.worker = spawn_(i);
  self->monitor(s.worker);
  s.up = true;
  s.busy = false;
  s.started = clock::now();
}

bool supervised_workers::all_down() const {
  return std::none_of(slots_.begin(), slots_.end(), [](const slot& s) { return s.up; });
}

void supervised_workers::stop_all() {
  stopping_ = true;
  for (auto& s : slots_) {
    if (s.worker) {
      caf::anon_send(s.worker, stop_atom::value);
    }
  }
}

}  // namespace wachat::actors

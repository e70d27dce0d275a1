#pragma once
#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "infra/metrics.hpp"

// The one supervision shape of every worker pool (DESIGN.md §2): the pool actor spawns its
// workers, monitors them, and when one dies other than by being told to stop, gives its
// in-flight work back to the pool's queue and restarts it after a back-off (100 ms, doubling to
// 5 s; back to 100 ms once a worker has lived 30 s). Restarts are counted in /metrics as
// `<pool>_restarts_total` and logged at warn. The pool keeps its own queue and hand-out rules;
// this keeps the slots.
namespace wachat::actors {

using restart_atom = caf::atom_constant<caf::atom("restart")>;

class supervised_workers {
 public:
  using clock = std::chrono::steady_clock;
  // Spawns one worker for slot `i`; the pool links nothing, it monitors.
  using spawn_fn = std::function<caf::actor(std::size_t i)>;

  supervised_workers() = default;
  // `pool` names the metric and the log lines (e.g. "wachat_inbound_writer").
  // Holds `metrics`: a pool may still run while main tears down (~actor_system waits for it).
  supervised_workers(std::string pool, std::size_t count, spawn_fn spawn,
                     std::shared_ptr<infra::metrics> metrics);

  // Spawns and monitors every worker. Call once, from the pool actor's behaviour set-up. The
  // pool may be typed: its interface must take `(restart_atom, std::size_t)`.
  void start(caf::scheduled_actor* self);

  std::size_t size() const { return slots_.size(); }
  // Whether slot `i` is up and has no work: the pool may hand it some.
  bool idle(std::size_t i) const { return slots_[i].up && !slots_[i].busy; }
  bool busy(std::size_t i) const { return slots_[i].busy; }
  bool any_busy() const;
  const caf::actor& worker(std::size_t i) const { return slots_[i].worker; }

  // Marks slot `i` busy with work of generation `generation()`; an answer that comes back with
  // another generation belongs to a worker that died meanwhile and must be dropped.
  std::uint64_t take(std::size_t i);
  bool current(std::size_t i, std::uint64_t generation) const { return slots_[i].generation == generation; }
  void release(std::size_t i) { slots_[i].busy = false; }

  // For the pool's down handler: the slot whose worker this was, now down (its work is the
  // pool's to give back), and a restart scheduled as `(restart_atom, slot)` to the pool; nullopt
  // when it is none of ours or the pool is stopping.
  std::optional<std::size_t> on_down(caf::scheduled_actor* self, const caf::down_msg& down);
  // For `(restart_atom, slot)`: spawns and monitors the replacement.
  void restart(caf::scheduled_actor* self, std::size_t i);

  // Tells every worker to stop (stop_atom); their downs are expected from now on.
  void stop_all();
  // No worker is up (after stop_all: every one has stopped).
  bool all_down() const;

 private:
  struct slot {
    caf::actor worker;
    bool up = false;
    bool busy = false;
    std::uint64_t generation = 0;
    std::chrono::milliseconds backoff{0};
    clock::time_point started{};
  };
  std::string pool_;
  spawn_fn spawn_;
  std::vector<slot> slots_;
  std::shared_ptr<infra::metrics> metrics_;
  infra::metrics::counter* restarts_ = nullptr;
  bool stopping_ = false;
};

}  // namespace wachat::actors

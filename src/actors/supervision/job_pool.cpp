#include "actors/supervision/job_pool.hpp"

#include <caf/all.hpp>

#include "actors/supervision/supervised_workers.hpp"

namespace wachat::actors {
namespace {

using clock = std::chrono::steady_clock;

struct pool_state {
  job_pool_settings settings;
  supervised_workers workers;
  // Holding back for higher-priority work: the activity number last seen, when it last moved,
  // when a job was last started, and whether a look again is already scheduled.
  std::uint64_t activity = 0;
  clock::time_point activity_at{};
  clock::time_point started_at{};
  bool recheck_pending = false;
  bool activity_seen = false;
  static inline const char* name = "job_pool";
};

using pool_interface = job_pool_actor::extend<caf::reacts_to<restart_atom, std::size_t>, caf::reacts_to<tick_atom>>;
using pool_actor = pool_interface::stateful_pointer<pool_state>;

void pump_slot(pool_actor self, std::size_t i);

// Whether a job may start now; when not, the pool looks again shortly (and on its tick).
bool may_start(pool_actor self) {
  auto& st = self->state;
  if (!st.settings.activity) {
    return true;
  }
  const auto now = clock::now();
  if (auto a = st.settings.activity(); a != st.activity) {
    // The first look only learns where the number stands.
    st.activity_at = st.activity_seen ? now : clock::time_point{};
    st.activity = a;
  }
  st.activity_seen = true;
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  if (!domain::background_should_yield(duration_cast<milliseconds>(now - st.activity_at),
                                       duration_cast<milliseconds>(now - st.started_at), st.settings.yield)) {
    return true;
  }
  if (!st.recheck_pending) {
    st.recheck_pending = true;
    self->delayed_send(self, std::chrono::milliseconds(50), wake_atom::value);
  }
  return false;
}

// Sets one idle worker looking for a job; false when none is idle or the pool holds back.
bool pump_one(pool_actor self) {
  if (!may_start(self)) {
    return false;
  }
  auto& w = self->state.workers;
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (w.idle(i)) {
      pump_slot(self, i);
      return true;
    }
  }
  return false;
}

void pump_slot(pool_actor self, std::size_t i) {
  auto& w = self->state.workers;
  self->state.started_at = clock::now();
  auto gen = w.take(i);
  auto worker = caf::actor_cast<job_worker_actor>(w.worker(i));
  self->request(worker, caf::infinite, job_pump_atom::value)
      .then(
          [=](bool did_one) {
            if (!self->state.workers.current(i, gen)) {
              return;
            }
            self->state.workers.release(i);
            if (did_one && may_start(self)) {
              // There may be more: this worker goes on, and another one joins.
              pump_slot(self, i);
              pump_one(self);
            }
          },
          [=](caf::error&) {
            if (self->state.workers.current(i, gen)) {
              self->state.workers.release(i);
            }
          });
}

pool_interface::behavior_type pool(pool_actor self, job_pool_settings settings,
                                   std::shared_ptr<infra::metrics> metrics) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.workers = supervised_workers{
      st.settings.metric_name, st.settings.workers,
      [self](std::size_t i) {
        return caf::actor_cast<caf::actor>(self->state.settings.spawn(self->home_system(), i));
      },
      std::move(metrics)};
  st.workers.start(self);
  self->set_down_handler([=](caf::down_msg& down) { self->state.workers.on_down(self, down); });
  self->send(self, tick_atom::value);
  return {
      [=](wake_atom) {
        self->state.recheck_pending = false;
        pump_one(self);
      },
      [=](tick_atom) {
        pump_one(self);
        self->delayed_send(self, self->state.settings.poll, tick_atom::value);
      },
      [=](restart_atom, std::size_t i) {
        self->state.workers.restart(self, i);
        if (self->state.workers.idle(i)) {
          pump_slot(self, i);  // the dead predecessor's job is given back on this first pump
        }
      },
      [=](stop_atom) {
        if (self->state.settings.on_stop) {
          self->state.settings.on_stop();
        }
        self->state.workers.stop_all();
        self->quit();
      },
  };
}

}  // namespace

job_pool_actor spawn_job_pool(caf::actor_system& sys, job_pool_settings settings,
                              std::shared_ptr<infra::metrics> metrics) {
  return caf::actor_cast<job_pool_actor>(sys.spawn(pool, std::move(settings), std::move(metrics)));
}

}  // namespace wachat::actors

#include "actors/api/api_gateway.hpp"

#include <caf/all.hpp>
#include <chrono>
#include <pqxx/pqxx>

#include "actors/api/api_interfaces.hpp"
#include "actors/supervision/stop_and_wait.hpp"
#include "actors/supervision/fault_point.hpp"
#include "actors/supervision/job_slots.hpp"
#include "actors/supervision/supervised_workers.hpp"
#include "infra/log.hpp"

namespace wachat::actors {
namespace {

using clock = std::chrono::steady_clock;

struct worker_state {
  std::string url;
  std::shared_ptr<api_executor> executor;
  std::unique_ptr<pqxx::connection> conn;
  clock::time_point retry_at{};
  static inline const char* name = "db_worker";
};

pqxx::connection_base* connection_of(worker_state& st) {
  if (st.conn && st.conn->is_open()) {
    return st.conn.get();
  }
  if (clock::now() < st.retry_at) {
    return nullptr;
  }
  try {
    st.conn = std::make_unique<pqxx::connection>(st.url);
    pqxx::nontransaction nt{*st.conn};
    nt.exec("SET statement_timeout = '15s'");
    return st.conn.get();
  } catch (const std::exception& e) {
    st.conn.reset();
    st.retry_at = clock::now() + std::chrono::milliseconds(500);
    infra::log_warn("db_worker_unavailable", {{"error", e.what()}});
    return nullptr;
  }
}

// A worker runs one call at a time on its connection and says when it is done.
api_worker_actor::behavior_type db_worker(api_worker_actor::stateful_pointer<worker_state> self, std::string url,
                                      std::shared_ptr<api_executor> executor) {
  self->state.url = std::move(url);
  self->state.executor = std::move(executor);
  return {
      [=](run_atom, const api_call& call) -> done_atom {
        fault_point("db_worker");
        auto* c = connection_of(self->state);
        try {
          self->state.executor->execute(c, call);
        } catch (const pqxx::broken_connection&) {
          // Answered already (503); the next call gets a new connection.
          self->state.conn.reset();
        } catch (const std::exception& e) {
          infra::log_error("api_call_failed", {{"error", e.what()}});
        }
        if (self->state.conn && !self->state.conn->is_open()) {
          self->state.conn.reset();
        }
        return done_atom::value;
      },
      [=](stop_atom) { self->quit(); },
  };
}

struct pool_state {
  supervised_workers workers;
  job_slots<api_call> jobs;
  std::shared_ptr<api_executor> executor;
  bool stopping = false;
  static inline const char* name = "api_gateway";
};

// The pool: its public interface, and its supervisor's restart turns.
using pool_interface = api_gateway_actor::extend<caf::reacts_to<restart_atom, std::size_t>>;
using pool_actor = pool_interface::stateful_base<pool_state>;

// A call a second worker died with is answered as if the database were away (503 to its
// caller). A ticket is answered once, so a call that had answered before its worker died sends
// nothing more.
void worker_died(pool_actor* self, std::size_t i) {
  if (auto call = self->state.jobs.died(i)) {
    infra::log_warn("api_call_dropped", {{"reason", "its worker died twice"}});
    self->state.executor->execute(nullptr, *call);
  }
}

void pump(pool_actor* self) {
  auto& st = self->state;
  for (std::size_t i = 0; i < st.workers.size() && st.jobs.waiting(); ++i) {
    if (!st.workers.idle(i)) {
      continue;
    }
    auto run = st.jobs.take(i);
    const auto generation = st.workers.take(i);
    self->request(st.workers.worker(i), caf::infinite, run_atom::value, std::move(run))
        .then(
            [=](done_atom) {
              if (self->state.workers.current(i, generation)) {
                self->state.jobs.finish(i);
                self->state.workers.release(i);
                pump(self);
              }
            },
            [=](caf::error&) {
              // Workers answer every call: an error is the exit reason of one that died with it.
              if (self->state.workers.current(i, generation)) {
                worker_died(self, i);
                pump(self);
              }
            });
  }
  if (st.stopping && !st.jobs.waiting() && !st.workers.any_busy()) {
    st.workers.stop_all();
    self->quit();
  }
}

pool_interface::behavior_type pool(pool_actor* self, std::string url, unsigned count,
                                   std::shared_ptr<api_executor> executor, std::shared_ptr<infra::metrics> m) {
  auto& st = self->state;
  st.executor = executor;
  // Detached: a call blocks on its worker's connection, never on the scheduler's threads.
  st.workers = supervised_workers{
      "wachat_db_worker", count,
      [self, url, executor](std::size_t) {
        return caf::actor_cast<caf::actor>(self->home_system().spawn<caf::detached>(db_worker, url, executor));
      },
      m};
  st.jobs.resize(st.workers.size());
  st.workers.start(self);
  self->set_down_handler([=](caf::down_msg& down) {
    if (auto i = self->state.workers.on_down(self, down)) {
      worker_died(self, *i);  // if its error answer has not done so already
      pump(self);
    }
  });
  return {
      [=](run_atom, api_call& call) {
        self->state.jobs.push(std::move(call));
        pump(self);
      },
      [=](restart_atom, std::size_t i) {
        self->state.workers.restart(self, i);
        pump(self);
      },
      [=](stop_atom) {
        // Queued calls still run; the pool goes once every worker is done.
        self->state.stopping = true;
        pump(self);
      },
  };
}

}  // namespace

struct api_gateway::impl {
  caf::actor pool;
  caf::actor_system* sys = nullptr;
};

api_gateway::api_gateway(caf::actor_system& sys, std::string database_url, unsigned workers,
                         std::shared_ptr<api_executor> executor, std::shared_ptr<infra::metrics> metrics)
    : impl_(std::make_unique<impl>()) {
  impl_->sys = &sys;
  impl_->pool = caf::actor_cast<caf::actor>(
      sys.spawn(pool, std::move(database_url), workers, std::move(executor), std::move(metrics)));
}

api_gateway::~api_gateway() { shutdown(); }

void api_gateway::submit(api_call call) { caf::anon_send(impl_->pool, run_atom::value, std::move(call)); }

void api_gateway::shutdown() { stop_and_wait(*impl_->sys, impl_->pool); }

}  // namespace wachat::actors

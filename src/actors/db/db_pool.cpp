#include "actors/db/db_pool.hpp"

#include <caf/all.hpp>
#include <chrono>
#include <pqxx/pqxx>

#include "actors/atoms.hpp"
#include "actors/supervision/stop_and_wait.hpp"
#include "actors/supervision/fault_point.hpp"
#include "actors/supervision/job_slots.hpp"
#include "actors/supervision/supervised_workers.hpp"
#include "infra/log.hpp"

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::actors::db_pool::job)

namespace wachat::actors {
namespace {

using run_atom = caf::atom_constant<caf::atom("run")>;
using done_atom = caf::atom_constant<caf::atom("done")>;
using clock = std::chrono::steady_clock;

struct worker_state {
  std::string url;
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

// A worker runs one job at a time on its connection and says when it is done.
using worker_actor =
    caf::typed_actor<caf::replies_to<run_atom, db_pool::job>::with<done_atom>, caf::reacts_to<stop_atom>>;

worker_actor::behavior_type db_worker(worker_actor::stateful_pointer<worker_state> self, std::string url) {
  self->state.url = std::move(url);
  return {
      [=](run_atom, db_pool::job& j) -> done_atom {
        fault_point("db_worker");
        auto* c = connection_of(self->state);
        try {
          j(c);
        } catch (const pqxx::broken_connection&) {
          // The job could not answer; it must have arranged its own timeout reply.
          self->state.conn.reset();
        } catch (const std::exception& e) {
          infra::log_error("db_job_failed", {{"error", e.what()}});
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
  job_slots<db_pool::job> jobs;
  bool stopping = false;
  static inline const char* name = "db_pool";
};

// The pool: takes jobs (`run`), and its supervisor's restart turns.
using pool_interface = caf::typed_actor<caf::reacts_to<run_atom, db_pool::job>,
                                        caf::reacts_to<restart_atom, std::size_t>, caf::reacts_to<stop_atom>>;
using pool_actor = pool_interface::stateful_base<pool_state>;

// A job a second worker died with is answered as if the database were away (job(nullptr): 503
// to its caller). Its responder answers once, so a job that had answered before its worker died
// sends nothing more.
void worker_died(pool_actor* self, std::size_t i) {
  if (auto job = self->state.jobs.died(i)) {
    infra::log_warn("db_job_dropped", {{"reason", "its worker died twice"}});
    (*job)(nullptr);
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
              // Workers answer every job: an error is the exit reason of one that died with it.
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
                                   std::shared_ptr<infra::metrics> m) {
  auto& st = self->state;
  // Detached: a job blocks on its worker's connection, never on the scheduler's threads.
  st.workers = supervised_workers{
      "wachat_db_worker", count,
      [self, url](std::size_t) {
        return caf::actor_cast<caf::actor>(self->home_system().spawn<caf::detached>(db_worker, url));
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
      [=](run_atom, db_pool::job& j) {
        self->state.jobs.push(std::move(j));
        pump(self);
      },
      [=](restart_atom, std::size_t i) {
        self->state.workers.restart(self, i);
        pump(self);
      },
      [=](stop_atom) {
        // Queued jobs still run; the pool goes once every worker is done.
        self->state.stopping = true;
        pump(self);
      },
  };
}

}  // namespace

struct db_pool::impl {
  caf::actor pool;
  caf::actor_system* sys = nullptr;
};

db_pool::db_pool(caf::actor_system& sys, std::string database_url, unsigned workers,
                 std::shared_ptr<infra::metrics> metrics)
    : impl_(std::make_unique<impl>()) {
  impl_->sys = &sys;
  impl_->pool = caf::actor_cast<caf::actor>(sys.spawn(pool, std::move(database_url), workers, std::move(metrics)));
}

db_pool::~db_pool() { shutdown(); }

void db_pool::run(job j) { caf::anon_send(impl_->pool, run_atom::value, std::move(j)); }

void db_pool::shutdown() { stop_and_wait(*impl_->sys, impl_->pool); }

}  // namespace wachat::actors

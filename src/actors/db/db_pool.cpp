#include "actors/db/db_pool.hpp"

#include <caf/all.hpp>
#include <chrono>
#include <pqxx/pqxx>

#include "actors/atoms.hpp"
#include "infra/log.hpp"

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::actors::db_pool::job)

namespace wachat::actors {
namespace {

using run_atom = caf::atom_constant<caf::atom("run")>;
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

caf::behavior db_worker(caf::stateful_actor<worker_state>* self, std::string url) {
  self->state.url = std::move(url);
  return {
      [=](run_atom, db_pool::job& j) {
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
      },
      [=](stop_atom) { self->quit(); },
  };
}

}  // namespace

struct db_pool::impl {
  std::vector<caf::actor> workers;
  std::atomic<std::size_t> next{0};
  caf::actor_system* sys = nullptr;
};

db_pool::db_pool(caf::actor_system& sys, std::string database_url, unsigned workers)
    : impl_(std::make_unique<impl>()) {
  impl_->sys = &sys;
  for (unsigned i = 0; i < workers; ++i) {
    impl_->workers.push_back(sys.spawn<caf::detached>(db_worker, database_url));
  }
}

db_pool::~db_pool() { shutdown(); }

void db_pool::run(job j) {
  auto i = impl_->next.fetch_add(1, std::memory_order_relaxed) % impl_->workers.size();
  caf::anon_send(impl_->workers[i], run_atom::value, std::move(j));
}

void db_pool::shutdown() {
  if (impl_->workers.empty()) {
    return;
  }
  caf::scoped_actor self{*impl_->sys};
  for (auto& w : impl_->workers) {
    self->monitor(w);
    self->send(w, stop_atom::value);
  }
  for (std::size_t i = 0; i < impl_->workers.size(); ++i) {
    self->receive([](const caf::down_msg&) {});
  }
  impl_->workers.clear();
}

}  // namespace wachat::actors

#include "actors/inbox_dispatcher.hpp"

#include <caf/all.hpp>
#include <chrono>
#include <pqxx/pqxx>

#include "actors/atoms.hpp"
#include "infra/inbox_processor.hpp"
#include "infra/log.hpp"

namespace wachat::actors {
namespace {

using wake_atom = caf::atom_constant<caf::atom("wake")>;
using route_atom = caf::atom_constant<caf::atom("route")>;
using work_atom = caf::atom_constant<caf::atom("work")>;

constexpr std::size_t batch_size = 500;

struct dispatcher_state {
  std::string url;
  std::unique_ptr<pqxx::connection> conn;
  bool work_queued = false;
  bool started = false;
  infra::metrics::counter* processed = nullptr;
  infra::metrics::counter* messages = nullptr;
  infra::metrics::counter* statuses = nullptr;
  infra::metrics::counter* failures = nullptr;
  infra::metrics::gauge* lag = nullptr;
  static inline const char* name = "inbox_dispatcher";
};

pqxx::connection* connect(dispatcher_state& st) {
  if (st.conn && st.conn->is_open()) {
    return st.conn.get();
  }
  try {
    st.conn = std::make_unique<pqxx::connection>(st.url);
    if (!st.started) {
      infra::inbox_processor p{*st.conn};
      auto n = p.requeue_failed(5);
      if (n > 0) {
        infra::log_info("inbox_retry_failed", {{"rows", std::to_string(n)}});
      }
      st.started = true;
    }
    return st.conn.get();
  } catch (const std::exception& e) {
    st.conn.reset();
    infra::log_warn("inbox_db_unavailable", {{"error", e.what()}});
    return nullptr;
  }
}

// One batch; true when there may be more.
bool run_batch(dispatcher_state& st) {
  auto* c = connect(st);
  if (c == nullptr) {
    return false;
  }
  try {
    infra::inbox_processor p{*c};
    auto r = p.process_pending(batch_size);
    st.processed->fetch_add(r.events, std::memory_order_relaxed);
    st.messages->fetch_add(r.messages, std::memory_order_relaxed);
    st.statuses->fetch_add(r.statuses, std::memory_order_relaxed);
    st.failures->fetch_add(r.failed, std::memory_order_relaxed);
    if (r.events < batch_size) {
      pqxx::nontransaction nt{*c};
      auto lag = nt.exec(
          "SELECT coalesce(extract(epoch from now() - min(received_at)) * 1000, 0)::bigint"
          " FROM wa_webhook_events WHERE status = 'pending'");
      st.lag->store(lag[0][0].as<std::int64_t>());
    }
    return r.events == batch_size;
  } catch (const pqxx::broken_connection& e) {
    st.conn.reset();
    infra::log_warn("inbox_db_lost", {{"error", e.what()}});
  } catch (const std::exception& e) {
    // Deadlock with another process, serialization failure: the rows stay pending; retry soon.
    infra::log_warn("inbox_batch_failed", {{"error", e.what()}});
  }
  return false;
}

caf::behavior dispatcher(caf::stateful_actor<dispatcher_state>* self, std::string url,
                         std::shared_ptr<infra::metrics> m) {
  auto& st = self->state;
  st.url = std::move(url);
  st.processed = &m->get_counter("wachat_inbox_events_processed_total", "Inbox rows handled.");
  st.messages = &m->get_counter("wachat_inbound_messages_total", "New inbound messages stored.");
  st.statuses = &m->get_counter("wachat_statuses_total", "New message statuses recorded.");
  st.failures = &m->get_counter("wachat_inbox_events_failed_total", "Inbox rows that failed.");
  st.lag = &m->get_gauge("wachat_inbox_lag_ms", "Age of the oldest pending inbox row, ms.");
  auto queue_work = [self] {
    if (!self->state.work_queued) {
      self->state.work_queued = true;
      self->send(self, work_atom::value);
    }
  };
  queue_work();
  return {
      [=](wake_atom) { queue_work(); },
      [=](route_atom) {
        if (auto* c = connect(self->state)) {
          try {
            infra::inbox_processor p{*c};
            p.requeue_routable();
          } catch (const std::exception& e) {
            infra::log_warn("inbox_requeue_failed", {{"error", e.what()}});
          }
        }
        queue_work();
      },
      [=](work_atom) {
        self->state.work_queued = false;
        // Wakes that arrived meanwhile are already in the mailbox behind us; one batch per
        // turn keeps the actor responsive to shutdown.
        if (run_batch(self->state)) {
          queue_work();
        }
      },
      [=](stop_atom) { self->quit(); },
      // Idle for a second: look for rows another process committed and rows now routable.
      caf::after(std::chrono::seconds(1)) >> [=] { self->send(self, route_atom::value); },
  };
}

}  // namespace

struct inbox_dispatcher::impl {
  caf::actor actor;
  caf::actor_system* sys = nullptr;
};

inbox_dispatcher::inbox_dispatcher(caf::actor_system& sys, std::string database_url,
                                   std::shared_ptr<infra::metrics> metrics)
    : impl_(std::make_unique<impl>()) {
  impl_->sys = &sys;
  impl_->actor = sys.spawn<caf::detached>(dispatcher, std::move(database_url), std::move(metrics));
}

inbox_dispatcher::~inbox_dispatcher() { shutdown(); }

void inbox_dispatcher::wake() { caf::anon_send(impl_->actor, wake_atom::value); }
void inbox_dispatcher::wake_routing() { caf::anon_send(impl_->actor, route_atom::value); }

void inbox_dispatcher::shutdown() {
  if (!impl_->actor) {
    return;
  }
  caf::scoped_actor self{*impl_->sys};
  self->monitor(impl_->actor);
  self->send(impl_->actor, stop_atom::value);
  self->receive([](const caf::down_msg&) {});
  impl_->actor = nullptr;
}

}  // namespace wachat::actors

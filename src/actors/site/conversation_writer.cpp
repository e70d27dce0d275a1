#include "actors/site/conversation_writer.hpp"

#include <caf/all.hpp>
#include <pqxx/pqxx>

#include "actors/supervision/fault_point.hpp"
#include "actors/supervision/job_slots.hpp"
#include "actors/supervision/supervised_workers.hpp"
#include "infra/chat_views.hpp"
#include "infra/conversation_writes.hpp"
#include "infra/log.hpp"

namespace wachat::actors {
namespace {

struct worker_state {
  std::string url;
  std::unique_ptr<pqxx::connection> conn;
  static inline const char* name = "conversation_writer_worker";
};

// A worker has the pool's own interface: it writes one change at a time.
conversation_writer_actor::behavior_type worker(conversation_writer_actor::stateful_pointer<worker_state> self,
                                                std::string url) {
  self->state.url = std::move(url);
  return {
      [=](write_atom, const infra::conversation_change& change) -> conversation_reply {
        fault_point("conversation_writer");
        auto& st = self->state;
        conversation_reply r;
        try {
          if (!st.conn || !st.conn->is_open()) {
            st.conn.reset();
            st.conn = std::make_unique<pqxx::connection>(st.url);
          }
          r.result = infra::apply_conversation_change(*st.conn, change);
          if (r.result == infra::conversation_write::done) {
            // The answer is the conversation as stored now, so the caller needs no second read.
            pqxx::nontransaction nt{*st.conn};
            if (auto view = infra::load_conversation(nt, change.conversation_id, std::nullopt)) {
              r.conversation = infra::dump(*view);
            }
            if (change.mark_read) {
              r.newest_inbound_wamid = infra::newest_inbound_wamid(nt, change.conversation_id).value_or("");
            }
          }
        } catch (const std::exception& e) {
          if (st.conn && !st.conn->is_open()) {
            st.conn.reset();
          }
          infra::log_warn("conversation_write_failed",
                          {{"conversation_id", std::to_string(change.conversation_id)}, {"error", e.what()}});
          r.failed = true;
          r.error = e.what();
        }
        return r;
      },
      [=](stop_atom) { self->quit(); },
  };
}

struct queued_change {
  infra::conversation_change change;
  caf::typed_response_promise<conversation_reply> answer;
};

struct pool_state {
  supervised_workers workers;
  job_slots<queued_change> jobs;
  bool stopping = false;
  static inline const char* name = "conversation_writer";
};

// The pool: the public interface, plus its supervisor's restart turns.
using pool_interface = conversation_writer_actor::extend<caf::reacts_to<restart_atom, std::size_t>>;
using pool_actor = pool_interface::stateful_base<pool_state>;

void worker_died(pool_actor* self, std::size_t i) {
  if (auto job = self->state.jobs.died(i)) {
    conversation_reply r;
    r.failed = true;
    r.error = "its worker died twice";
    job->answer.deliver(std::move(r));
  }
}

void pump(pool_actor* self) {
  auto& st = self->state;
  for (std::size_t i = 0; i < st.workers.size() && st.jobs.waiting(); ++i) {
    if (!st.workers.idle(i)) {
      continue;
    }
    auto change = st.jobs.take(i).change;
    const auto generation = st.workers.take(i);
    self->request(st.workers.worker(i), caf::infinite, write_atom::value, std::move(change))
        .then(
            [=](conversation_reply& r) {
              auto& s = self->state;
              if (s.workers.current(i, generation)) {
                if (auto* job = s.jobs.held(i)) {
                  job->answer.deliver(std::move(r));
                }
                s.jobs.finish(i);
                s.workers.release(i);
                pump(self);
              }
            },
            [=](caf::error&) {
              // Workers answer every change: an error is the exit reason of one that died.
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
  st.workers = supervised_workers{
      "wachat_conversation_writer", count,
      [self, url](std::size_t) {
        return caf::actor_cast<caf::actor>(self->home_system().spawn<caf::detached>(worker, url));
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
      [=](write_atom, infra::conversation_change& change) -> caf::result<conversation_reply> {
        auto rp = self->make_response_promise<conversation_reply>();
        self->state.jobs.push({std::move(change), rp});
        pump(self);
        return rp;
      },
      [=](restart_atom, std::size_t i) {
        self->state.workers.restart(self, i);
        pump(self);
      },
      [=](stop_atom) {
        // Queued changes are still written; the pool goes once every worker is done.
        self->state.stopping = true;
        pump(self);
      },
  };
}

}  // namespace

conversation_writer_actor spawn_conversation_writer(caf::actor_system& sys, const std::string& url,
                                                    unsigned count, std::shared_ptr<infra::metrics> metrics) {
  return caf::actor_cast<conversation_writer_actor>(sys.spawn(pool, url, count, std::move(metrics)));
}

}  // namespace wachat::actors

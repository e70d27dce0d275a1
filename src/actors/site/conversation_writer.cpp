#include "actors/site/conversation_writer.hpp"

#include <caf/all.hpp>
#include <deque>
#include <optional>
#include <pqxx/pqxx>

#include "actors/supervision/fault_point.hpp"
#include "actors/supervision/supervised_workers.hpp"
#include "infra/conversation_writes.hpp"
#include "infra/log.hpp"

namespace wachat::actors {
namespace {

struct worker_state {
  std::string url;
  std::unique_ptr<pqxx::connection> conn;
  static inline const char* name = "conversation_writer_worker";
};

caf::behavior worker(caf::stateful_actor<worker_state>* self, std::string url) {
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
  bool given_back = false;  // its worker died with it once already
};

struct pool_state {
  supervised_workers workers;
  std::deque<queued_change> queue;
  std::vector<std::optional<queued_change>> in_flight;
  bool stopping = false;
  static inline const char* name = "conversation_writer";
};

using pool_actor = caf::stateful_actor<pool_state>;

void give_back(pool_actor* self, std::size_t i) {
  auto& st = self->state;
  auto job = std::move(st.in_flight[i]);
  st.in_flight[i].reset();
  if (!job) {
    return;
  }
  if (job->given_back) {
    conversation_reply r;
    r.failed = true;
    r.error = "its worker died twice";
    job->answer.deliver(std::move(r));
    return;
  }
  job->given_back = true;
  st.queue.push_front(std::move(*job));
}

void pump(pool_actor* self) {
  auto& st = self->state;
  for (std::size_t i = 0; i < st.workers.size() && !st.queue.empty(); ++i) {
    if (!st.workers.idle(i)) {
      continue;
    }
    auto job = std::move(st.queue.front());
    st.queue.pop_front();
    const auto generation = st.workers.take(i);
    auto change = job.change;
    st.in_flight[i] = std::move(job);
    self->request(st.workers.worker(i), caf::infinite, write_atom::value, std::move(change))
        .then(
            [=](conversation_reply& r) {
              auto& s = self->state;
              if (s.workers.current(i, generation) && s.in_flight[i]) {
                s.in_flight[i]->answer.deliver(std::move(r));
                s.in_flight[i].reset();
                s.workers.release(i);
                pump(self);
              }
            },
            [=](caf::error&) {
              // Workers answer every change: an error is the exit reason of one that died.
              if (self->state.workers.current(i, generation)) {
                give_back(self, i);
                pump(self);
              }
            });
  }
  if (st.stopping && st.queue.empty() && !st.workers.any_busy()) {
    st.workers.stop_all(self);
    self->quit();
  }
}

caf::behavior pool(pool_actor* self, std::string url, unsigned count, std::shared_ptr<infra::metrics> m) {
  auto& st = self->state;
  st.workers = supervised_workers{
      "wachat_conversation_writer", count,
      [self, url](std::size_t) { return self->home_system().spawn<caf::detached>(worker, url); }, m};
  st.in_flight.resize(st.workers.size());
  st.workers.start(self);
  self->set_down_handler([=](caf::down_msg& down) {
    if (auto i = self->state.workers.on_down(self, down)) {
      give_back(self, *i);  // if its error answer has not done so already
      pump(self);
    }
  });
  return {
      [=](write_atom, infra::conversation_change& change) -> caf::result<conversation_reply> {
        auto rp = self->make_response_promise<conversation_reply>();
        self->state.queue.push_back({std::move(change), rp, false});
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

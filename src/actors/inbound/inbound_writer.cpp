#include "actors/inbound/inbound_writer.hpp"

#include <algorithm>
#include <caf/all.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <pqxx/pqxx>

#include "actors/atoms.hpp"
#include "actors/inbound/inbound_messages.hpp"
#include "actors/supervision/fault_point.hpp"
#include "actors/supervision/supervised_workers.hpp"
#include "infra/cached_statement.hpp"
#include "infra/inbound_batch.hpp"
#include "infra/inbound_store.hpp"
#include "infra/log.hpp"

namespace wachat::actors {
namespace {
struct write_batch;
struct batch_outcomes;
}  // namespace
}  // namespace wachat::actors

// Local messages only: never serialized.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::actors::write_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::actors::batch_outcomes)

namespace wachat::actors {
namespace {

constexpr std::size_t max_batch = 1000;
// A batch goes to PostgreSQL as one JSON parameter per statement, and a text value is limited
// to 1 GB: signed webhooks of a few MiB each must not add up to that. Well below it, a batch is
// flushed early.
constexpr std::size_t max_batch_bytes = 64 * 1024 * 1024;
// When the first worker is busy, the next one takes the queue only once it is this long or its
// oldest unit has waited this long.
constexpr std::size_t spill_units = 64;
constexpr auto spill_after = std::chrono::milliseconds(5);

using clock = std::chrono::steady_clock;
using pump_atom = caf::atom_constant<caf::atom("pump")>;
using spill_atom = caf::atom_constant<caf::atom("spill")>;

struct pending_write {
  unit_job job;
  caf::typed_response_promise<domain::unit_outcome> promise;
};

// A batch on its way to a worker, and the worker's answer, one outcome per unit in order.
struct write_batch {
  std::shared_ptr<const std::vector<pending_write>> units;
};
struct batch_outcomes {
  std::vector<domain::unit_outcome> outcomes;
};

// Serialization failures, deadlocks, lost connections, shutdowns: trying again later can work.
// 25P02 ("current transaction is aborted") is what a savepoint-less statement reports after
// one of those broke the transaction, so it is passing too.
bool passing(const pqxx::sql_error& e) {
  auto state = e.sqlstate();
  return state.rfind("40", 0) == 0 || state.rfind("08", 0) == 0 || state.rfind("53", 0) == 0 ||
         state.rfind("57", 0) == 0 || state == "25P02";
}

domain::unit_outcome failure(bool retryable, std::string why) {
  domain::unit_outcome o;
  o.retryable = retryable;
  o.error = std::move(why);
  return o;
}

infra::batch_unit batch_unit_of(const unit_job& job) {
  return {&job.site, job.event_id, job.unit.get(), job.window_expiry, job.closes_window};
}

// The whole batch in one transaction, set-based (infra::store_units); throws on any error.
std::vector<domain::unit_outcome> store_together(pqxx::connection& c,
                                                 const std::vector<pending_write>& batch) {
  std::vector<infra::batch_unit> units;
  units.reserve(batch.size());
  for (const auto& w : batch) {
    units.push_back(batch_unit_of(w.job));
  }
  std::vector<infra::pending_event> events;
  pqxx::work tx{c};
  auto outcomes = infra::store_units(tx, units, events);
  infra::append_events(tx, events);
  tx.commit();
  return outcomes;
}

// Each unit in its own savepoint, so that one bad unit is reported alone and the rest stored.
std::vector<domain::unit_outcome> store_one_by_one(pqxx::connection& c,
                                                   const std::vector<pending_write>& batch) {
  std::vector<domain::unit_outcome> outcomes;
  std::vector<infra::pending_event> events;
  pqxx::work tx{c};
  for (const auto& w : batch) {
    const auto& job = w.job;
    auto events_before = events.size();
    try {
      pqxx::subtransaction sub{tx, "unit"};
      const std::vector<infra::batch_unit> one{batch_unit_of(job)};
      outcomes.push_back(infra::store_units(sub, one, events).front());
      sub.commit();
    } catch (const pqxx::broken_connection&) {
      throw;
    } catch (const pqxx::sql_error& e) {
      events.resize(events_before);
      outcomes.push_back(failure(passing(e), e.what()));
    } catch (const std::exception& e) {
      events.resize(events_before);
      outcomes.push_back(failure(false, e.what()));
    }
  }
  infra::append_events(tx, events);
  tx.commit();
  return outcomes;
}

std::vector<domain::unit_outcome> store_batch(pqxx::connection& c,
                                              const std::vector<pending_write>& batch) {
  // Another process storing the same customers can still deadlock with us in rare orders
  // (a renamed visitor); PostgreSQL then aborts one side, which simply goes again.
  for (int attempt = 1;; ++attempt) {
    try {
      return store_together(c, batch);
    } catch (const pqxx::broken_connection&) {
      throw;
    } catch (const pqxx::sql_error& e) {
      if (!passing(e) || attempt == 3) {
        infra::log_info("inbound_batch_split", {{"units", std::to_string(batch.size())},
                                                {"error", e.what()}});
        break;
      }
    } catch (const std::exception& e) {
      infra::log_info("inbound_batch_split",
                      {{"units", std::to_string(batch.size())}, {"error", e.what()}});
      break;
    }
  }
  // One unit spoiled the batch (the transaction is rolled back): again, each unit alone.
  return store_one_by_one(c, batch);
}

// A worker: one connection, one batch at a time.
struct worker_state {
  std::string url;
  std::unique_ptr<pqxx::connection> conn;
  static inline const char* name = "inbound_writer";
};

batch_outcomes store_on(worker_state& st, const std::vector<pending_write>& batch) {
  try {
    if (!st.conn || !st.conn->is_open()) {
      st.conn = infra::connect_for_probes(st.url);
    }
    return {store_batch(*st.conn, batch)};
  } catch (const std::exception& e) {
    // The database went away (or would not commit): nothing of this batch is known to be
    // stored, so every unit is retried later.
    if (!st.conn || !st.conn->is_open() || dynamic_cast<const pqxx::broken_connection*>(&e)) {
      st.conn.reset();
    }
    infra::log_warn("inbound_write_failed", {{"units", std::to_string(batch.size())}, {"error", e.what()}});
    return {std::vector<domain::unit_outcome>(batch.size(), failure(true, e.what()))};
  }
}

// A worker stores one batch at a time, answering an outcome per unit in order.
using worker_actor = caf::typed_actor<caf::replies_to<write_atom, write_batch>::with<batch_outcomes>,
                                      caf::reacts_to<stop_atom>>;

worker_actor::behavior_type worker(worker_actor::stateful_pointer<worker_state> self, std::string url) {
  self->state.url = std::move(url);
  return {
      [=](write_atom, const write_batch& b) -> batch_outcomes {
        fault_point("inbound_writer");
        return store_on(self->state, *b.units);
      },
      [=](stop_atom) { self->quit(); },
  };
}

struct queued_write {
  pending_write write;
  clock::time_point arrived;
  std::size_t bytes = 0;
  bool given_back = false;  // a worker died with it once already
};

struct pool_state {
  infra::metrics::counter* batches = nullptr;
  infra::metrics::counter* units = nullptr;
  infra::metrics::counter* spills = nullptr;
  supervised_workers workers;
  // The batch each worker holds: given back to the queue if the worker dies with it.
  std::vector<std::shared_ptr<std::vector<queued_write>>> in_flight;
  std::deque<queued_write> queue;
  bool pump_queued = false;
  bool spill_timer = false;
  bool stopping = false;
  static inline const char* name = "inbound_writer_pool";
};

// The pool: the public interface, plus its own pump, spill and restart turns.
using pool_interface = inbound_writer_actor::extend<caf::reacts_to<pump_atom>, caf::reacts_to<spill_atom>,
                                                    caf::reacts_to<restart_atom, std::size_t>>;
using pool_actor = pool_interface::stateful_base<pool_state>;

void pump(pool_actor* self);
void queue_pump(pool_actor* self);

// The units worker `i` held go back to the front of the queue, in order: the replacement, or
// another worker, stores them, and every unit is answered once. A unit whose worker died with it
// before is answered instead, as a passing failure (its inbox row is tried again later), so that
// a unit that kills workers cannot kill them for ever nor hold its conversation.
void give_back(pool_actor* self, std::size_t i) {
  auto& st = self->state;
  if (auto held = std::move(st.in_flight[i])) {
    std::size_t back = 0;
    for (auto it = held->rbegin(); it != held->rend(); ++it) {
      if (it->given_back) {
        auto promise = it->write.promise;
        promise.deliver(failure(true, "its writer died twice while storing it"));
        continue;
      }
      it->given_back = true;
      st.queue.push_front(std::move(*it));
      ++back;
    }
    infra::log_warn("inbound_batch_given_back",
                    {{"units", std::to_string(back)}, {"answered", std::to_string(held->size() - back)}});
  }
  queue_pump(self);
}

void batch_done(pool_actor* self, std::size_t worker, const std::vector<queued_write>& batch,
                std::vector<domain::unit_outcome> outcomes) {
  outcomes.resize(batch.size(), failure(true, "the writer gave no answer for this unit"));
  for (std::size_t i = 0; i < batch.size(); ++i) {
    auto promise = batch[i].write.promise;
    promise.deliver(std::move(outcomes[i]));
  }
  self->state.in_flight[worker].reset();
  self->state.workers.release(worker);
  pump(self);
}

// Hands the queue to idle workers. The first worker takes whatever waits whenever it is idle;
// a further one only when all before it are busy and the queue is long or has waited a while.
// At moderate rates one worker then commits everything in growing batches (two workers halved
// the batches and cost PostgreSQL more per message), while a backlog, or a commit that hangs,
// still brings in the others.
void pump(pool_actor* self) {
  auto& st = self->state;
  st.pump_queued = false;
  while (!st.queue.empty()) {
    std::size_t i = 0;
    while (i < st.workers.size() && !st.workers.idle(i)) {
      ++i;
    }
    if (i == st.workers.size()) {
      break;  // the next batch goes when a worker is done (or back)
    }
    const auto waited = clock::now() - st.queue.front().arrived;
    if (i > 0 && !st.stopping && st.queue.size() < spill_units && waited < spill_after) {
      if (!st.spill_timer) {
        st.spill_timer = true;
        self->delayed_send(self, spill_after - waited, spill_atom::value);
      }
      break;
    }
    auto held = std::make_shared<std::vector<queued_write>>();
    auto batch = std::make_shared<std::vector<pending_write>>();
    std::size_t bytes = 0;
    while (!st.queue.empty() && batch->size() < max_batch && bytes < max_batch_bytes) {
      bytes += st.queue.front().bytes;
      batch->push_back(st.queue.front().write);
      held->push_back(std::move(st.queue.front()));
      st.queue.pop_front();
    }
    const auto generation = st.workers.take(i);
    st.in_flight[i] = held;
    st.batches->fetch_add(1, std::memory_order_relaxed);
    st.units->fetch_add(batch->size(), std::memory_order_relaxed);
    st.spills->fetch_add(i > 0 ? 1 : 0, std::memory_order_relaxed);
    self->request(st.workers.worker(i), caf::infinite, write_atom::value, write_batch{batch})
        .then(
            [=](batch_outcomes& r) {
              if (self->state.workers.current(i, generation)) {
                batch_done(self, i, *held, std::move(r.outcomes));
              }
            },
            [=](caf::error&) {
              // A worker answers every batch, so an error means it died with this one (CAF
              // answers the request with the worker's exit reason just before the pool hears of
              // its death). The batch goes back to the front of the queue for the replacement or
              // another worker; the slot stays taken until the down handler frees it.
              if (self->state.workers.current(i, generation)) {
                give_back(self, i);
              }
            });
  }
  if (st.stopping && st.queue.empty() && !st.workers.any_busy()) {
    st.workers.stop_all();
    self->quit();
  }
}

void queue_pump(pool_actor* self) {
  if (!self->state.pump_queued) {
    // Behind the requests already in the mailbox: they join the same batch.
    self->state.pump_queued = true;
    self->send(self, pump_atom::value);
  }
}

pool_interface::behavior_type pool(pool_actor* self, std::string url, unsigned count,
                                   std::shared_ptr<infra::metrics> m) {
  auto& st = self->state;
  st.batches = &m->get_counter("wachat_inbound_batches_total",
                               "Inbound writer transactions (batches of units).");
  st.units = &m->get_counter("wachat_inbound_batch_units_total",
                             "Units handed to inbound writer transactions.");
  st.spills = &m->get_counter("wachat_inbound_spills_total",
                              "Batches a further inbound writer took while the first was busy.");
  // Detached: each worker blocks on its own connection and thread, never on the scheduler's.
  st.workers = supervised_workers{
      "wachat_inbound_writer", count,
      [self, url](std::size_t) {
        return caf::actor_cast<caf::actor>(self->home_system().spawn<caf::detached>(worker, url));
      },
      m};
  st.in_flight.resize(st.workers.size());
  st.workers.start(self);
  self->set_down_handler([=](caf::down_msg& down) {
    auto& s = self->state;
    if (auto i = s.workers.on_down(self, down)) {
      give_back(self, *i);  // if its error answer has not done so already
    }
  });
  return {
      [=](write_atom, unit_job& job) -> caf::result<domain::unit_outcome> {
        auto& st = self->state;
        auto rp = self->make_response_promise<domain::unit_outcome>();
        const auto& u = *job.unit;
        const auto bytes = u.message.content.size() + u.message.referral_json.size() +
                           u.profile_name.size() + 256;
        st.queue.push_back({{std::move(job), rp}, clock::now(), bytes});
        queue_pump(self);
        return rp;
      },
      [=](pump_atom) { pump(self); },
      [=](spill_atom) {
        self->state.spill_timer = false;
        pump(self);
      },
      [=](restart_atom, std::size_t i) {
        self->state.workers.restart(self, i);
        pump(self);
      },
      [=](stop_atom) {
        // What is queued is still stored; the pool goes once every worker is done.
        self->state.stopping = true;
        pump(self);
      },
  };
}

}  // namespace

inbound_writer_actor spawn_inbound_writer_pool(caf::actor_system& sys, const std::string& url,
                                               unsigned count, std::shared_ptr<infra::metrics> metrics) {
  // Its own pump, spill and restart tags stay off the interface: the handle others get is typed.
  return caf::actor_cast<inbound_writer_actor>(sys.spawn(pool, url, count, std::move(metrics)));
}

}  // namespace wachat::actors

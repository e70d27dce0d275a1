#include "actors/inbound_writer.hpp"

#include <caf/all.hpp>
#include <pqxx/pqxx>

#include "actors/atoms.hpp"
#include "actors/inbound_messages.hpp"
#include "infra/cached_statement.hpp"
#include "infra/inbound_batch.hpp"
#include "infra/inbound_store.hpp"
#include "infra/log.hpp"

namespace wachat::actors {
namespace {

constexpr std::size_t max_batch = 1000;
// A batch goes to PostgreSQL as one JSON parameter per statement, and a text value is limited
// to 1 GB: signed webhooks of a few MiB each must not add up to that. Well below it, a batch is
// flushed early.
constexpr std::size_t max_batch_bytes = 64 * 1024 * 1024;

struct pending_write {
  unit_job job;
  caf::typed_response_promise<domain::unit_outcome> promise;
};

struct writer_state {
  std::string url;
  std::unique_ptr<pqxx::connection> conn;
  std::vector<pending_write> batch;
  std::size_t batch_bytes = 0;  // the text the batch carries, roughly
  bool flush_queued = false;
  static inline const char* name = "inbound_writer";
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

// The whole batch in one transaction, set-based (infra::store_units); throws on any error.
std::vector<domain::unit_outcome> store_together(pqxx::connection& c,
                                                 const std::vector<pending_write>& batch) {
  std::vector<infra::batch_unit> units;
  units.reserve(batch.size());
  for (const auto& w : batch) {
    units.push_back({&w.job.site, w.job.event_id, w.job.unit.get()});
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
      outcomes.push_back(infra::store_unit(sub, job.site, job.event_id, *job.unit, events));
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

void flush(writer_state& st) {
  st.flush_queued = false;
  if (st.batch.empty()) {
    return;
  }
  auto batch = std::move(st.batch);
  st.batch.clear();
  st.batch_bytes = 0;
  std::vector<domain::unit_outcome> outcomes;
  try {
    if (!st.conn || !st.conn->is_open()) {
      st.conn = infra::connect_for_probes(st.url);
    }
    outcomes = store_batch(*st.conn, batch);
  } catch (const std::exception& e) {
    // The database went away (or would not commit): nothing of this batch is known to be
    // stored, so every unit is retried later.
    if (!st.conn || !st.conn->is_open() || dynamic_cast<const pqxx::broken_connection*>(&e)) {
      st.conn.reset();
    }
    infra::log_warn("inbound_write_failed", {{"units", std::to_string(batch.size())}, {"error", e.what()}});
    outcomes.assign(batch.size(), failure(true, e.what()));
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    batch[i].promise.deliver(std::move(outcomes[i]));
  }
}

caf::behavior writer(caf::stateful_actor<writer_state>* self, std::string url) {
  self->state.url = std::move(url);
  return {
      [=](write_atom, unit_job& job) -> caf::result<domain::unit_outcome> {
        auto& st = self->state;
        auto rp = self->make_response_promise<domain::unit_outcome>();
        const auto& u = *job.unit;
        st.batch_bytes += u.message.content.size() + u.message.referral_json.size() +
                          u.profile_name.size() + 256;
        st.batch.push_back({std::move(job), rp});
        if (st.batch.size() >= max_batch || st.batch_bytes >= max_batch_bytes) {
          flush(st);
        } else if (!st.flush_queued) {
          // Behind the requests already in the mailbox: they join this batch.
          st.flush_queued = true;
          self->send(self, flush_atom::value);
        }
        return rp;
      },
      [=](flush_atom) { flush(self->state); },
      [=](stop_atom) {
        flush(self->state);
        self->quit();
      },
  };
}

}  // namespace

std::vector<caf::actor> spawn_inbound_writers(caf::actor_system& sys, const std::string& url,
                                              unsigned count) {
  std::vector<caf::actor> out;
  for (unsigned i = 0; i < count; ++i) {
    out.push_back(sys.spawn<caf::detached>(writer, url));
  }
  return out;
}

}  // namespace wachat::actors

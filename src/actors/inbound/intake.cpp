#include "actors/inbound/intake.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <caf/all.hpp>
#include <fmt/format.h>
#include <chrono>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <shared_mutex>
#include <unordered_set>

#include "actors/atoms.hpp"
#include "actors/inbound/inbound_interfaces.hpp"
#include "actors/supervision/stop_and_wait.hpp"
#include "actors/supervision/fault_point.hpp"
#include "actors/supervision/supervised_workers.hpp"
#include "infra/log.hpp"

namespace wachat::actors {
namespace {

using clock = std::chrono::steady_clock;

// A writer: takes items (`commit`), commits them in groups (`flush`, which it sends itself).
using writer_interface = intake_writer_actor::extend<caf::reacts_to<flush_atom>>;

// The writers' handles and the tickets each holds, read by the HTTP threads on every submit and
// changed by the supervisor when a writer dies or is restarted.
struct writer_table {
  std::shared_mutex mutex;  // guards `writers`
  std::vector<intake_writer_actor> writers;
  struct slot_tickets {
    std::mutex mutex;
    std::unordered_set<std::uint64_t> open;  // handed to this slot's writer, not settled yet
    std::atomic<std::size_t> count{0};       // open.size(), read without the lock
  };
  std::unique_ptr<slot_tickets[]> slots;
  std::shared_ptr<intake_listener> listener;

  void hold(std::size_t slot, std::uint64_t ticket) {
    auto& s = slots[slot];
    std::lock_guard lock{s.mutex};
    s.open.insert(ticket);
    s.count.store(s.open.size(), std::memory_order_relaxed);
  }
  // Settles a ticket once: a ticket already settled (its writer was given up) is left alone.
  void settle(std::size_t slot, std::uint64_t ticket, intake_outcome o) {
    auto& s = slots[slot];
    {
      std::lock_guard lock{s.mutex};
      if (s.open.erase(ticket) == 0) {
        return;
      }
      s.count.store(s.open.size(), std::memory_order_relaxed);
    }
    listener->settled(ticket, o);
  }
  // The slot's writer is gone: every ticket it held is settled as not stored (503, Meta
  // delivers again), whether it sat in the writer's batch or in its mailbox.
  void abandon(std::size_t slot) {
    std::unordered_set<std::uint64_t> lost;
    {
      auto& s = slots[slot];
      std::lock_guard lock{s.mutex};
      lost.swap(s.open);
      s.count.store(0, std::memory_order_relaxed);
    }
    for (auto t : lost) {
      listener->settled(t, intake_outcome{false, 0});
    }
  }
};

struct writer_state {
  intake_settings settings;
  std::shared_ptr<writer_table> table;
  std::size_t slot = 0;
  std::unique_ptr<pqxx::connection> conn;
  std::vector<intake_item> batch;
  bool flush_queued = false;
  // Reconnect back-off after the database went away: callers get 503 at once meanwhile.
  clock::time_point next_connect_attempt{};
  std::chrono::milliseconds backoff{0};
  std::vector<bool> prepared;  // prepared[n]: statement for a batch of n rows exists
  infra::metrics::counter* committed = nullptr;
  infra::metrics::counter* batches = nullptr;
  infra::metrics::counter* failed = nullptr;
  infra::metrics::gauge* db_up = nullptr;
  static inline const char* name = "intake_writer";
};

std::string insert_sql(std::size_t n) {
  // Bodies are $1..$n (binary), statuses $n+1..$2n, errors $2n+1..$3n; the owner key is $3n+1,
  // for pending rows only (a rejected row is nobody's work).
  std::string sql = "INSERT INTO wa_webhook_events (body, status, error, owner_key) VALUES ";
  for (std::size_t i = 1; i <= n; ++i) {
    sql += fmt::format("{}(${}, ${}, ${}, CASE WHEN ${} = 'pending' THEN ${}::bigint END)",
                       i == 1 ? "" : ",", i, n + i, 2 * n + i, n + i, 3 * n + 1);
  }
  sql += " RETURNING id";
  return sql;
}

void mark_down(writer_state& st, const std::string& why) {
  st.conn.reset();
  st.prepared.clear();
  st.backoff = std::min(std::chrono::milliseconds{2000},
                        std::max(std::chrono::milliseconds{100}, st.backoff * 2));
  st.next_connect_attempt = clock::now() + st.backoff;
  st.db_up->store(0);
  infra::log_warn("intake_db_unavailable", {{"error", why}});
}

bool ensure_connected(writer_state& st) {
  if (st.conn && st.conn->is_open()) {
    return true;
  }
  if (clock::now() < st.next_connect_attempt) {
    return false;
  }
  try {
    st.conn = std::make_unique<pqxx::connection>(st.settings.database_url);
    pqxx::nontransaction nt{*st.conn};
    // A stuck commit must not hold its callers for ever; the HTTP side answers 503 at 5 s anyway.
    nt.exec("SET statement_timeout = '10s'");
    st.backoff = std::chrono::milliseconds{0};
    st.db_up->store(1);
    infra::log_info("intake_db_connected");
    return true;
  } catch (const std::exception& e) {
    mark_down(st, e.what());
    return false;
  }
}

void fail_all(std::vector<intake_item>& items, writer_state& st) {
  st.failed->fetch_add(items.size(), std::memory_order_relaxed);
  for (auto& item : items) {
    st.table->settle(st.slot, item.ticket, intake_outcome{false, 0});
  }
  items.clear();
}

void flush(writer_state& st) {
  if (st.batch.empty()) {
    return;
  }
  fault_point("intake_writer");
  auto items = std::move(st.batch);
  st.batch.clear();
  if (!ensure_connected(st)) {
    fail_all(items, st);
    return;
  }
  const auto n = items.size();
  std::vector<pqxx::binarystring> bodies;
  std::vector<std::string> statuses;
  std::vector<std::optional<std::string>> errors;
  bodies.reserve(n);
  statuses.reserve(n);
  errors.reserve(n);
  for (auto& item : items) {
    bodies.emplace_back(item.body);
    statuses.push_back(item.status);
    errors.push_back(item.error.empty() ? std::nullopt : std::optional<std::string>{item.error});
  }
  std::vector<std::int64_t> ids;
  const std::int64_t key = st.settings.owner_key ? st.settings.owner_key->load() : 0;
  bool answered = false;  // the statement returned: a failure after this is an answer lost
  try {
    if (st.prepared.size() <= n) {
      st.prepared.resize(n + 1, false);
    }
    const auto stmt = fmt::format("intake_{}", n);
    if (!st.prepared[n]) {
      st.conn->prepare(stmt, insert_sql(n));
      st.prepared[n] = true;
    }
    // One statement in autocommit: it is its own transaction, durable when it returns
    // (synchronous_commit), so BEGIN and COMMIT would only be two more round trips. A
    // connection lost meanwhile leaves the outcome unknown, as an in-doubt COMMIT would: the
    // callers get 503, Meta redelivers and processing recognises the wamids.
    pqxx::nontransaction w{*st.conn};
    auto r = w.exec_prepared(stmt, pqxx::prepare::make_dynamic_params(bodies),
                             pqxx::prepare::make_dynamic_params(statuses),
                             pqxx::prepare::make_dynamic_params(errors),
                             key != 0 ? std::optional<std::int64_t>{key} : std::nullopt);
    answered = true;
    // Test builds: as if the connection broke after the commit, before its answer arrived.
    fault_point("intake_answer_lost");
    ids.reserve(r.size());
    for (const auto& row : r) {
      ids.push_back(row[0].as<std::int64_t>());
    }
  } catch (const std::exception& e) {
    // Stored or not, nobody knows after a broken connection: refuse, Meta redelivers,
    // processing dedupes. Rows that are in with the key would wait for a dispatcher that was
    // never told of them: it retires the key, which frees them (inbox_dispatcher.cpp).
    const bool in_doubt = answered || dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr;
    if (!in_doubt) {
      infra::log_error("intake_commit_failed", {{"error", e.what()}});
    }
    mark_down(st, e.what());
    fail_all(items, st);
    if (in_doubt && key != 0 && st.settings.wake) {
      caf::anon_send(caf::actor_cast<inbox_dispatcher_actor>(st.settings.wake), doubt_atom::value, key);
    }
    return;
  }
  st.committed->fetch_add(n, std::memory_order_relaxed);
  st.batches->fetch_add(1, std::memory_order_relaxed);
  for (std::size_t i = 0; i < n; ++i) {
    st.table->settle(st.slot, items[i].ticket, intake_outcome{true, i < ids.size() ? ids[i] : 0});
  }
  if (!st.settings.wake || ids.empty()) {
    return;
  }
  auto dispatcher = caf::actor_cast<inbox_dispatcher_actor>(st.settings.wake);
  if (key == 0) {
    caf::anon_send(dispatcher, wake_atom::value, *std::min_element(ids.begin(), ids.end()));
    return;
  }
  // The pending rows are ours: their bodies go to the dispatcher as they are, no claim reads them
  // back. RETURNING gives the ids in VALUES order: PostgreSQL inserts a VALUES list in order and
  // returns each row as it inserts it (no triggers here); the tickets above rely on it too, as
  // do the bulk inserts of common ORMs (Django's bulk_create on PostgreSQL).
  owned_rows born;
  born.owner_key = key;
  for (std::size_t i = 0; i < n && i < ids.size(); ++i) {
    if (items[i].status == "pending") {
      born.rows.push_back({ids[i], std::move(items[i].body)});
    }
  }
  if (!born.rows.empty()) {
    caf::anon_send(dispatcher, born_atom::value, std::move(born));
  }
}

writer_interface::behavior_type intake_writer(writer_interface::stateful_pointer<writer_state> self,
                                                 intake_settings settings, std::shared_ptr<writer_table> table,
                                                 std::size_t slot) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.table = std::move(table);
  st.slot = slot;
  auto& m = *st.settings.metrics;
  st.committed = &m.get_counter("wachat_webhooks_committed_total",
                                "Webhook bodies committed to wa_webhook_events.");
  st.batches = &m.get_counter("wachat_intake_batches_total", "Intake group-commit transactions.");
  st.failed = &m.get_counter("wachat_webhooks_commit_failed_total",
                             "Webhook bodies that could not be committed (answered 503).");
  st.db_up = &m.get_gauge("wachat_intake_db_up", "1 while the intake writers reach PostgreSQL.");
  ensure_connected(st);
  return {
      [=](commit_atom, intake_item& item) {
        auto& s = self->state;
        // While the database is known to be away, answer at once instead of queueing.
        if (!s.conn && clock::now() < s.next_connect_attempt) {
          s.failed->fetch_add(1, std::memory_order_relaxed);
          s.table->settle(s.slot, item.ticket, intake_outcome{false, 0});
          return;
        }
        s.batch.push_back(std::move(item));
        if (s.batch.size() >= s.settings.batch_max) {
          flush(s);
        } else if (!s.flush_queued) {
          // The flush tag lands behind everything already in the mailbox, so one commit takes
          // all that arrived while the previous commit ran: group commit without a timer.
          s.flush_queued = true;
          self->send(self, flush_atom::value);
        }
      },
      [=](flush_atom) {
        self->state.flush_queued = false;
        flush(self->state);
      },
      [=](stop_atom) {
        flush(self->state);
        self->quit();
      },
  };
}

}  // namespace

namespace {

// A writer with fewer items than this waiting or committing takes the next one.
constexpr std::size_t spill_items = 16;

struct supervisor_state {
  supervised_workers workers;
  static inline const char* name = "intake";
};

// Supervises the writers (supervised_workers: `wachat_intake_writer_restarts_total`). What a
// dead writer held is not given to another: its tickets are settled as not stored at once (its
// batch and its mailbox alike), so Meta delivers them again. On stop it waits until every
// writer has committed what it holds.
// The intake actor: supervises the writers; submit() reaches them through the writer table.
using supervisor_interface = intake_actor::extend<caf::reacts_to<restart_atom, std::size_t>>;

supervisor_interface::behavior_type supervisor(supervisor_interface::stateful_pointer<supervisor_state> self, intake_settings settings,
                         std::shared_ptr<writer_table> table) {
  auto count = table->writers.size();
  self->state.workers = supervised_workers{
      "wachat_intake_writer", count,
      [self, settings, table](std::size_t i) {
        // Detached: each writer blocks on its own connection and thread, never on the scheduler's.
        auto w = self->home_system().spawn<caf::detached>(intake_writer, settings, table, i);
        std::unique_lock lock{table->mutex};
        table->writers[i] = caf::actor_cast<intake_writer_actor>(w);
        return caf::actor_cast<caf::actor>(w);
      },
      settings.metrics};
  self->state.workers.start(self);
  self->set_down_handler([=](caf::down_msg& down) {
    if (auto i = self->state.workers.on_down(self, down)) {
      // Until its replacement is up, submit() passes this slot by; what it held is answered.
      {
        std::unique_lock lock{table->mutex};
        table->writers[*i] = intake_writer_actor{};
      }
      table->abandon(*i);
    }
  });
  return {
      [=](restart_atom, std::size_t i) { self->state.workers.restart(self, i); },
      [=](stop_atom) {
        // Whatever is still open once every writer is gone (sent to one that was stopping) is
        // answered as not stored.
        auto give_up = [=] {
          for (std::size_t i = 0; i < table->writers.size(); ++i) {
            table->abandon(i);
          }
          self->quit();
        };
        self->state.workers.stop_all();
        if (self->state.workers.all_down()) {
          give_up();  // none was up (a restart pending): no down will come
          return;
        }
        self->set_down_handler([=](caf::down_msg& down) {
          self->state.workers.on_down(self, down);
          if (self->state.workers.all_down()) {
            give_up();
          }
        });
      },
  };
}

}  // namespace

struct intake::impl {
  std::shared_ptr<writer_table> table = std::make_shared<writer_table>();
  caf::actor supervisor;
  caf::actor_system* sys = nullptr;
};

intake::intake(caf::actor_system& sys, intake_settings settings) : impl_(std::make_unique<impl>()) {
  impl_->sys = &sys;
  const auto n = std::max<std::uint32_t>(settings.writers, 1);
  impl_->table->writers.resize(n);
  impl_->table->slots = std::make_unique<writer_table::slot_tickets[]>(n);
  impl_->table->listener = settings.listener;
  impl_->supervisor = caf::actor_cast<caf::actor>(sys.spawn(supervisor, std::move(settings), impl_->table));
}

intake::~intake() { shutdown(); }

// The first writer with a short queue takes the item, else the least busy one. At moderate
// rates the first writer then commits everything, in batches twice as large as round-robin gave
// (per statement, PostgreSQL's fixed costs dominated: 2.3 rows each at 2,000 webhooks/s); under
// load the others take their share.
void intake::submit(intake_item item) {
  auto& table = *impl_->table;
  std::shared_lock lock{table.mutex};
  const auto n = table.writers.size();
  std::size_t pick = 0;
  std::size_t least = SIZE_MAX;
  for (std::size_t i = 0; i < n; ++i) {
    if (!table.writers[i]) {
      continue;  // dead, its replacement not up yet
    }
    const auto q = table.slots[i].count.load(std::memory_order_relaxed);
    if (q < spill_items) {
      pick = i;
      break;
    }
    if (q < least) {
      least = q;
      pick = i;
    }
  }
  if (!table.writers[pick]) {
    table.listener->settled(item.ticket, intake_outcome{false, 0});  // no writer is up: 503
    return;
  }
  // Held before it is sent, under the shared lock: a writer that dies now has it abandoned.
  table.hold(pick, item.ticket);
  caf::anon_send(table.writers[pick], commit_atom::value, std::move(item));
}

void intake::shutdown() { stop_and_wait(*impl_->sys, impl_->supervisor); }

}  // namespace wachat::actors

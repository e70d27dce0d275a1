#include "actors/inbound/inbox_dispatcher.hpp"

#include <algorithm>
#include <atomic>
#include <caf/all.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <pqxx/pqxx>
#include <unordered_map>

#include "actors/atoms.hpp"
#include "actors/supervision/stop_and_wait.hpp"
#include "actors/inbound/inbound_interfaces.hpp"
#include "actors/inbound/inbound_messages.hpp"
#include "domain/inbound_units.hpp"
#include "domain/webhook_parser.hpp"
#include "infra/cached_statement.hpp"
#include "infra/inbox_claims.hpp"
#include "infra/log.hpp"

namespace wachat::actors {
namespace {


constexpr std::size_t claim_size = 500;
// Rows parsed and handed out but not finished yet; bounds memory when the writers fall behind.
constexpr std::size_t max_in_flight = 4000;
// Claims whose transactions are open at once, each on its own connection.
constexpr std::size_t max_open_claims = 8;
// Rows the intake committed as ours that wait for room below max_in_flight, in memory; beyond
// this the newest are given back to any claim (read again from the table later).
constexpr std::size_t max_born_waiting = 16000;
// Outcomes of owned rows are written in batches of at least this many, or after owned_delay:
// the statement's cost per row falls with its size (15.8 µs a row at 29 rows, 12.9 at 74), and
// nobody waits for it (the webhook was answered at its commit, the messages are stored).
constexpr std::size_t owned_batch = 256;
constexpr std::chrono::milliseconds owned_delay{20};
// A key missing from pg_locks is taken for dead only once its holder has not refreshed it for
// this long (at start: rows younger than this are left alone): its dispatcher may be taking it
// again on a new connection (checked every second).
constexpr std::chrono::seconds orphan_grace{5};
// A 'processing' row older than this was left by a process of an older version that died.
constexpr std::chrono::seconds legacy_lease{60};
// A failed row is tried this many times in all (inbox_claims::requeue_failed spaces them out).
constexpr int max_attempts = 5;

// One claim: its rows stay locked by `tx` until every one of them is finished, then their
// outcomes are written and committed together. Rows the intake committed as ours (owner_key)
// come without a transaction: they are ours while the key's lock lives, and their outcomes are
// written in autocommit, many claims' in one statement.
struct open_claim {
  std::unique_ptr<pqxx::connection> conn;
  std::unique_ptr<pqxx::work> tx;
  std::int64_t owner_key = 0;  // rows from memory (no conn, no tx)
  std::size_t open = 0;  // rows not finished yet
  std::vector<infra::event_finish> finished;
  std::chrono::steady_clock::time_point opened = std::chrono::steady_clock::now();
};

struct dispatcher_state {
  inbox_dispatcher_settings settings;
  std::unique_ptr<pqxx::connection> conn;  // requeues, lag
  site_directory_actor sites;              // says which site's actor takes each unit
  // The directory's answers: phone number id -> site and its actor (no site: unroutable),
  // kept until it says `forget`.
  struct route {
    std::optional<std::string> site;
    site_actor actor;
  };
  std::unordered_map<std::string, route> routes;
  // Claims waiting for routes, in claim order; each goes once it and those before it are ready.
  struct routing_batch {
    std::uint64_t seq = 0;
    std::vector<unit_job> jobs;
    std::unordered_map<std::string, route> routes;  // for this batch's ids
    bool ready = false;
    std::string error;  // the directory could not answer: the units are tried again later
  };
  std::deque<routing_batch> routing;
  std::uint64_t next_routing = 1;
  std::map<std::int64_t, domain::event_progress> in_flight;
  std::map<std::uint64_t, open_claim> claims;
  std::unordered_map<std::int64_t, std::uint64_t> claim_of;  // event id -> its claim
  std::uint64_t next_claim = 0;
  // Claims look only above this id: below it are the rows our open claims hold locked, which a
  // claim would otherwise walk past one by one. Lowered when intake commits lower ids (ids are
  // drawn before commit, so they commit out of order), and reset to 0 on every tick and
  // whenever no claim is open.
  std::int64_t after = 0;
  std::vector<std::unique_ptr<pqxx::connection>> idle;  // claim connections not in use
  std::size_t tx_claims = 0;                             // claims with an open transaction
  // Holds the session lock on owner_key, the key intake commits our rows with (migration 019),
  // for as long as this actor lives or until the key is retired. `key_cell` is where intake
  // reads it (shared with the writers).
  std::shared_ptr<pqxx::connection> key_conn;
  std::int64_t owner_key = 0;
  std::shared_ptr<std::atomic<std::int64_t>> key_cell;
  // A commit's answer was lost (intake said `doubt`): rows may be in with the key that nobody
  // told us of. The key is retired: a new one takes its place, and the old one's lock is held
  // (and refreshed) until its rows in memory are done (retire_hold), then let go, so that the
  // sweep frees what is left of it: the rows we never got. Finding them otherwise meant walking
  // every owned row (migration 020). At most max_retired at once (each holds a connection);
  // beyond, the retirement waits.
  bool retire_due = false;
  struct retired_key {
    std::shared_ptr<pqxx::connection> conn;
    std::int64_t key = 0;
    std::chrono::steady_clock::time_point until;
  };
  std::vector<retired_key> retired;
  // Rows the intake committed as ours, waiting for room below max_in_flight (oldest first),
  // with when they came.
  struct waiting {
    owned_rows born;
    std::chrono::steady_clock::time_point since;
  };
  std::deque<waiting> born_waiting;
  std::size_t born_waiting_rows = 0;
  // Outcomes of owned rows not written yet (written at owned_batch rows, after owned_delay, or
  // at the tick; kept across a failed write: nobody else takes an owned row while its key
  // lives, so they must not be dropped).
  std::vector<infra::event_finish> owned_finished;
  bool owned_unroutable_stale = false;  // one of them was routed before routes were forgotten
  bool owned_flush_queued = false;
  // Owned rows to give back to any claim (over the in-memory bound, waiting past the lease, or
  // at stop), by key, kept until the statement succeeds.
  std::vector<std::pair<std::int64_t, std::vector<std::int64_t>>> to_give_back;
  // Whether a claim may find rows: set by `wake`, every tick, when rows were given back or
  // freed, and when the last claim was full or could not run. Owned rows need no claim, so
  // finishing them does not send the dispatcher to look (each look walks the pending rows).
  bool claim_due = true;
  bool work_queued = false;
  bool finish_queued = false;
  bool started = false;
  // Unroutable rows are looked at again only when routes may have changed: at start, when the
  // directory says `forget`, and when a claim routed before that is finished afterwards. Every
  // second instead, the query walked every unroutable row ever kept (75 ms at 180,000 rows,
  // growing for good in production).
  bool requeue_routable_due = true;
  std::chrono::steady_clock::time_point routes_forgotten{};
  infra::metrics::counter* processed = nullptr;
  infra::metrics::counter* messages = nullptr;
  infra::metrics::counter* statuses = nullptr;
  infra::metrics::counter* failures = nullptr;
  infra::metrics::counter* skipped = nullptr;  // parts of deliveries that could not be used
  infra::metrics::counter* refused = nullptr;  // deliveries refused whole (over the item limit)
  infra::metrics::gauge* lag = nullptr;
  infra::metrics::gauge* key_held = nullptr;
  static inline const char* name = "inbox_dispatcher";
};

using self_ptr = inbox_dispatcher_actor::stateful_pointer<dispatcher_state>;

// The dispatcher's connections give up a lock they wait for after this long. An operator's
// ACCESS EXCLUSIVE lock on the inbox (ALTER TABLE, VACUUM FULL) waits for the open claims to
// commit, and every later lock request on the table queues behind it: a claim (or a requeue)
// blocking this thread there would keep the open claims from ever finishing, and intake and
// processing would stall until the operator gave up. Given up instead, the statement fails
// (logged, tried again later), the finished claims commit, and the operator's lock is granted.
// Claims never wait on rows (SKIP LOCKED), so nothing else reaches this. A claim's finish is
// exempt (write_finished).
constexpr const char* lock_wait_limit = "'2s'";

std::unique_ptr<pqxx::connection> dispatcher_connection(const std::string& url) {
  auto c = infra::connect_for_probes(url);
  c->set_variable("lock_timeout", lock_wait_limit);
  return c;
}

// How long a retired key stays locked. A row waits in memory for at most a lease, then its
// claim runs for at most a lease and is settled at the next tick; and a commit that read the key
// before it retired lands within the intake's statement_timeout (10 s). Rows still held after
// this are only done twice (every write checks the key), never lost.
std::chrono::seconds retire_hold(const dispatcher_state& st) {
  return std::max(std::chrono::seconds(15),
                  std::chrono::duration_cast<std::chrono::seconds>(st.settings.claim_lease * 3));
}
constexpr std::size_t max_retired = 2;

// The lock on our owner key lives with key_conn. Refreshed every tick (wa_inbox_owners) and
// taken again on a new connection if that one was lost; meanwhile rows committed with the key
// may be freed by another process (after orphan_grace) and done twice (harmless: every write is
// idempotent), never lost.
void keep_owner_key(dispatcher_state& st) {
  if (st.owner_key == 0) {
    return;
  }
  std::string why = "no connection";
  try {
    if (st.key_conn && st.key_conn->is_open()) {
      infra::inbox_claims{*st.key_conn}.refresh_owner_key(st.owner_key);
      return;
    }
  } catch (const pqxx::broken_connection& e) {
    why = e.what();
  } catch (const std::exception& e) {
    // The lock is still held (a full disk, a lock wait given up): keep it; the registration is
    // refreshed at a later tick, and a sweep never frees a key that is locked.
    infra::log_warn("inbox_owner_key_not_refreshed", {{"error", e.what()}});
    return;
  }
  st.key_held->store(0);
  st.key_conn.reset();
  try {
    auto c = dispatcher_connection(st.settings.database_url);
    if (infra::inbox_claims{*c}.retake_owner_key(st.owner_key)) {
      st.key_conn = std::move(c);
      st.key_held->store(1);
      infra::log_info("inbox_owner_key_retaken", {{"lost_because", why}});
    } else {
      infra::log_warn("inbox_owner_key_lost", {{"why", "another session holds it"}});
    }
  } catch (const std::exception& e) {
    infra::log_warn("inbox_owner_key_lost", {{"why", why}, {"error", e.what()}});
  }
}

pqxx::connection* connect(dispatcher_state& st) {
  if (st.conn && st.conn->is_open()) {
    return st.conn.get();
  }
  try {
    st.conn = dispatcher_connection(st.settings.database_url);
    if (st.started) {
      keep_owner_key(st);  // the database was away: the key's connection may be gone too
    }
    if (!st.started) {
      // Crash recovery: rows a dead process left behind, rows that failed last time. Walks
      // every owned row: once, here.
      infra::inbox_claims claims{*st.conn};
      auto stale = claims.requeue_stale(legacy_lease);
      auto failed = claims.requeue_failed(max_attempts);
      auto orphans = claims.free_all_orphans(st.owner_key, orphan_grace) +
                     claims.free_orphans(st.owner_key, orphan_grace);
      if (stale + failed + orphans > 0) {
        infra::log_info("inbox_recovered", {{"stale", std::to_string(stale)},
                                            {"failed", std::to_string(failed)},
                                            {"orphaned", std::to_string(orphans)}});
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

// Takes a new key in place of the current one, which is kept locked for retire_hold (see
// dispatcher_state::retired). Tried again every tick until it succeeds; meanwhile intake goes
// on with the old key, whose rows we are told of as before.
void retire_key(dispatcher_state& st) {
  if (!st.retire_due || st.owner_key == 0) {
    st.retire_due = false;
    return;
  }
  if (st.retired.size() >= max_retired) {
    return;  // a connection each: a flapping link must not use up the server's connections
  }
  std::int64_t key = 0;
  std::shared_ptr<pqxx::connection> conn;
  try {
    conn = dispatcher_connection(st.settings.database_url);
    key = infra::inbox_claims{*conn}.take_owner_key();
  } catch (const std::exception& e) {
    infra::log_warn("inbox_owner_key_not_retired", {{"error", e.what()}});
    return;
  }
  if (key == 0) {
    return;
  }
  st.retired.push_back({std::move(st.key_conn), st.owner_key, std::chrono::steady_clock::now() + retire_hold(st)});
  st.key_conn = std::move(conn);
  st.owner_key = key;
  st.key_cell->store(key);
  st.key_held->store(1);
  st.retire_due = false;
  infra::log_info("inbox_owner_key_retired", {{"why", "a commit's answer may have been lost"},
                                              {"held_for_s", std::to_string(retire_hold(st).count())}});
}

// Lets go of retired keys whose time is up, and refreshes the others: the sweep (ours or another
// process's) frees a key's rows once orphan_grace has passed since its last refresh.
void let_go_retired(dispatcher_state& st) {
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(st.retired, [&](const dispatcher_state::retired_key& r) {
    if (r.until <= now || !r.conn || !r.conn->is_open()) {
      return true;
    }
    try {
      infra::inbox_claims{*r.conn}.refresh_owner_key(r.key);
    } catch (const pqxx::broken_connection&) {
      return true;  // the lock went with it: freed after the grace, some rows maybe done twice
    } catch (const std::exception& e) {
      infra::log_warn("inbox_owner_key_not_refreshed", {{"error", e.what()}});
    }
    return false;
  });
}

// The oldest row we hold, for the lag gauge (0: none).
std::int64_t oldest_held(const dispatcher_state& st) {
  std::int64_t oldest = st.in_flight.empty() ? 0 : st.in_flight.begin()->first;
  for (const auto& w : st.born_waiting) {
    if (!w.born.rows.empty() && (oldest == 0 || w.born.rows.front().id < oldest)) {
      oldest = w.born.rows.front().id;  // VALUES order: a batch's ids rise
    }
  }
  return oldest;
}

void queue_finish(self_ptr self) {
  if (!self->state.finish_queued) {
    self->state.finish_queued = true;
    self->send(self, done_atom::value);
  }
}

// Records how a row ended in its claim; the claim is written once all of its rows are.
void finish_row(self_ptr self, infra::event_finish f) {
  auto& st = self->state;
  auto c = st.claim_of.find(f.id);
  if (c == st.claim_of.end()) {
    return;
  }
  auto claim = st.claims.find(c->second);
  st.claim_of.erase(c);
  if (claim == st.claims.end()) {
    return;
  }
  claim->second.finished.push_back(std::move(f));
  if (--claim->second.open == 0) {
    queue_finish(self);
  }
}

void complete(self_ptr self, std::int64_t id) {
  auto& st = self->state;
  auto it = st.in_flight.find(id);
  auto verdict = it->second.verdict();
  st.failures->fetch_add(verdict.status == "failed" ? 1 : 0, std::memory_order_relaxed);
  infra::event_finish f{id, verdict.status, verdict.error, it->second.unroutable_ids};
  st.in_flight.erase(it);
  finish_row(self, std::move(f));
}

void unit_answered(self_ptr self, std::int64_t id, const domain::unit_outcome& o) {
  auto& st = self->state;
  auto it = st.in_flight.find(id);
  if (it == st.in_flight.end()) {
    return;
  }
  st.messages->fetch_add(o.new_message ? 1 : 0, std::memory_order_relaxed);
  st.statuses->fetch_add(o.new_status ? 1 : 0, std::memory_order_relaxed);
  it->second.record(o);
  if (it->second.complete()) {
    complete(self, id);
  }
}

// Parses one claimed row into its units (none: the row is finished already).
std::vector<domain::inbound_unit> parse_row(self_ptr self, const infra::claimed_event& ev) {
  auto& st = self->state;
  auto parsed = domain::parse_webhook(ev.body);
  if (auto* err = std::get_if<domain::webhook_parse_error>(&parsed)) {
    finish_row(self, {ev.id, "rejected", err->reason, {}});
    return {};
  }
  const auto& delivery = std::get<domain::webhook_delivery>(parsed);
  if (auto refused = domain::refusal_reason(delivery, domain::webhook_parse_limits{}.max_items)) {
    infra::log_warn("webhook_refused", {{"event_id", std::to_string(ev.id)}, {"reason", *refused}});
    st.refused->fetch_add(1, std::memory_order_relaxed);
    finish_row(self, {ev.id, "rejected", *refused, {}});
    return {};
  }
  auto& progress = st.in_flight[ev.id];
  progress.problems = delivery.problems;
  if (!delivery.problems.empty()) {
    // Each time the row is processed (a redelivery of the same body counts again): the
    // operator sees deliveries with unusable parts as they come, the row says which.
    st.skipped->fetch_add(delivery.problems.size(), std::memory_order_relaxed);
    infra::log_warn("webhook_items_skipped",
                    {{"event_id", std::to_string(ev.id)},
                     {"count", std::to_string(delivery.problems.size())},
                     {"first", delivery.problems.front().where + ": " + delivery.problems.front().reason}});
  }
  progress.meta_errors = domain::delivery_errors(delivery);
  for (const auto& e : progress.meta_errors) {
    infra::log_warn("meta_reported_error", {{"event_id", std::to_string(ev.id)},
                                            {"code", std::to_string(e.code)},
                                            {"title", e.title.empty() ? e.message : e.title}});
  }
  for (const auto& waba : domain::template_changes(delivery)) {
    // Meta changed a template (approved, paused, re-categorised): its sites fetch them again.
    self->send(st.sites, tchanged_atom::value, waba);
  }
  auto units = domain::split_delivery(delivery);
  progress.units = units.size();
  if (units.empty()) {
    complete(self, ev.id);
  }
  return units;
}

domain::unit_outcome not_now(std::string why) {
  domain::unit_outcome o;
  o.retryable = true;
  o.error = std::move(why);
  return o;
}

// Hands one unit to its site's actor, which hands it to the customer's conversation actor.
void send_unit(self_ptr self, unit_job job, const dispatcher_state::route& r) {
  auto id = job.event_id;
  if (!r.site) {
    domain::unit_outcome o;
    o.unroutable = job.unit->phone_number_id;
    unit_answered(self, id, o);
    return;
  }
  job.site = *r.site;
  self->request(r.actor, caf::infinite, store_atom::value, std::move(job))
      .then([=](domain::unit_outcome& o) { unit_answered(self, id, o); },
            [=](caf::error& e) { unit_answered(self, id, not_now(to_string(e))); });
}

// Sends the claims whose routes are known, oldest first, up to the first that still waits:
// a customer's units then reach their conversation actor in inbox order.
void send_ready(self_ptr self) {
  auto& st = self->state;
  while (!st.routing.empty() && st.routing.front().ready) {
    auto batch = std::move(st.routing.front());
    st.routing.pop_front();
    for (auto& job : batch.jobs) {
      if (!batch.error.empty()) {
        unit_answered(self, job.event_id, not_now(batch.error));
        continue;
      }
      auto r = batch.routes.find(job.unit->phone_number_id);
      send_unit(self, std::move(job), r->second);
    }
  }
}

// Sends each unit of a claim to its site's actor. The directory decides which site has a phone
// number id; its answers are kept until it says `forget`, so it is asked only for ids not seen
// since: at most one round trip per claim, none in the steady state.
void route(self_ptr self, std::vector<unit_job> jobs) {
  auto& st = self->state;
  auto& batch = st.routing.emplace_back();
  batch.jobs = std::move(jobs);
  std::vector<std::string> missing;
  for (const auto& job : batch.jobs) {
    const auto& id = job.unit->phone_number_id;
    if (batch.routes.count(id) > 0) {
      continue;
    }
    if (auto known = st.routes.find(id); known != st.routes.end()) {
      batch.routes.emplace(id, known->second);
    } else {
      batch.routes.emplace(id, dispatcher_state::route{});
      missing.push_back(id);
    }
  }
  if (missing.empty()) {
    batch.ready = true;
    send_ready(self);
    return;
  }
  auto seq = batch.seq = st.next_routing++;
  auto asked = std::make_shared<std::vector<std::string>>(missing);
  auto fill = [self, seq](std::function<void(dispatcher_state::routing_batch&)> f) {
    for (auto& b : self->state.routing) {
      if (b.seq == seq) {
        f(b);
        b.ready = true;
      }
    }
    send_ready(self);
  };
  self->request(st.sites, caf::infinite, route_atom::value, std::move(missing))
      .then(
          [=](site_routes& r) {
            fill([&](dispatcher_state::routing_batch& b) {
              if (!r.error.empty()) {
                b.error = r.error;
                return;
              }
              auto& known = self->state.routes;
              if (known.size() >= 10000) {
                known.clear();  // a flood of distinct unknown ids: start over
              }
              for (std::size_t i = 0; i < asked->size(); ++i) {
                dispatcher_state::route route;
                if (!r.sites[i].empty()) {
                  route.site = r.sites[i];
                  route.actor = r.actors[i];
                }
                b.routes[(*asked)[i]] = route;
                known[(*asked)[i]] = route;
              }
            });
          },
          [=](caf::error& e) {
            fill([&](dispatcher_state::routing_batch& b) { b.error = to_string(e); });
          });
}

std::unique_ptr<pqxx::connection> claim_connection(dispatcher_state& st) {
  if (!st.idle.empty()) {
    auto c = std::move(st.idle.back());
    st.idle.pop_back();
    if (c->is_open()) {
      return c;
    }
  }
  return dispatcher_connection(st.settings.database_url);
}

// Parses and routes the rows of claim `claim_id` (claimed or handed over by the intake).
void take_rows(self_ptr self, std::uint64_t claim_id, std::vector<infra::claimed_event>& rows) {
  auto& st = self->state;
  auto& claim = st.claims[claim_id];
  claim.open = rows.size();
  // Left pending, to be tried again after this claim commits.
  auto put_back = [&](std::int64_t id, std::string why) {
    claim.finished.push_back({id, "pending", std::move(why), {}});
    --claim.open;
  };
  std::vector<unit_job> jobs;
  for (auto& ev : rows) {
    if (st.in_flight.count(ev.id) > 0) {
      // Still being processed under an earlier claim whose connection broke (so PostgreSQL let
      // go of the row): left to that round.
      put_back(ev.id, "still in progress");
      continue;
    }
    st.claim_of[ev.id] = claim_id;
    for (auto& unit : parse_row(self, ev)) {
      jobs.push_back({ev.id, {}, std::make_shared<const domain::inbound_unit>(std::move(unit))});
    }
  }
  if (!jobs.empty()) {
    route(self, std::move(jobs));
  }
  if (claim.open == 0) {
    queue_finish(self);
  }
}

// Takes rows the intake committed as ours while there is room below the in-flight bound.
void take_born(self_ptr self) {
  auto& st = self->state;
  while (!st.born_waiting.empty() && st.in_flight.size() < max_in_flight) {
    auto born = std::move(st.born_waiting.front().born);
    st.born_waiting.pop_front();
    st.born_waiting_rows -= born.rows.size();
    auto claim_id = st.next_claim++;
    st.claims[claim_id].owner_key = born.owner_key;
    std::vector<infra::claimed_event> rows;
    rows.reserve(born.rows.size());
    for (auto& r : born.rows) {
      rows.push_back({r.id, std::move(r.body)});
    }
    take_rows(self, claim_id, rows);
  }
}

// Gives owned rows back to any claim: those queued for it, in one statement per key. What
// cannot be written now stays queued for the next tick.
void give_back_owned(dispatcher_state& st) {
  if (st.to_give_back.empty()) {
    return;
  }
  auto* c = connect(st);
  if (c == nullptr) {
    return;
  }
  infra::inbox_claims claims{*c};
  std::size_t rows = 0;
  while (!st.to_give_back.empty()) {
    try {
      rows += claims.give_back(st.to_give_back.back().second, st.to_give_back.back().first);
    } catch (const std::exception& e) {
      infra::log_warn("inbox_give_back_failed", {{"error", e.what()}});
      break;
    }
    st.to_give_back.pop_back();
    st.claim_due = true;
  }
  if (rows > 0) {
    // Over the in-memory bound, waited past the lease, or at stop: claims take them.
    infra::log_info("inbox_given_back", {{"rows", std::to_string(rows)}});
  }
}

void queue_give_back(dispatcher_state& st, const owned_rows& born) {
  std::vector<std::int64_t> ids;
  for (const auto& r : born.rows) {
    ids.push_back(r.id);
  }
  st.born_waiting_rows -= born.rows.size();
  st.to_give_back.emplace_back(born.owner_key, std::move(ids));
}

// Beyond the in-memory bound the newest waiting rows, and rows that waited longer than the
// lease (units that hang hold the in-flight bound), go back to the table: another process, or
// this one later, claims them.
void trim_born(dispatcher_state& st) {
  while (st.born_waiting_rows > max_born_waiting && !st.born_waiting.empty()) {
    queue_give_back(st, st.born_waiting.back().born);
    st.born_waiting.pop_back();
  }
  const auto stale = std::chrono::steady_clock::now() - st.settings.claim_lease;
  while (!st.born_waiting.empty() && st.born_waiting.front().since < stale) {
    queue_give_back(st, st.born_waiting.front().born);
    st.born_waiting.pop_front();
  }
  give_back_owned(st);
}

enum class claim_result { none, more, blocked };

// Claims one batch and hands it out: `more` when there may be more right away, `blocked` when
// it could not look (no room, no connection, an error) and should look again later.
claim_result claim_batch(self_ptr self) {
  auto& st = self->state;
  if (st.in_flight.size() >= max_in_flight || st.tx_claims >= max_open_claims) {
    return claim_result::blocked;  // finishing rows queues more work
  }
  if (connect(st) == nullptr) {  // also recovers what a dead process left, once
    return claim_result::blocked;
  }
  std::vector<infra::claimed_event> rows;
  std::unique_ptr<pqxx::connection> conn;
  std::unique_ptr<pqxx::work> tx;
  try {
    conn = claim_connection(st);
    tx = std::make_unique<pqxx::work>(*conn);
    rows = infra::inbox_claims::claim(*tx, std::min(claim_size, max_in_flight - st.in_flight.size()),
                                      st.after);
    if (rows.empty()) {
      tx->commit();
      tx.reset();
      st.idle.push_back(std::move(conn));
    }
  } catch (const std::exception& e) {
    infra::log_warn("inbox_claim_failed", {{"error", e.what()}});
    tx.reset();  // rolled back
    if (conn && conn->is_open()) {
      st.idle.push_back(std::move(conn));  // a lock given up: the connection is fine
    }
    return claim_result::blocked;
  }
  if (rows.empty()) {
    return claim_result::none;
  }
  st.after = std::max(st.after, rows.back().id);
  const bool full = rows.size() == claim_size;
  auto claim_id = st.next_claim++;
  auto& claim = st.claims[claim_id];
  claim.conn = std::move(conn);
  claim.tx = std::move(tx);
  ++st.tx_claims;
  take_rows(self, claim_id, rows);
  return full ? claim_result::more : claim_result::none;
}

// Gives back the rows of `claim` that are not finished: 'pending' again when it commits. Their
// units may still be running; their answers find no claim and are dropped, and the rows are
// done again, which is harmless (every write is idempotent).
void settle(dispatcher_state& st, std::uint64_t id, open_claim& claim, const std::string& why) {
  for (auto it = st.claim_of.begin(); it != st.claim_of.end();) {
    if (it->second == id) {
      claim.finished.push_back({it->first, "pending", why, {}});
      it = st.claim_of.erase(it);
    } else {
      ++it;
    }
  }
  claim.open = 0;
}

std::size_t count_done(const std::vector<infra::event_finish>& rows) {
  return std::count_if(rows.begin(), rows.end(),
                       [](const infra::event_finish& f) { return f.status != "pending"; });
}

// Whether rows written back as 'pending' are work for a claim: not when each is still in flight
// here (given back after the lease while its unit runs on), which a claim would only put back
// again, round after round.
bool claimable_again(const dispatcher_state& st, const std::vector<infra::event_finish>& rows) {
  return std::any_of(rows.begin(), rows.end(), [&](const infra::event_finish& f) {
    return f.status == "pending" && st.in_flight.count(f.id) == 0;
  });
}

bool any_unroutable(const std::vector<infra::event_finish>& rows) {
  return std::any_of(rows.begin(), rows.end(),
                     [](const infra::event_finish& f) { return !f.unroutable_ids.empty(); });
}

// Writes the outcomes of owned rows, all finished claims' in one statement. On failure they
// stay for the next turn: the rows stay owned, so no other process would do them meanwhile.
void write_owned(dispatcher_state& st) {
  if (st.owned_finished.empty()) {
    return;
  }
  auto* c = connect(st);
  if (c == nullptr) {
    return;
  }
  std::size_t done = 0;
  try {
    // Rows whose key was lost meanwhile (taken for orphans, done by whoever claimed them) are
    // left as they are, and not counted here.
    done = infra::inbox_claims{*c}.finish_owned(st.owned_finished);
  } catch (const std::exception& e) {
    infra::log_warn("inbox_finish_failed",
                    {{"rows", std::to_string(st.owned_finished.size())}, {"error", e.what()}});
    return;
  }
  st.processed->fetch_add(done, std::memory_order_relaxed);
  if (st.owned_unroutable_stale) {
    st.requeue_routable_due = true;
    st.owned_unroutable_stale = false;
  }
  if (claimable_again(st, st.owned_finished)) {
    st.claim_due = true;  // rows given back to 'pending', now anyone's
  }
  st.owned_finished.clear();
}

// Writes and commits every claim whose rows are all finished; their rows are released.
void write_finished(self_ptr self) {
  auto& st = self->state;
  st.finish_queued = false;
  for (auto it = st.claims.begin(); it != st.claims.end();) {
    auto& claim = it->second;
    if (claim.open > 0) {
      ++it;
      continue;
    }
    if (claim.owner_key != 0) {
      if (claim.opened <= st.routes_forgotten && any_unroutable(claim.finished)) {
        st.owned_unroutable_stale = true;
      }
      for (auto& f : claim.finished) {
        f.owner_key = claim.owner_key;
        st.owned_finished.push_back(std::move(f));
      }
      it = st.claims.erase(it);
      continue;
    }
    --st.tx_claims;
    try {
      // Without the lock wait limit: a claim's own finish is granted ahead of a queued ACCESS
      // EXCLUSIVE request (it holds a lock that request waits for), and behind a granted SHARE
      // lock (CREATE INDEX) it waits as before instead of giving up and doing the claim again.
      claim.tx->exec("SET LOCAL lock_timeout = 0");
      infra::inbox_claims::finish(*claim.tx, claim.finished);
      claim.tx->commit();
      if (claim.opened <= st.routes_forgotten && any_unroutable(claim.finished)) {
        st.requeue_routable_due = true;  // routed with what the directory has since taken back
      }
      claim.tx.reset();
      st.processed->fetch_add(count_done(claim.finished), std::memory_order_relaxed);
      if (claimable_again(st, claim.finished)) {
        st.claim_due = true;  // rows put back, to be claimed again
      }
      st.idle.push_back(std::move(claim.conn));
    } catch (const std::exception& e) {
      // The transaction is gone and the rows with it: they are pending again, and what was
      // stored of them is recognised by wamid the next time.
      infra::log_warn("inbox_finish_failed",
                      {{"rows", std::to_string(claim.finished.size())}, {"error", e.what()}});
      st.claim_due = true;
    }
    it = st.claims.erase(it);
  }
  if (st.owned_finished.size() >= owned_batch) {
    write_owned(st);
  } else if (!st.owned_finished.empty() && !st.owned_flush_queued) {
    st.owned_flush_queued = true;
    self->delayed_send(self, owned_delay, flush_atom::value);
  }
  if (st.tx_claims == 0) {
    st.after = 0;
  }
}

void queue_work(self_ptr self) {
  if (self->state.claim_due && !self->state.work_queued) {
    self->state.work_queued = true;
    self->send(self, work_atom::value);
  }
}

inbox_dispatcher_actor::behavior_type dispatcher(self_ptr self, inbox_dispatcher_settings settings,
                         std::shared_ptr<infra::metrics> m, site_directory_actor sites,
                         std::shared_ptr<pqxx::connection> key_conn,
                         std::shared_ptr<std::atomic<std::int64_t>> key_cell) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.key_conn = std::move(key_conn);
  st.owner_key = key_cell->load();
  st.key_cell = std::move(key_cell);
  st.processed = &m->get_counter("wachat_inbox_events_processed_total", "Inbox rows handled.");
  st.messages = &m->get_counter("wachat_inbound_messages_total", "New inbound messages stored.");
  st.statuses = &m->get_counter("wachat_statuses_total", "New message statuses recorded.");
  st.failures = &m->get_counter("wachat_inbox_events_failed_total", "Inbox rows that failed.");
  st.skipped = &m->get_counter("wachat_webhook_items_skipped_total",
                               "Parts of stored webhooks that could not be used (rows left 'partial').");
  st.refused = &m->get_counter("wachat_webhooks_refused_total",
                               "Stored webhooks refused whole (over the item limit; rows left 'rejected').");
  st.lag = &m->get_gauge("wachat_inbox_lag_ms",
                         "Age of the oldest inbox row not finished yet that nobody owns or this process holds, ms.");
  st.key_held = &m->get_gauge("wachat_inbox_owner_key_held",
                              "1 while the dispatcher holds the lock on the key intake commits this process's rows with.");
  st.key_held->store(st.owner_key != 0 && st.key_conn ? 1 : 0);
  st.sites = std::move(sites);
  self->send(st.sites, watch_atom::value, caf::actor_cast<route_watcher>(self));
  queue_work(self);
  self->delayed_send(self, std::chrono::seconds(1), tick_atom::value);
  return {
      [=](born_atom, owned_rows& born) {
        auto& s = self->state;
        s.born_waiting_rows += born.rows.size();
        s.born_waiting.push_back({std::move(born), std::chrono::steady_clock::now()});
        take_born(self);
        trim_born(s);
      },
      // An intake writer lost the answer to a commit made with `key`: see dispatcher_state::retired.
      [=](doubt_atom, std::int64_t key) {
        auto& s = self->state;
        if (key != 0 && key == s.owner_key) {
          s.retire_due = true;
          retire_key(s);
        }
      },
      [=](wake_atom, std::int64_t first_id) {
        auto& s = self->state;
        s.after = std::min(s.after, std::max<std::int64_t>(first_id - 1, 0));
        s.claim_due = true;
        queue_work(self);
      },
      // Every second, busy or not: rows another process committed, rows now routable, rows
      // whose lease ran out.
      [=](tick_atom) {
        self->send(self, rescan_atom::value);
        self->delayed_send(self, std::chrono::seconds(1), tick_atom::value);
      },
      [=](rescan_atom) {
        auto& s = self->state;
        for (auto& [id, claim] : s.claims) {
          if (claim.open > 0 && std::chrono::steady_clock::now() - claim.opened > s.settings.claim_lease) {
            infra::log_warn("inbox_claim_expired", {{"rows", std::to_string(claim.open)}});
            settle(s, id, claim, "not finished within the lease; tried again");
          }
        }
        s.after = 0;  // requeued rows, rows of other processes, rows put back
        keep_owner_key(s);  // before the sweep below, which would free our rows if it were lost
        retire_key(s);
        let_go_retired(s);
        if (auto* c = connect(self->state)) {
          try {
            infra::inbox_claims claims{*c};
            if (s.requeue_routable_due) {
              claims.requeue_routable();
              s.requeue_routable_due = false;  // only once it ran: a failure tries again next tick
            }
            claims.requeue_stale(legacy_lease);
            claims.requeue_failed(max_attempts);
            // Rows whose owner died (its process, or only its dispatcher), and rows of a key
            // we retired that we never got (a commit whose answer was lost).
            auto orphans = claims.free_orphans(s.owner_key, orphan_grace);
            if (orphans > 0) {
              infra::log_info("inbox_recovered", {{"orphaned", std::to_string(orphans)}});
            }
            // Once a second, not after every claim: at 2,000 messages/s claims are small and
            // many, and this was one more round trip before each claim's rows were routed.
            s.lag->store(claims.pending_lag_ms(oldest_held(s)));
          } catch (const std::exception& e) {
            infra::log_warn("inbox_requeue_failed", {{"error", e.what()}});
          }
        }
        write_finished(self);
        write_owned(s);  // also what failed before
        take_born(self);  // room may have come from units that answered after their claim ended
        trim_born(s);     // also gives back what could not be given back before
        s.claim_due = true;  // rows of other processes, rows requeued or freed
        queue_work(self);
      },
      [=](work_atom) {
        auto& s = self->state;
        s.work_queued = false;
        if (!s.claim_due) {
          return;
        }
        // One batch per turn: answers from the writers and shutdown get their turn in between.
        s.claim_due = false;
        switch (claim_batch(self)) {
          case claim_result::more:
            s.claim_due = true;
            queue_work(self);
            break;
          case claim_result::blocked:
            s.claim_due = true;  // looked at again when rows finish, or at the next tick
            break;
          case claim_result::none:
            break;
        }
      },
      // Settings changed (here, in another process, or by hand): routes are asked again, and
      // rows kept unroutable get another look now rather than at the next tick.
      [=](forget_atom) {
        auto& s = self->state;
        s.routes.clear();
        s.routes_forgotten = std::chrono::steady_clock::now();
        s.requeue_routable_due = true;
        self->send(self, rescan_atom::value);
      },
      [=](flush_atom) {
        self->state.owned_flush_queued = false;
        write_owned(self->state);
        queue_work(self);  // rows written back 'pending' are anyone's now
      },
      [=](done_atom) {
        write_finished(self);
        // Room again below the in-flight bound: ours first, then any that may wait in the table.
        take_born(self);
        if (self->state.in_flight.size() < max_in_flight / 2) {
          queue_work(self);
        }
      },
      [=](stop_atom) {
        auto& s = self->state;
        // Rows not finished go back to 'pending' with the rest of their claim's outcomes, so
        // that what was finished is not done again after a restart.
        for (auto& [id, claim] : s.claims) {
          settle(s, id, claim, "shut down before it was finished");
        }
        write_finished(self);
        write_owned(s);
        s.claims.clear();  // any claim whose commit failed rolls back
        // Rows of ours not started go back to any claim. Whatever cannot be written now is
        // freed by the next process once our connections (and locks) are gone.
        while (!s.born_waiting.empty()) {
          queue_give_back(s, s.born_waiting.front().born);
          s.born_waiting.pop_front();
        }
        give_back_owned(s);
        self->quit();
      },
  };
}

}  // namespace

struct inbox_dispatcher::impl {
  inbox_dispatcher_actor actor;
  caf::actor_system* sys = nullptr;
  std::shared_ptr<std::atomic<std::int64_t>> owner_key = std::make_shared<std::atomic<std::int64_t>>(0);
};

inbox_dispatcher::inbox_dispatcher(caf::actor_system& sys, inbox_dispatcher_settings settings,
                                   std::shared_ptr<infra::metrics> metrics, site_directory_actor sites)
    : impl_(std::make_unique<impl>()) {
  impl_->sys = &sys;
  // Taken here, before intake exists, so that no row is committed with a key nobody holds yet.
  // The connection then lives in the actor's state: the lock lasts exactly as long as the actor.
  std::shared_ptr<pqxx::connection> key_conn;
  try {
    key_conn = dispatcher_connection(settings.database_url);
    impl_->owner_key->store(infra::inbox_claims{*key_conn}.take_owner_key());
  } catch (const std::exception& e) {
    infra::log_warn("inbox_owner_key_unavailable", {{"error", e.what()}});
    key_conn.reset();
  }
  if (impl_->owner_key->load() == 0) {
    key_conn.reset();  // rows go to claims, as before migration 019
  }
  impl_->actor = sys.spawn<caf::detached>(dispatcher, std::move(settings), std::move(metrics),
                                          std::move(sites), key_conn, impl_->owner_key);
}

std::shared_ptr<const std::atomic<std::int64_t>> inbox_dispatcher::owner_key() const { return impl_->owner_key; }

inbox_dispatcher::~inbox_dispatcher() { shutdown(); }

caf::actor inbox_dispatcher::handle() const { return caf::actor_cast<caf::actor>(impl_->actor); }

// As the directory's `forget`: routes may have changed, so the route cache goes and unroutable rows
// are looked at again.
void inbox_dispatcher::wake_routing() { caf::anon_send(impl_->actor, forget_atom::value); }

void inbox_dispatcher::shutdown() {
  auto handle = caf::actor_cast<caf::actor>(impl_->actor);
  stop_and_wait(*impl_->sys, handle);
}

}  // namespace wachat::actors

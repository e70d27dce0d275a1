#include "infra/inbox_claims.hpp"

#include <algorithm>
#include <map>
#include <tuple>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <random>

#include "infra/cached_statement.hpp"
#include "infra/inbound_values.hpp"
#include "infra/pg_columns.hpp"

namespace wachat::infra {
namespace {

using nlohmann::json;

// Rows are claimed by locking them in a transaction the dispatcher keeps open until it finishes
// them: no write at claim time (an UPDATE to 'processing' rewrote each 1 KiB row and its index
// entries once more), and a process that dies releases its rows at once, with its connection.
// Rows another process holds are skipped. Planned each time, not prepared: a generic plan took
// the primary key with the status as a filter, and walked every finished row above `after`.
// Rows an intake writer committed with its owner key are its process's (migration 019): left alone.
constexpr const char* claim_sql =
    "SELECT id, body FROM wa_webhook_events WHERE status = 'pending' AND owner_key IS NULL"
    " AND id > $2 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED";
// All rows of a claim in one statement, column by column (pg_columns).
const std::string& finish_sql() {
  static const std::string sql =
      "UPDATE wa_webhook_events e SET status = t.status, error = t.error,"
      " processed_at = CASE WHEN t.status = 'pending' THEN NULL ELSE now() END, claimed_at = NULL,"
      // Rows given back to 'pending' (a passing failure, a shutdown) have not used up an attempt.
      " attempts = e.attempts + CASE WHEN t.status = 'pending' THEN 0 ELSE 1 END,"
      " unroutable_phone_ids = CASE WHEN t.unroutable IS NULL THEN NULL"
      "   ELSE ARRAY(SELECT json_array_elements_text(t.unroutable::json)) END"
      " FROM " + rows_from(1, 4) + " AS t(id, status, error, unroutable)"
      " WHERE e.id = t.id::bigint AND e.status = 'pending'"  // claimed rows are; a cheap guard
      " AND e.id = ANY(" + first_column_ids() + ")";
  return sql;
}

// Rows processed from memory (owned): finished in one autocommitted statement, only while still
// owned by the key that committed them. A row whose owner was taken for dead meanwhile (its
// writer's connection broke) belongs to whichever process claimed it since: left to that one.
const std::string& finish_owned_sql() {
  static const std::string sql =
      "UPDATE wa_webhook_events e SET status = t.status, error = t.error,"
      " processed_at = CASE WHEN t.status = 'pending' THEN NULL ELSE now() END, owner_key = NULL,"
      " attempts = e.attempts + CASE WHEN t.status = 'pending' THEN 0 ELSE 1 END,"
      " unroutable_phone_ids = CASE WHEN t.unroutable IS NULL THEN NULL"
      "   ELSE ARRAY(SELECT json_array_elements_text(t.unroutable::json)) END"
      " FROM " + rows_from(1, 5) + " AS t(id, status, error, unroutable, owner)"
      " WHERE e.id = t.id::bigint AND e.status = 'pending' AND e.owner_key = t.owner::bigint"
      " AND e.id = ANY(" + first_column_ids() + ") RETURNING e.status <> 'pending'";
  return sql;
}

// As finish_owned_sql, for rows that all ended alike: by id alone.
constexpr const char* finish_owned_alike_sql =
    "UPDATE wa_webhook_events SET status = $2, error = $3::json #>> '{}',"
    " processed_at = CASE WHEN $2 = 'pending' THEN NULL ELSE now() END, owner_key = NULL,"
    " attempts = attempts + CASE WHEN $2 = 'pending' THEN 0 ELSE 1 END,"
    " unroutable_phone_ids = CASE WHEN $4::json IS NULL THEN NULL"
    "   ELSE ARRAY(SELECT json_array_elements_text($4::json)) END"
    " WHERE id = ANY($1::bigint[]) AND status = 'pending' AND owner_key = $5";
// Outcomes shared by at least this many rows take that statement.
constexpr std::size_t alike_min = 8;

// Error texts can quote webhook content; PostgreSQL text cannot hold NUL.
json text_or_null(const std::optional<std::string>& s) {
  if (!s) {
    return nullptr;
  }
  std::string out = *s;
  std::erase(out, '\0');
  return out;
}

// Phone number ids come from signed webhooks and may carry \u0000, which PostgreSQL text
// refuses: one such id would fail the whole turn's finish, again on every retry.
json unroutable_json(const std::set<std::string>& ids) {
  if (ids.empty()) {
    return nullptr;
  }
  json out = json::array();
  for (const auto& id : ids) {
    out.push_back(text_or_null(id));
  }
  return out;
}

// A bigint[] literal for `= ANY($1::bigint[])`: integers need no quoting.
std::string bigint_list(const std::vector<std::int64_t>& ids) {
  std::string list = "{";
  for (auto id : ids) {
    list += (list.size() > 1 ? "," : "") + std::to_string(id);
  }
  return list + "}";
}

}  // namespace

std::vector<claimed_event> inbox_claims::claim(pqxx::transaction_base& tx, std::size_t limit,
                                               std::int64_t after) {
  auto rows = tx.exec_params(claim_sql, static_cast<std::int64_t>(limit), after);
  std::vector<claimed_event> out;
  out.reserve(rows.size());
  for (const auto& row : rows) {
    pqxx::binarystring body{row[1]};
    out.push_back({row[0].as<std::int64_t>(), std::string{body.get(), body.size()}});
  }
  return out;
}

void inbox_claims::finish(pqxx::transaction_base& tx, const std::vector<event_finish>& rows) {
  if (rows.empty()) {
    return;
  }
  pg_columns columns(4);
  for (const auto& r : rows) {
    columns.add(r.id, r.status, text_or_null(r.error), unroutable_json(r.unroutable_ids));
  }
  exec_columns(tx, "inbox_finish", finish_sql(), {&columns});
}

std::size_t inbox_claims::finish_owned(const std::vector<event_finish>& rows) {
  if (rows.empty()) {
    return 0;
  }
  // Rows that ended alike (nearly all of a turn: processed, no error) are written by id alone,
  // one statement per outcome: no column arrays for PostgreSQL to parse and join per row.
  using outcome = std::tuple<std::int64_t, std::string, std::optional<std::string>, std::set<std::string>>;
  std::map<outcome, std::vector<std::int64_t>> alike;
  for (const auto& r : rows) {
    alike[{r.owner_key, r.status, r.error, r.unroutable_ids}].push_back(r.id);
  }
  pqxx::nontransaction tx{conn_};
  std::size_t done = 0;
  pg_columns columns(5);
  for (const auto& [o, ids] : alike) {
    const auto& [key, status, error, unroutable] = o;
    if (ids.size() < alike_min) {
      for (auto id : ids) {
        columns.add(id, status, text_or_null(error), unroutable_json(unroutable), key);
      }
      continue;
    }
    const auto list = bigint_list(ids);
    // The error and the ids as JSON texts, as the column statement takes them: NUL dropped
    // (text_or_null), invalid UTF-8 replaced (pg_json), never refused by PostgreSQL.
    const auto as_param = [](const nlohmann::json& j) {
      return j.is_null() ? std::optional<std::string>{} : std::optional<std::string>{pg_json(j)};
    };
    auto r = exec_cached(tx, "inbox_finish_owned_alike", finish_owned_alike_sql, list, status,
                         as_param(text_or_null(error)), as_param(unroutable_json(unroutable)), key);
    done += status == "pending" ? 0 : r.affected_rows();
  }
  if (!columns.empty()) {
    for (const auto& row : exec_columns(tx, "inbox_finish_owned", finish_owned_sql(), {&columns})) {
      done += row[0].as<bool>() ? 1 : 0;
    }
  }
  return done;
}

// The statements below are each a single UPDATE, atomic by itself: run in autocommit, without
// the round trips of BEGIN and COMMIT.
std::size_t inbox_claims::requeue_stale(std::chrono::seconds lease) {
  pqxx::nontransaction tx{conn_};
  auto r = tx.exec_params(
      "UPDATE wa_webhook_events SET status = 'pending', claimed_at = NULL"
      " WHERE status = 'processing' AND claimed_at IS NOT NULL"
      " AND claimed_at < now() - $1 * interval '1 second'",
      static_cast<std::int64_t>(lease.count()));
  return r.affected_rows();
}

std::size_t inbox_claims::give_back(const std::vector<std::int64_t>& ids, std::int64_t owner_key) {
  if (ids.empty()) {
    return 0;
  }
  const auto list = bigint_list(ids);
  pqxx::nontransaction tx{conn_};
  auto r = tx.exec_params(
      "UPDATE wa_webhook_events SET owner_key = NULL"
      " WHERE id = ANY($1::bigint[]) AND status = 'pending' AND owner_key = $2",
      list, owner_key);
  return r.affected_rows();
}

namespace {

// A session advisory lock on a bigint key shows in pg_locks as classid (high half) and objid
// (low half) with objsubid 1; only locks in this database count.
constexpr const char* locked_keys_sql =
    "SELECT (l.classid::bigint << 32) | l.objid::bigint FROM pg_locks l"
    " WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())";

}  // namespace

// Only keys in wa_inbox_owners are looked at (migration 020): the owned rows are touched only
// for a key found dead, so a sweep with nothing to free costs a read of that small table.
std::size_t inbox_claims::free_orphans(std::int64_t own_key, std::chrono::seconds grace) {
  pqxx::work tx{conn_};
  // SKIP LOCKED: a key another sweeper is freeing (or its owner refreshing) is left to it, not
  // waited for.
  auto dead = tx.exec_params(std::string{"DELETE FROM wa_inbox_owners WHERE owner_key IN ("
                                         " SELECT owner_key FROM wa_inbox_owners WHERE owner_key <> $1"
                                         " AND seen_at < now() - $2 * interval '1 second'"
                                         " AND owner_key NOT IN ("} + locked_keys_sql + ")"
                                 " FOR UPDATE SKIP LOCKED) RETURNING owner_key",
                             own_key, static_cast<std::int64_t>(grace.count()));
  if (dead.empty()) {
    return 0;  // read only: nothing to commit
  }
  std::vector<std::int64_t> keys;
  for (const auto& row : dead) {
    keys.push_back(row[0].as<std::int64_t>());
  }
  // The registry rows go with the rows they free, in one transaction: a key is never forgotten
  // while rows of it are still owned. This walks the owned index (no index leads by owner_key),
  // once per dead key: when a process died or a key was retired.
  auto r = tx.exec_params("UPDATE wa_webhook_events SET owner_key = NULL"
                          " WHERE status = 'pending' AND owner_key = ANY($1::bigint[])",
                          bigint_list(keys));
  tx.commit();
  return r.affected_rows();
}

std::size_t inbox_claims::free_all_orphans(std::int64_t own_key, std::chrono::seconds grace) {
  pqxx::nontransaction tx{conn_};
  auto r = tx.exec_params(
      std::string{"UPDATE wa_webhook_events SET owner_key = NULL"
                  " WHERE status = 'pending' AND owner_key IS NOT NULL AND owner_key <> $1"
                  " AND received_at < now() - $2 * interval '1 second' AND owner_key NOT IN ("} +
          locked_keys_sql + ")",
      own_key, static_cast<std::int64_t>(grace.count()));
  return r.affected_rows();
}

std::int64_t inbox_claims::take_owner_key() {
  std::random_device rd;
  for (int attempt = 0; attempt < 4; ++attempt) {
    const auto key = static_cast<std::int64_t>(
        (((static_cast<std::uint64_t>(rd()) << 32) | rd()) & ((1ULL << 62) - 1)) | 1);
    if (retake_owner_key(key)) {
      return key;
    }
  }
  return 0;
}

bool inbox_claims::retake_owner_key(std::int64_t key) {
  bool locked = false;
  {
    pqxx::nontransaction tx{conn_};
    locked = tx.exec_params("SELECT pg_try_advisory_lock($1)", key)[0][0].as<bool>();
  }
  if (!locked) {
    return false;
  }
  // Registered only once held, so a sweep never finds the key registered and unlocked while
  // its holder lives (beyond a lost connection, which the grace covers).
  refresh_owner_key(key);
  return true;
}

void inbox_claims::refresh_owner_key(std::int64_t key) {
  pqxx::nontransaction tx{conn_};
  tx.exec_params("INSERT INTO wa_inbox_owners (owner_key) VALUES ($1)"
                 " ON CONFLICT (owner_key) DO UPDATE SET seen_at = now()",
                 key);
}

std::size_t inbox_claims::requeue_routable() {
  pqxx::nontransaction tx{conn_};
  auto r = tx.exec(
      "UPDATE wa_webhook_events SET status = 'pending', error = NULL WHERE status = 'unroutable'"
      " AND unroutable_phone_ids && ARRAY(SELECT whatsapp_phone_number_id"
      "   FROM mod_chat_widget_settings WHERE whatsapp_phone_number_id IS NOT NULL)");
  return r.affected_rows();
}

std::size_t inbox_claims::requeue_failed(int max_attempts) {
  pqxx::nontransaction tx{conn_};
  auto r = tx.exec_params(
      "UPDATE wa_webhook_events SET status = 'pending' WHERE status = 'failed' AND attempts < $1"
      " AND processed_at < now() - attempts * attempts * interval '10 seconds'",
      max_attempts);
  return r.affected_rows();
}

std::int64_t inbox_claims::pending_lag_ms(std::int64_t oldest_held) {
  pqxx::nontransaction nt{conn_};
  // Rows nobody owns through their own index; owned rows only as the oldest the caller holds,
  // by primary key: the owned index's entries of finished rows would cost a heap visit each
  // (migration 020), and another process's rows are in that process's own gauge.
  auto r = nt.exec_params(
      "SELECT coalesce(extract(epoch from now() - least("
      "   (SELECT received_at FROM wa_webhook_events WHERE status = 'pending' AND owner_key IS NULL"
      "    ORDER BY id LIMIT 1),"
      "   (SELECT received_at FROM wa_webhook_events WHERE id = $1 AND status = 'pending')"
      " )) * 1000, 0)::bigint",
      oldest_held);
  return r[0][0].as<std::int64_t>();
}

}  // namespace wachat::infra

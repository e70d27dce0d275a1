// infra::inbox_claims against a real PostgreSQL: a claim is a row lock held by an open
// transaction, so another claimer skips the rows, and they come back the moment the holder's
// connection is gone (a process that died) without any lease or write.
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <thread>
#include <pqxx/pqxx>

#include "infra/inbox_claims.hpp"
#include "infra/migrations.hpp"
#include "support/pg_control.hpp"
#include "support/test_env.hpp"

using namespace wachat;

namespace {

struct inbox_db {
  std::string url;
  pqxx::connection conn;

  inbox_db() : url(make_url()), conn(url) {}

  static std::string make_url() {
    auto url = test::fresh_database();
    infra::apply_migrations(url);
    return url;
  }

  // `n` pending rows; returns the first id.
  std::int64_t add_pending(int n) {
    pqxx::work w{conn};
    std::int64_t first = 0;
    for (int i = 0; i < n; ++i) {
      auto r = w.exec("INSERT INTO wa_webhook_events (body, status) VALUES ('{}', 'pending')"
                      " RETURNING id");
      if (i == 0) {
        first = r[0][0].as<std::int64_t>();
      }
    }
    w.commit();
    return first;
  }

  std::string scalar(const std::string& sql) { return test::query_scalar(url, sql); }
};

std::vector<std::int64_t> ids_of(const std::vector<infra::claimed_event>& rows) {
  std::vector<std::int64_t> out;
  for (const auto& r : rows) {
    out.push_back(r.id);
  }
  return out;
}

}  // namespace

TEST_CASE("claimed rows are skipped by other claimers and free again when the holder dies") {
  inbox_db db;
  auto first = db.add_pending(3);

  auto holder = std::make_unique<pqxx::connection>(db.url);
  auto held = std::make_unique<pqxx::work>(*holder);
  auto mine = infra::inbox_claims::claim(*held, 2, 0);
  REQUIRE(ids_of(mine) == std::vector<std::int64_t>{first, first + 1});
  CHECK(mine[0].body == "{}");

  {
    pqxx::connection other{db.url};
    pqxx::work w{other};
    CHECK(ids_of(infra::inbox_claims::claim(w, 10, 0)) == std::vector<std::int64_t>{first + 2});
  }
  // Nothing was written by claiming: the rows are still plain 'pending'.
  CHECK(db.scalar("SELECT count(*) FROM wa_webhook_events WHERE status = 'pending'") == "3");

  // The holder's process dies: its connection closes without a commit.
  held.reset();
  holder.reset();
  pqxx::connection other{db.url};
  pqxx::work w{other};
  CHECK(ids_of(infra::inbox_claims::claim(w, 10, 0)) ==
        std::vector<std::int64_t>{first, first + 1, first + 2});
}

TEST_CASE("a claim looks above the given id only") {
  inbox_db db;
  auto first = db.add_pending(4);
  pqxx::work w{db.conn};
  CHECK(ids_of(infra::inbox_claims::claim(w, 10, first + 1)) ==
        std::vector<std::int64_t>{first + 2, first + 3});
}

TEST_CASE("finishing records each row's outcome and counts the attempt") {
  inbox_db db;
  auto first = db.add_pending(3);
  {
    pqxx::work w{db.conn};
    auto rows = infra::inbox_claims::claim(w, 10, 0);
    REQUIRE(rows.size() == 3);
    infra::inbox_claims::finish(
        w, {{first, "processed", std::nullopt, {}},
            {first + 1, "unroutable", std::string{"no site has phone_number_id 42"}, {"42"}},
            {first + 2, "pending", std::string{"will retry"}, {}}});
    w.commit();
  }
  auto row = [&](std::int64_t id, const std::string& what) {
    return db.scalar("SELECT " + what + " FROM wa_webhook_events WHERE id = " +
                     std::to_string(id));
  };
  CHECK(row(first, "status") == "processed");
  CHECK(row(first, "processed_at IS NOT NULL") == "t");
  CHECK(row(first, "attempts") == "1");
  CHECK(row(first + 1, "status") == "unroutable");
  CHECK(row(first + 1, "unroutable_phone_ids::text") == "{42}");
  CHECK(row(first + 1, "error") == "no site has phone_number_id 42");
  CHECK(row(first + 2, "status") == "pending");
  CHECK(row(first + 2, "processed_at IS NULL") == "t");

  // Only the pending one is claimable again.
  pqxx::work w{db.conn};
  CHECK(ids_of(infra::inbox_claims::claim(w, 10, 0)) == std::vector<std::int64_t>{first + 2});
}

TEST_CASE("owned rows: no claim takes them, their outcome needs the key, and they are freed once the key's connection is gone") {
  inbox_db db;
  auto unowned = db.add_pending(1);
  // A dispatcher's key connection holds the lock; rows are committed with the key (by intake).
  const std::int64_t key = 4242424242424242LL;
  auto writer = std::make_unique<pqxx::connection>(db.url);
  REQUIRE(infra::inbox_claims{*writer}.retake_owner_key(key));  // locked and registered
  const auto registered = "SELECT count(*) FROM wa_inbox_owners WHERE owner_key = " + std::to_string(key);
  CHECK(db.scalar(registered) == "1");
  std::vector<std::int64_t> owned;
  {
    pqxx::work w{*writer};
    for (int i = 0; i < 3; ++i) {
      owned.push_back(w.exec_params("INSERT INTO wa_webhook_events (body, status, owner_key)"
                                    " VALUES ('{}', 'pending', $1) RETURNING id", key)[0][0].as<std::int64_t>());
    }
    w.commit();
  }
  pqxx::connection conn{db.url};
  infra::inbox_claims claims{conn};
  {
    pqxx::work w{conn};
    CHECK(ids_of(infra::inbox_claims::claim(w, 10, 0)) == std::vector<std::int64_t>{unowned});
  }
  // Its owner is alive: the sweeps leave the rows and the registration alone.
  CHECK(claims.free_orphans(0, std::chrono::seconds(0)) == 0);
  CHECK(claims.free_all_orphans(0, std::chrono::seconds(0)) == 0);
  CHECK(db.scalar(registered) == "1");
  // A registration removed (by a sweep that took its holder for dead) comes back at its next
  // refresh.
  db.scalar("DELETE FROM wa_inbox_owners WHERE owner_key = " + std::to_string(key) + " RETURNING 1");
  infra::inbox_claims{*writer}.refresh_owner_key(key);
  CHECK(db.scalar(registered) == "1");
  // An outcome written with another key changes nothing; with the key, it is written and the
  // row is nobody's any more.
  CHECK(claims.finish_owned({{owned[0], "processed", std::nullopt, {}, key + 1}}) == 0);
  CHECK(db.scalar("SELECT status FROM wa_webhook_events WHERE id = " + std::to_string(owned[0])) == "pending");
  CHECK(claims.finish_owned({{owned[0], "unroutable", std::nullopt, {"999"}, key}}) == 1);
  CHECK(db.scalar("SELECT status || ' ' || (owner_key IS NULL) || ' ' || attempts || ' ' || unroutable_phone_ids[1]"
                  " FROM wa_webhook_events WHERE id = " + std::to_string(owned[0])) == "unroutable true 1 999");
  // Given back by its process: anyone's again.
  CHECK(claims.give_back({owned[1]}, key) == 1);
  {
    pqxx::work w{conn};
    CHECK(ids_of(infra::inbox_claims::claim(w, 10, 0)) == std::vector<std::int64_t>{unowned, owned[1]});
  }
  // The lag counts the oldest row the caller holds (an hour old here, the others just in), by id,
  // not by walking the owned rows.
  db.scalar("UPDATE wa_webhook_events SET received_at = now() - interval '1 hour' WHERE id = " +
            std::to_string(owned[2]) + " RETURNING 1");
  CHECK(claims.pending_lag_ms(owned[2]) >= 3600 * 1000);
  CHECK(claims.pending_lag_ms(0) < 3600 * 1000);
  // The key's holder dies: its lock goes with its connection (the server notices at once, but
  // asynchronously), and the sweep frees the rest, with the registration: not the caller's own
  // key, not a key refreshed within the grace period.
  writer.reset();
  const auto key_held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1"
                        " AND ((classid::bigint << 32) | objid::bigint) = " + std::to_string(key);
  for (int i = 0; i < 100 && db.scalar(key_held) != "0"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(db.scalar(key_held) == "0");
  CHECK(claims.free_orphans(key, std::chrono::seconds(0)) == 0);
  CHECK(claims.free_orphans(0, std::chrono::hours(2)) == 0);  // refreshed just now
  CHECK(db.scalar(registered) == "1");
  {
    // Another sweeper is freeing it (holds its registration): skipped, not waited for.
    pqxx::connection other{db.url};
    pqxx::work busy{other};
    busy.exec("SELECT 1 FROM wa_inbox_owners WHERE owner_key = " + std::to_string(key) + " FOR UPDATE");
    // A sweep that waited would wait for `busy`, which this scope holds until it returns: with
    // a lock timeout it fails here, at once, rather than through the test runner's timeout.
    conn.set_variable("lock_timeout", "'2s'");
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(claims.free_orphans(0, std::chrono::seconds(0)) == 0);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1));
    conn.set_variable("lock_timeout", "0");
  }
  CHECK(claims.free_orphans(0, std::chrono::seconds(0)) == 1);
  CHECK(db.scalar("SELECT owner_key IS NULL FROM wa_webhook_events WHERE id = " + std::to_string(owned[2])) == "t");
  CHECK(db.scalar(registered) == "0");
  CHECK(claims.free_orphans(0, std::chrono::seconds(0)) == 0);
  {
    pqxx::work w{conn};
    CHECK(ids_of(infra::inbox_claims::claim(w, 10, 0)) == std::vector<std::int64_t>{unowned, owned[1], owned[2]});
  }
}

TEST_CASE("rows of a key nobody registered (a process older than migration 020) are freed by the start-up sweep, once old enough") {
  inbox_db db;
  const std::int64_t key = 777000777;
  auto add_owned = [&](const std::string& age) {
    return db.scalar("INSERT INTO wa_webhook_events (body, status, owner_key, received_at)"
                     " VALUES ('{}', 'pending', " + std::to_string(key) + ", now() - interval '" + age +
                     "') RETURNING id");
  };
  auto fresh = add_owned("1 second");
  auto old = add_owned("10 minutes");
  pqxx::connection conn{db.url};
  infra::inbox_claims claims{conn};
  CHECK(claims.free_orphans(0, std::chrono::seconds(0)) == 0);  // not registered: not looked at
  CHECK(claims.free_all_orphans(key, std::chrono::seconds(5)) == 0);  // the caller's own
  CHECK(claims.free_all_orphans(0, std::chrono::seconds(5)) == 1);
  CHECK(db.scalar("SELECT owner_key IS NULL FROM wa_webhook_events WHERE id = " + old) == "t");
  CHECK(db.scalar("SELECT owner_key FROM wa_webhook_events WHERE id = " + fresh) == std::to_string(key));
}

TEST_CASE("owned rows that ended alike are written together, each only under its own key; the rest row by row") {
  inbox_db db;
  const std::int64_t key = 5151515151LL;
  // 20 rows owned by `key`, one by another key.
  const auto first = std::stoll(db.scalar(
      "WITH n AS (INSERT INTO wa_webhook_events (body, status, owner_key) SELECT '{}', 'pending', " +
      std::to_string(key) + " FROM generate_series(1, 20) RETURNING id) SELECT min(id) FROM n"));
  db.scalar("UPDATE wa_webhook_events SET owner_key = 99 WHERE id = " + std::to_string(first + 8) + " RETURNING 1");
  std::vector<infra::event_finish> rows;
  for (int i = 0; i < 9; ++i) {  // processed alike; the 9th is no longer ours
    rows.push_back({first + i, "processed", std::nullopt, {}, key});
  }
  for (int i = 9; i < 17; ++i) {  // unroutable alike, with the ids kept
    rows.push_back({first + i, "unroutable", std::nullopt, {"999", "it's \"quoted\""}, key});
  }
  for (int i = 17; i < 19; ++i) {  // given back alike, but too few to group
    rows.push_back({first + i, "pending", std::nullopt, {}, key});
  }
  rows.push_back({first + 19, "failed", std::string{"no\0way", 6}, {}, key});  // alone
  pqxx::connection conn{db.url};
  CHECK(infra::inbox_claims{conn}.finish_owned(rows) == 8 + 8 + 1);
  const auto range = " FROM wa_webhook_events WHERE id BETWEEN " + std::to_string(first) + " AND " +
                     std::to_string(first + 19);
  CHECK(db.scalar("SELECT string_agg(status || ':' || coalesce(owner_key::text, '-') || ':' || attempts || ':' ||"
                  " (processed_at IS NOT NULL), ',' ORDER BY id)" + range) ==
        "processed:-:1:true,processed:-:1:true,processed:-:1:true,processed:-:1:true,processed:-:1:true,"
        "processed:-:1:true,processed:-:1:true,processed:-:1:true,pending:99:0:false,"
        "unroutable:-:1:true,unroutable:-:1:true,unroutable:-:1:true,unroutable:-:1:true,unroutable:-:1:true,"
        "unroutable:-:1:true,unroutable:-:1:true,unroutable:-:1:true,"
        "pending:-:0:false,pending:-:0:false,failed:-:1:true");
  CHECK(db.scalar("SELECT count(*)" + range + " AND unroutable_phone_ids = ARRAY['999', 'it''s \"quoted\"']") == "8");
  CHECK(db.scalar("SELECT error" + range + " AND status = 'failed'") == "noway");
  CHECK(db.scalar("SELECT count(*)" + range + " AND error IS NOT NULL") == "1");

  // Alike and many: failed with the same error (NUL, invalid UTF-8), and given back at a stop.
  const auto more = std::stoll(db.scalar(
      "WITH n AS (INSERT INTO wa_webhook_events (body, status, owner_key) SELECT '{}', 'pending', " +
      std::to_string(key) + " FROM generate_series(1, 16) RETURNING id) SELECT min(id) FROM n"));
  rows.clear();
  for (int i = 0; i < 8; ++i) {
    rows.push_back({more + i, "failed", std::string{"bad \xff\0byte", 10}, {"\xfe" "1"}, key});
    rows.push_back({more + 8 + i, "pending", std::nullopt, {}, key});
  }
  CHECK(infra::inbox_claims{conn}.finish_owned(rows) == 8);
  const auto range2 = " FROM wa_webhook_events WHERE id BETWEEN " + std::to_string(more) + " AND " +
                      std::to_string(more + 15);
  CHECK(db.scalar("SELECT count(DISTINCT error)" + range2 + " AND status = 'failed' AND attempts = 1"
                  " AND owner_key IS NULL AND error LIKE 'bad %byte' AND unroutable_phone_ids[1] LIKE '%1'") == "1");
  CHECK(db.scalar("SELECT count(*)" + range2 + " AND status = 'failed'") == "8");
  CHECK(db.scalar("SELECT count(*)" + range2 + " AND status = 'pending' AND owner_key IS NULL AND attempts = 0"
                  " AND processed_at IS NULL") == "8");
}

// infra::inbox_claims against a real PostgreSQL: a claim is a row lock held by an open
// transaction, so another claimer skips the rows, and they come back the moment the holder's
// connection is gone (a process that died) without any lease or write.
#include <catch2/catch.hpp>
#include <memory>
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

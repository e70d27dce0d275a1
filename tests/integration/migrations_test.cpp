#include <catch2/catch.hpp>
#include <pqxx/pqxx>
#include <thread>

#include "infra/migrations.hpp"
#include "support/test_env.hpp"

using namespace wachat;

TEST_CASE("migrations apply once, in order, and record themselves") {
  auto url = test::fresh_database();
  auto first = infra::apply_migrations(url);
  CHECK(first == static_cast<int>(infra::embedded_migrations().size()));
  CHECK(infra::apply_migrations(url) == 0);
  pqxx::connection c{url};
  pqxx::work w{c};
  auto r = w.exec("SELECT number FROM schema_migrations ORDER BY number");
  REQUIRE(r.size() == infra::embedded_migrations().size());
  for (std::size_t i = 0; i < r.size(); ++i) {
    CHECK(r[i][0].as<int>() == infra::embedded_migrations()[i].number);
  }
  CHECK(w.exec("SELECT to_regclass('wa_webhook_events') IS NOT NULL")[0][0].as<bool>());
}

TEST_CASE("two processes migrating at once do not race") {
  auto url = test::fresh_database();
  int a = -1, b = -1;
  std::thread t1{[&] { a = infra::apply_migrations(url); }};
  std::thread t2{[&] { b = infra::apply_migrations(url); }};
  t1.join();
  t2.join();
  CHECK(a + b == static_cast<int>(infra::embedded_migrations().size()));
  CHECK((a == 0 || b == 0));
}

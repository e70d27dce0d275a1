#include <catch2/catch.hpp>

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/test_env.hpp"

using namespace wachat;

TEST_CASE("healthz, readyz and metrics answer") {
  test::wachatd srv{test::fresh_database()};
  CHECK(test::http_get(srv.port(), "/healthz").status == 200);
  CHECK(test::http_get(srv.port(), "/readyz").status == 200);
  auto m = test::http_get(srv.port(), "/metrics");
  CHECK(m.status == 200);
  CHECK(m.body.find("wachat_http_requests_total{route=\"/healthz\",status=\"200\"} ") !=
        std::string::npos);
}

TEST_CASE("unknown paths answer 404 with the JSON error shape") {
  test::wachatd srv{test::fresh_database()};
  auto r = test::http_get(srv.port(), "/nope");
  CHECK(r.status == 404);
  CHECK(r.body == R"({"error":{"code":"not_found","message":"No such resource."}})");
}

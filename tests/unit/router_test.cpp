#include <catch2/catch.hpp>

#include "http/router.hpp"
#include "infra/url.hpp"

using namespace wachat::http;
using namespace wachat::infra;

TEST_CASE("routes match literal and parameter segments") {
  router r;
  r.add(bhttp::verb::get, "/api/conversations/{id}", 10, nullptr);
  r.add(bhttp::verb::patch, "/api/conversations/{id}", 10, nullptr);
  r.add(bhttp::verb::get, "/api/conversations/{id}/messages", 10, nullptr);
  auto m = r.match(bhttp::verb::get, "/api/conversations/abc%2Fdef");
  REQUIRE(m.matched);
  CHECK(m.params["id"] == "abc/def");
  CHECK(r.match(bhttp::verb::get, "/api/conversations/x/messages").matched->pattern ==
        "/api/conversations/{id}/messages");
  auto wrong = r.match(bhttp::verb::post, "/api/conversations/x");
  CHECK_FALSE(wrong.matched);
  CHECK(wrong.path_known);
  CHECK_FALSE(r.match(bhttp::verb::get, "/api/conversations/").matched);
  CHECK_FALSE(r.match(bhttp::verb::get, "/api/conversations/%zz").matched);
  CHECK_FALSE(r.match(bhttp::verb::get, "/api/other").path_known);
}

TEST_CASE("query strings decode") {
  auto q = parse_query("hub.mode=subscribe&hub.verify_token=a%20b+c&empty=&bad=%z");
  CHECK(query_value(q, "hub.mode") == "subscribe");
  CHECK(query_value(q, "hub.verify_token") == "a b c");
  CHECK(query_value(q, "empty") == "");
  CHECK_FALSE(query_value(q, "bad"));
  CHECK(split_target("/a/b?x=1").first == "/a/b");
  CHECK(split_target("/a/b?x=1").second == "x=1");
}

// The dashboard API under bad input: hostile ids, malformed JSON, limits, cursors, tenancy
// (API.md §3, issue "Bad input that must be handled").
#include <catch2/catch.hpp>
#include <ctime>
#include <set>

#include "support/pg_control.hpp"
#include "support/wachat_fixture.hpp"

using namespace wachat;
using nlohmann::json;

namespace {

const std::string phone_id = "106540352242922";

std::int64_t now_s() { return static_cast<std::int64_t>(std::time(nullptr)); }

// One conversation with `n` text messages, oldest first, each a second apart.
std::string conversation_with(test::wachat_fixture& f, int n, const std::string& from = "16505551234") {
  for (int i = 0; i < n; ++i) {
    auto body = test::text_webhook(phone_id, from, "wamid." + from + "." + std::to_string(i),
                                   now_s() - 1000 + i, "message " + std::to_string(i));
    REQUIRE(f.post_webhook(body).status == 200);
  }
  json list;
  REQUIRE(test::eventually([&] {
    list = f.call_json("GET", "/api/sites/acme/conversations")["conversations"];
    for (const auto& c : list) {
      if (c["visitor"]["whatsapp_phone"] == from) {
        auto msgs = f.call_json("GET", "/api/conversations/" + c["id"].get<std::string>() + "/messages?limit=200");
        return msgs["messages"].size() == static_cast<std::size_t>(n);
      }
    }
    return false;
  }));
  for (const auto& c : list) {
    if (c["visitor"]["whatsapp_phone"] == from) {
      return c["id"];
    }
  }
  FAIL("conversation not found");
  return {};
}

std::string error_code(const test::http_result& r) {
  auto j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("error")) {
    return "<no error object: " + r.body + ">";
  }
  return j["error"]["code"];
}

}  // namespace

TEST_CASE("messages page through a conversation with cursors, oldest first within a page") {
  test::wachat_fixture f;
  f.make_site("acme", phone_id);
  auto conv = conversation_with(f, 7);
  std::vector<std::string> seen;
  std::string target = "/api/conversations/" + conv + "/messages?limit=3";
  int pages = 0;
  while (true) {
    auto page = f.call_json("GET", target);
    auto msgs = page["messages"];
    REQUIRE(msgs.size() <= 3);
    std::vector<std::string> texts;
    for (const auto& m : msgs) {
      texts.push_back(m["content"]);
    }
    seen.insert(seen.begin(), texts.begin(), texts.end());  // pages go backwards in time
    ++pages;
    if (page["next_cursor"].is_null()) {
      break;
    }
    REQUIRE(pages < 10);
    target = "/api/conversations/" + conv + "/messages?limit=3&cursor=" + page["next_cursor"].get<std::string>();
  }
  CHECK(pages == 3);
  REQUIRE(seen.size() == 7);
  for (int i = 0; i < 7; ++i) {
    CHECK(seen[static_cast<std::size_t>(i)] == "message " + std::to_string(i));
  }
}

TEST_CASE("conversations page with cursors, newest activity first, each exactly once") {
  test::wachat_fixture f;
  f.make_site("acme", phone_id);
  for (int v = 0; v < 5; ++v) {
    conversation_with(f, 1, "1650555000" + std::to_string(v));
  }
  std::set<std::string> ids;
  std::string target = "/api/sites/acme/conversations?limit=2";
  std::string last_activity = "9999";
  for (int pages = 0; pages < 10; ++pages) {
    auto page = f.call_json("GET", target);
    for (const auto& c : page["conversations"]) {
      CHECK(ids.insert(c["id"].get<std::string>()).second);
      CHECK(c["last_message_at"].get<std::string>() <= last_activity);
      last_activity = c["last_message_at"];
    }
    if (page["next_cursor"].is_null()) {
      break;
    }
    target = "/api/sites/acme/conversations?limit=2&cursor=" + page["next_cursor"].get<std::string>();
  }
  CHECK(ids.size() == 5);
}

TEST_CASE("limit out of range and bad cursors answer clear errors") {
  test::wachat_fixture f;
  f.make_site("acme", phone_id);
  auto conv = conversation_with(f, 1);
  for (const auto* q : {"limit=0", "limit=201", "limit=-1", "limit=abc", "limit=99999999999999999999"}) {
    auto r = f.call("GET", std::string{"/api/sites/acme/conversations?"} + q);
    CHECK(r.status == 422);
    CHECK(error_code(r) == "invalid_field");
    r = f.call("GET", "/api/conversations/" + conv + "/messages?" + q);
    CHECK(r.status == 422);
  }
  CHECK(f.call("GET", "/api/sites/acme/conversations?limit=200").status == 200);
  for (const auto* c : {"garbage", "%00", "Zm9v", "MTIzNDU=", "LTEuLTE=", "OTk5OTk5OTk5OTk5OTk5OTk5OTkuMQ=="}) {
    auto r = f.call("GET", std::string{"/api/sites/acme/conversations?cursor="} + c);
    CHECK(r.status == 400);
    CHECK(error_code(r) == "invalid_request");
    r = f.call("GET", "/api/conversations/" + conv + "/messages?cursor=" + c);
    CHECK(r.status == 400);
  }
}

TEST_CASE("malformed JSON answers 400 invalid_json; unknown fields are ignored") {
  test::wachat_fixture f;
  f.make_site("acme", phone_id);
  auto conv = conversation_with(f, 1);
  for (const auto* body : {"{", "[]", "null", "\"text\"", "{\"status\": }", "\xff\xfe{}"}) {
    auto r = f.call("PATCH", "/api/conversations/" + conv, body);
    CHECK(r.status == 400);
    CHECK(error_code(r) == "invalid_json");
    r = f.call("POST", "/api/sites", body);
    CHECK(r.status == 400);
    r = f.call("PUT", "/api/sites/acme/agents/ann", body);
    CHECK(r.status == 400);
  }
  auto r = f.call("PATCH", "/api/conversations/" + conv, R"({"status":"active","colour":"blue","x":{"y":[1]}})");
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["status"] == "active");
  r = f.call("PUT", "/api/sites/acme/agents/ann", R"({"name":"Ann\u0000Evil"})");
  CHECK(r.status == 422);
  r = f.call("PATCH", "/api/conversations/" + conv, R"({"status": 3})");
  CHECK(r.status == 422);
  CHECK(error_code(r) == "invalid_field");
}

TEST_CASE("hostile path ids answer 404 and change nothing") {
  test::wachat_fixture f;
  f.make_site("acme", phone_id);
  auto conv = conversation_with(f, 1);
  auto before = test::query_scalar(f.db, "SELECT count(*) || ':' || max(updated_at)::text FROM mod_chat_conversations");
  std::vector<std::string> hostile = {
      "'%20OR%201=1--", "%27", "acme%00x", "..", "%2e%2e", "..%2f..%2fetc%2fpasswd",
      std::string(5000, 'a'), "%ff%fe", "1%00", "-1", "0", "1e3", "00000000000000000000001", "%E2%80%AE",
      conv + "%00"};
  for (const auto& id : hostile) {
    for (const auto& target : {"/api/conversations/" + id, "/api/conversations/" + id + "/messages",
                               "/api/conversations/" + id + "/window", "/api/sites/" + id + "/whatsapp/status",
                               "/api/sites/" + id + "/conversations"}) {
      auto r = f.call("GET", target);
      INFO(target.substr(0, 120));
      CHECK((r.status == 404 || r.status == 431 || r.status == 414));
      CHECK(r.body.find("acme") == std::string::npos);
    }
    auto r = f.call("PATCH", "/api/conversations/" + id, R"({"status":"closed"})");
    CHECK((r.status == 404 || r.status == 431 || r.status == 414));
  }
  CHECK(test::query_scalar(f.db, "SELECT count(*) || ':' || max(updated_at)::text FROM mod_chat_conversations") == before);
  // The server is still fine.
  CHECK(f.call("GET", "/api/conversations/" + conv).status == 200);
}

TEST_CASE("a site token sees nothing of another site and cannot make admin calls") {
  test::wachat_fixture f;
  f.make_site("acme", phone_id);
  f.make_site("globex", "200000000000001");
  auto conv = conversation_with(f, 1);
  auto globex = f.site_token("globex");
  for (const auto& target : {"/api/conversations/" + conv, "/api/conversations/" + conv + "/messages",
                             "/api/conversations/" + conv + "/window", std::string{"/api/sites/acme/whatsapp/status"},
                             std::string{"/api/sites/acme/conversations"}, std::string{"/api/sites/acme/agents"}}) {
    auto r = f.call("GET", target, {}, globex);
    INFO(target);
    CHECK(r.status == 404);
    CHECK(error_code(r) == "not_found");
  }
  CHECK(f.call("PATCH", "/api/conversations/" + conv, R"({"status":"closed"})", globex).status == 404);
  CHECK(f.call("POST", "/api/conversations/" + conv + "/read", "{}", globex).status == 404);
  CHECK(f.call("DELETE", "/api/sites/acme/whatsapp", {}, globex).status == 404);
  CHECK(f.call("GET", "/api/sites", {}, globex).status == 403);
  CHECK(f.call("POST", "/api/sites", R"({"id":"evil"})", globex).status == 403);
  CHECK(f.call("POST", "/api/sites/globex/tokens", {}, globex).status == 403);
  CHECK(f.call("GET", "/api/sites/globex/whatsapp/status", {}, globex).status == 200);
  CHECK(f.call("GET", "/api/sites", {}, "").status == 401);
  CHECK(f.call("GET", "/api/sites", {}, "not-a-token").status == 401);
  CHECK(f.call_json("GET", "/api/conversations/" + conv)["status"] == "pending");
}

TEST_CASE("reopening a conversation while the visitor has another open one answers 409") {
  test::wachat_fixture f;
  f.make_site("acme", phone_id);
  auto first = conversation_with(f, 1);
  f.call_json("PATCH", "/api/conversations/" + first, {{"status", "closed"}});
  REQUIRE(f.post_webhook(test::text_webhook(phone_id, "16505551234", "wamid.next", now_s(), "again")).status == 200);
  REQUIRE(test::eventually([&] {
    return f.call_json("GET", "/api/sites/acme/conversations")["conversations"].size() == 2;
  }));
  auto r = f.call("PATCH", "/api/conversations/" + first, R"({"status":"active"})");
  CHECK(r.status == 409);
  CHECK(error_code(r) == "conversation_conflict");
  CHECK(f.call_json("GET", "/api/conversations/" + first)["status"] == "closed");
  // The connection and the server stay usable.
  CHECK(f.call("GET", "/api/conversations/" + first).status == 200);
}

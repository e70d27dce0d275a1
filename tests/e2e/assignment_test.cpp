// Auto-assignment and notifications (API.md §3.3, §3.5, DESIGN.md §3 item 8): the real
// wachatd (two of them on one database, too), PostgreSQL, and live events over a socket.
#include <catch2/catch.hpp>

#include <ctime>
#include <map>
#include <thread>

#include "support/pg_control.hpp"
#include "support/sse_client.hpp"
#include "support/wachat_fixture.hpp"

using namespace wachat;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::string phone_id = "1065400077";

void set_up(test::wachat_fixture& f, bool auto_assign, const std::map<std::string, json>& agents) {
  f.make_site("acme", phone_id);
  test::query_scalar(f.db, std::string{"UPDATE mod_chat_widget_settings SET auto_assign = "} +
                               (auto_assign ? "true" : "false") + " WHERE site_id = 'acme' RETURNING 1");
  for (const auto& [id, agent] : agents) {
    f.call_json("PUT", "/api/sites/acme/agents/" + id, agent);
  }
}

void customer_writes(test::wachat_fixture& f, int n) {
  auto phone = "1650555" + std::to_string(1000 + n);
  REQUIRE(f.post_webhook(test::text_webhook(phone_id, phone, "wamid.A" + std::to_string(n), std::time(nullptr), "hello"))
              .status == 200);
}

std::map<std::string, int> active_chats(test::wachat_fixture& f) {
  std::map<std::string, int> out;
  auto agents = f.call_json("GET", "/api/sites/acme/agents");
  for (const auto& a : agents["agents"]) out[a["id"].get<std::string>()] = a["active_chats"].get<int>();
  return out;
}

std::string count(test::wachat_fixture& f, const std::string& where) {
  return test::query_scalar(f.db, "SELECT count(*) FROM mod_chat_notifications WHERE " + where);
}

}  // namespace

TEST_CASE("with auto_assign a new conversation goes to the least busy online agent under max_chats, who is told") {
  test::wachat_fixture f;
  set_up(f, true,
         {{"ann", {{"name", "Ann"}, {"status", "online"}, {"max_chats", 2}}},
          {"bob", {{"name", "Bob"}, {"status", "online"}, {"max_chats", 2}}},
          {"cat", {{"name", "Cat"}, {"status", "away"}, {"max_chats", 9}}}});
  test::sse_client events{f.port(), "/api/sites/acme/events", test::admin_token};
  REQUIRE(events.is_stream());

  customer_writes(f, 1);
  auto first = events.wait_for([](const test::sse_event& e) { return e.event == "notification"; });
  REQUIRE(first.found);
  auto n = first.last().json();
  CHECK(n["type"] == "notification");
  CHECK(n["site_id"] == "acme");
  CHECK(n["notification"]["agent_id"] == "ann");  // a tie at 0 chats: never assigned, then by id
  CHECK(n["notification"]["type"] == "conversation_assigned");
  CHECK(n["conversation"]["assigned_agent_id"] == "ann");
  CHECK(n["conversation_id"] == n["conversation"]["id"]);

  for (int i = 2; i <= 5; ++i) customer_writes(f, i);
  REQUIRE(test::eventually([&] { return count(f, "type = 'new_conversation'") == "2"; }));
  // Two each, never more than max_chats; the fifth found nobody free and went to every online agent.
  CHECK(active_chats(f) == std::map<std::string, int>{{"ann", 2}, {"bob", 2}, {"cat", 0}});
  CHECK(count(f, "type = 'conversation_assigned'") == "4");
  CHECK(count(f, "type = 'new_conversation' AND agent_id IN ('ann', 'bob')") == "2");
  CHECK(count(f, "agent_id = 'cat'") == "0");
  CHECK(test::query_scalar(f.db, "SELECT count(*) FROM mod_chat_conversations WHERE assigned_agent_id IS NULL") == "1");
  auto rest = events.wait_for(
      [](const test::sse_event& e) {
        return e.event == "notification" && e.json()["notification"]["type"] == "new_conversation";
      });
  CHECK(rest.found);
}

TEST_CASE("without auto_assign nobody is assigned and every online agent is told of a new conversation") {
  test::wachat_fixture f;
  set_up(f, false,
         {{"ann", {{"name", "Ann"}, {"status", "online"}, {"max_chats", 2}}},
          {"bob", {{"name", "Bob"}, {"status", "offline"}, {"max_chats", 2}}}});
  customer_writes(f, 1);
  REQUIRE(test::eventually([&] { return count(f, "true") == "1"; }));
  CHECK(count(f, "agent_id = 'ann' AND type = 'new_conversation'") == "1");
  CHECK(test::query_scalar(f.db, "SELECT count(*) FROM mod_chat_conversations WHERE assigned_agent_id IS NOT NULL") == "0");
  std::this_thread::sleep_for(500ms);
  CHECK(count(f, "true") == "1");
}

TEST_CASE("two processes assigning a burst of new conversations at once never over-assign") {
  test::wachat_fixture a;
  set_up(a, true,
         {{"ann", {{"name", "Ann"}, {"status", "online"}, {"max_chats", 3}}},
          {"bob", {{"name", "Bob"}, {"status", "online"}, {"max_chats", 3}}}});
  test::wachat_fixture b{{}, a.db};
  std::thread other([&] {
    for (int i = 100; i < 110; ++i) customer_writes(b, i);
  });
  for (int i = 200; i < 210; ++i) customer_writes(a, i);
  other.join();
  // All twenty conversations stored (webhooks are processed after their 200), then every
  // follow-up done.
  REQUIRE(test::eventually(
      [&] {
        return test::query_scalar(a.db, "SELECT count(*) FROM mod_chat_conversations") == "20" &&
               test::query_scalar(a.db, "SELECT count(*) FROM wa_conversation_jobs") == "0";
      },
      30s));
  CHECK(active_chats(a) == std::map<std::string, int>{{"ann", 3}, {"bob", 3}});
  CHECK(test::query_scalar(a.db, "SELECT count(*) FROM mod_chat_conversations WHERE assigned_agent_id IS NULL") == "14");
  CHECK(count(a, "type = 'conversation_assigned'") == "6");
}

// Agents reply (API.md §3.4 "POST /api/conversations/{id}/messages"): the real wachatd over
// sockets, PostgreSQL, and a fake Graph API answering as Meta documents.
#include <catch2/catch.hpp>
#include <csignal>
#include <ctime>
#include <future>
#include <set>
#include <thread>
#include <pqxx/pqxx>

#include "support/fake_graph.hpp"
#include "support/pg_control.hpp"
#include "support/test_env.hpp"
#include "support/wachat_fixture.hpp"
#include "support/whatsapp_site.hpp"

using namespace wachat;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

using test::customer;
using test::phone_id;
using test::token;
using sending = test::whatsapp_site;

json text(const std::string& t, std::optional<std::string> client_id = std::nullopt) {
  json j{{"type", "text"}, {"text", t}, {"sender_id", "agent-7"}, {"sender_name", "Ann"}};
  if (client_id) j["client_message_id"] = *client_id;
  return j;
}

json body_of(const test::http_result& r) { return json::parse(r.body); }

// The site's conversation first, then one for each of `phones` (each customer writes first).
std::vector<std::string> with_customers(sending& s, const std::vector<std::string>& phones) {
  for (const auto& who : phones) {
    auto ts = static_cast<std::int64_t>(std::time(nullptr)) - 30;
    REQUIRE(s.f->post_webhook(test::text_webhook(phone_id, who, "wamid.IN" + who, ts, "hello")).status == 200);
  }
  REQUIRE(test::eventually([&] {
    return s.f->call_json("GET", "/api/sites/acme/conversations")["conversations"].size() == phones.size() + 1;
  }));
  std::vector<std::string> conversations{s.conversation};
  auto listed = s.f->call_json("GET", "/api/sites/acme/conversations");
  for (const auto& c : listed["conversations"]) {
    if (c["id"] != s.conversation) conversations.push_back(c["id"].get<std::string>());
  }
  REQUIRE(conversations.size() == phones.size() + 1);
  return conversations;
}

}  // namespace

TEST_CASE("an agent's text reaches Meta once, to the customer's phone, answered 201 with the wamid") {
  sending s;
  auto r = s.send(text("Yes, it ships today.", "c-1"));
  REQUIRE(r.status == 201);
  auto m = body_of(r)["message"];
  CHECK(m["status"] == "sent");
  CHECK(m["sender_type"] == "agent");
  CHECK(m["sender_id"] == "agent-7");
  CHECK(m["sender_name"] == "Ann");
  CHECK(m["content"] == "Yes, it ships today.");
  CHECK(m["content_type"] == "text");
  CHECK(m["whatsapp_message_id"].get<std::string>().rfind("wamid.", 0) == 0);
  auto sent = s.graph.sent_messages();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0]["to"] == customer);
  CHECK(sent[0]["type"] == "text");
  CHECK(sent[0]["text"]["body"] == "Yes, it ships today.");
  CHECK(sent[0]["biz_opaque_callback_data"] == m["id"]);
  auto calls = s.graph.calls_matching("POST", "*/messages");
  REQUIRE(calls.size() == 2);  // the customer's message marked read, then the send
  CHECK(calls[1].path == "/v24.0/" + phone_id + "/messages");
  CHECK(calls[1].headers["authorization"] == "Bearer " + token);

  // The same client_message_id and body: the first outcome again, and Meta hears nothing more.
  auto again = s.send(text("Yes, it ships today.", "c-1"));
  CHECK(again.status == 201);
  CHECK(body_of(again)["message"]["id"] == m["id"]);
  CHECK(s.graph.sent_messages().size() == 1);
  // The same id with another body is refused.
  auto other = s.send(text("Something else", "c-1"));
  CHECK(other.status == 409);
  CHECK(body_of(other)["error"]["code"] == "idempotency_conflict");
  CHECK(s.graph.sent_messages().size() == 1);

  // The conversation shows it after the customer's message.
  auto page = s.f->call_json("GET", "/api/conversations/" + s.conversation + "/messages")["messages"];
  REQUIRE(page.size() == 2);
  CHECK(page[1]["id"] == m["id"]);
  CHECK(page[1]["status"] == "sent");
  CHECK(s.scalar("SELECT count(*) FROM wa_outbox") == "0");
}

TEST_CASE("a closed window refuses free-form sends, storing and sending nothing; a template still goes") {
  sending s{25 * 3600};  // the customer wrote 25 h ago
  auto r = s.send(text("Are you still there?"));
  CHECK(r.status == 409);
  CHECK(body_of(r)["error"]["code"] == "window_closed");
  CHECK(body_of(r)["error"]["message"] == "24-hour window expired. Use template message.");
  CHECK(s.scalar("SELECT count(*) FROM mod_chat_messages WHERE sender_type = 'agent'") == "0");
  CHECK(s.graph.sent_messages().empty());

  s.graph.add_template(test::waba_id, {{"name", "order_update"}, {"language", "en_US"}, {"status", "APPROVED"},
                                       {"category", "UTILITY"},
                                       {"components", json::array({{{"type", "BODY"}, {"text", "Your order is ready."}}})}});
  auto t = s.send({{"type", "template"},
                   {"template", {{"name", "order_update"}, {"language", "en_US"}}},
                   {"sender_id", "agent-7"},
                   {"sender_name", "Ann"}});
  REQUIRE(t.status == 201);
  CHECK(body_of(t)["message"]["content_type"] == "whatsapp_template");
  auto sent = s.graph.sent_messages();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0]["template"]["name"] == "order_update");
  CHECK(sent[0]["template"]["language"]["code"] == "en_US");
}

TEST_CASE("Meta refusing a send because the window is closed (131047) closes it here too") {
  sending s{3600};  // the customer wrote an hour ago: open as far as wachat knows
  REQUIRE(json::parse(s.f->call("GET", "/api/conversations/" + s.conversation + "/window").body)["open"] == true);
  s.graph.fail_next("*/messages", 1, 400, 131047, "Re-engagement message");
  auto refused = s.send(text("hello again"));
  REQUIRE(refused.status == 502);
  CHECK(body_of(refused)["error"]["graph"]["code"] == 131047);
  CHECK(body_of(refused)["message"]["error"]["retryable"] == false);

  auto w = json::parse(s.f->call("GET", "/api/conversations/" + s.conversation + "/window").body);
  CHECK(w["open"] == false);
  CHECK(w["template_required"] == true);
  auto next = s.send(text("and again"));
  CHECK(next.status == 409);
  CHECK(body_of(next)["error"]["code"] == "window_closed");
  CHECK(s.graph.send_calls() == 1);
}

TEST_CASE("a window another process shut is respected by a process that decided its last send on what it knew") {
  sending s{3600};  // open for 23 more hours as far as either process knows
  test::wachat_fixture other{{{"WACHAT_GRAPH_BASE_URL", s.graph.base_url()}}, s.f->db};
  auto first = s.send(text("first"));
  REQUIRE(first.status == 201);
  const auto wamid = body_of(first)["message"]["whatsapp_message_id"].get<std::string>();
  // Meta then reports that send failed with 131047 (the window was closed after all), and the
  // other process takes the webhook: it shuts the window in the store.
  json value = {{"messaging_product", "whatsapp"}, {"metadata", test::metadata(phone_id)},
                {"statuses", {{{"id", wamid}, {"status", "failed"},
                               {"timestamp", std::to_string(std::time(nullptr) - 5)}, {"recipient_id", customer},
                               {"errors", {{{"code", 131047}, {"title", "Re-engagement message"}}}}}}}};
  REQUIRE(other.post_webhook(test::envelope(value)).status == 200);
  REQUIRE(test::eventually([&] {
    return json::parse(other.call("GET", "/api/conversations/" + s.conversation + "/window").body)["open"] == false;
  }));
  // This process kept the facts of its last send (an open window); the store's check sends it
  // back to read them again.
  auto next = s.send(text("second"));
  CHECK(next.status == 409);
  CHECK(body_of(next)["error"]["code"] == "window_closed");
  CHECK(s.graph.send_calls() == 1);
  CHECK(s.scalar("SELECT count(*) FROM mod_chat_messages WHERE content = 'second'") == "0");
}

TEST_CASE("Meta refusing for good answers 502 with Meta's error; the message is failed, not retryable") {
  sending s;
  s.graph.fail_next("*/messages", 1, 400, 131026, "Message undeliverable", 0, "The recipient is not on WhatsApp");
  auto r = s.send(text("hello"));
  REQUIRE(r.status == 502);
  auto b = body_of(r);
  CHECK(b["error"]["code"] == "graph_error");
  CHECK(b["error"]["graph"]["code"] == 131026);
  CHECK(b["error"]["graph"]["title"] == "Message undeliverable");
  CHECK(b["message"]["status"] == "failed");
  CHECK(b["message"]["error"]["code"] == 131026);
  CHECK(b["message"]["error"]["retryable"] == false);
  CHECK(s.graph.send_calls() == 1);  // not tried again
  CHECK(s.scalar("SELECT state FROM wa_outbox") == "failed");  // kept for a retry by hand, in nobody's way
}

TEST_CASE("a passing failure is tried again with back-off and still answered 201 within the wait") {
  sending s;
  s.graph.fail_next("*/messages", 1, 500, 131000, "Something went wrong");
  auto r = s.send(text("hello"));
  REQUIRE(r.status == 201);
  CHECK(body_of(r)["message"]["status"] == "sent");
  CHECK(s.graph.send_calls() == 2);
  CHECK(s.graph.sent_messages().size() == 1);
}

TEST_CASE("a send still retrying when the wait ends answers 202 queued and is delivered later") {
  sending s{60, {{"WACHAT_SEND_WAIT_MS", "300"}}};
  s.graph.fail_next("*/messages", 2, 429, 130429, "Rate limit hit");
  auto r = s.send(text("hello"));
  REQUIRE(r.status == 202);
  auto id = body_of(r)["message"]["id"].get<std::string>();
  CHECK(body_of(r)["message"]["status"] == "queued");
  CHECK(test::eventually([&] {
    return s.scalar("SELECT status FROM mod_chat_messages WHERE id = " + id) == "sent";
  }, std::chrono::seconds(20)));
  CHECK(s.graph.sent_messages().size() == 1);
  CHECK(s.graph.send_calls() == 3);
}

TEST_CASE("one conversation's sends reach Meta in the order they were written, each once") {
  sending s{60, {{"WACHAT_SEND_WAIT_MS", "0"}}};
  // Meta answers slowly: the later sends queue behind the first.
  s.graph.script("POST", "*/messages", test::scripted_response::delayed(std::chrono::milliseconds(100)), 3);
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i) {
    auto r = s.send(text("part " + std::to_string(i)));
    REQUIRE(r.status == 202);
    ids.push_back(body_of(r)["message"]["id"].get<std::string>());
  }
  REQUIRE(test::eventually([&] { return s.graph.sent_messages().size() == 8; }, std::chrono::seconds(15)));
  auto sent = s.graph.sent_messages();
  for (int i = 0; i < 8; ++i) {
    CHECK(sent[i]["text"]["body"] == "part " + std::to_string(i));
    CHECK(sent[i]["biz_opaque_callback_data"] == ids[i]);
  }
  CHECK(s.graph.send_calls() == 8);
  CHECK(test::eventually([&] { return s.scalar("SELECT count(*) FROM wa_outbox") == "0"; }));
}

TEST_CASE("bad send requests get clear errors and change nothing") {
  sending s;
  CHECK(s.send(json("not an object")).status == 400);
  CHECK(s.f->call("POST", "/api/conversations/" + s.conversation + "/messages", "{\"type\":").status == 400);
  auto big = s.send(text(std::string(100 * 1024, 'a')));
  CHECK(big.status == 422);
  CHECK(body_of(big)["error"]["code"] == "invalid_field");
  json img{{"type", "image"}, {"url", "ftp://files.example/a.png"}, {"sender_id", "a"}, {"sender_name", "b"}};
  CHECK(s.send(img).status == 422);
  auto reply = text("re");
  reply["reply_to"] = "wamid.NOPE";
  auto unknown = s.send(reply);
  CHECK(unknown.status == 422);
  CHECK(body_of(unknown)["error"]["code"] == "invalid_field");
  // Another site's token sees no such conversation.
  s.f->call_json("POST", "/api/sites", {{"id", "beta"}}, 201);
  CHECK(s.send(text("hi"), s.f->site_token("beta")).status == 404);
  CHECK(s.f->call("POST", "/api/conversations/999999/messages", text("hi").dump()).status == 404);
  CHECK(s.f->call("POST", "/api/conversations/../messages", text("hi").dump()).status == 404);
  // NUL, which PostgreSQL cannot store: refused alone, never failing other agents' sends.
  auto nul = s.f->call("POST", "/api/conversations/" + s.conversation + "/messages",
                       R"({"type":"text","text":"a\u0000b","sender_id":"a","sender_name":"b"})");
  CHECK(nul.status == 422);
  CHECK(body_of(nul)["error"]["code"] == "invalid_field");
  CHECK(s.scalar("SELECT count(*) FROM mod_chat_messages WHERE sender_type = 'agent'") == "0");
  CHECK(s.graph.sent_messages().empty());

  // A reply to the customer's message carries its wamid as context.
  auto ok = text("re");
  ok["reply_to"] = "wamid.IN1";
  REQUIRE(s.send(ok).status == 201);
  CHECK(s.graph.sent_messages()[0]["context"]["message_id"] == "wamid.IN1");

  // A site token sends to its own site's conversations (authenticated by a gateway worker; the
  // admin's sends skip it), and retries nothing of another site's.
  auto own = s.send(text("from the site's token"), s.f->site_token("acme"));
  CHECK(own.status == 201);
  const auto sent_id = body_of(own)["message"]["id"].get<std::string>();
  auto retry_path = "/api/conversations/" + s.conversation + "/messages/" + sent_id + "/retry";
  CHECK(s.f->call("POST", retry_path, "", s.f->site_token("beta")).status == 404);
  CHECK(s.f->call("POST", retry_path, "", s.f->site_token("acme")).status == 409);  // sent: invalid_state
  CHECK(s.f->call("POST", retry_path, "", "wct_" + std::string(64, '0')).status == 401);
  CHECK(s.graph.sent_messages().size() == 2);
}

TEST_CASE("a site without WhatsApp refuses sends with whatsapp_disabled") {
  sending s;
  REQUIRE(s.f->call("DELETE", "/api/sites/acme/whatsapp").status == 204);
  auto r = s.send(text("hello"));
  CHECK(r.status == 409);
  CHECK(body_of(r)["error"]["code"] == "whatsapp_disabled");
  CHECK(s.graph.sent_messages().empty());
}

TEST_CASE("kill -9 while sends are retrying: after a restart every accepted send reaches Meta exactly once") {
  sending s{60, {{"WACHAT_SEND_WAIT_MS", "0"}, {"WACHAT_SEND_DOUBT_MS", "1000"}}};
  // Meta is failing for now (a passing error: they are retried with back-off).
  s.graph.fail_next("*/messages", -1, 503, 2, "Service temporarily unavailable");
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    auto r = s.send(text("during the outage " + std::to_string(i), "k-" + std::to_string(i)));
    REQUIRE(r.status == 202);
    ids.push_back(body_of(r)["message"]["id"].get<std::string>());
  }
  REQUIRE(test::eventually([&] { return s.graph.send_calls() > 0; }));
  s.f->server->process().signal(SIGKILL);
  REQUIRE(s.f->server->process().wait_exit(5000).has_value());
  s.graph.clear_scripts();  // Meta is back

  // Nothing of the five was lost with the process: the outbox holds them.
  CHECK(s.scalar("SELECT count(*) FROM wa_outbox") == "5");
  test::wachat_fixture again{{{"WACHAT_GRAPH_BASE_URL", s.graph.base_url()}, {"WACHAT_SEND_DOUBT_MS", "1000"}}, s.f->db};
  REQUIRE(test::eventually([&] { return s.graph.sent_messages().size() >= 5; }, std::chrono::seconds(30)));
  std::this_thread::sleep_for(std::chrono::seconds(2));  // nothing more may follow
  auto sent = s.graph.sent_messages();
  REQUIRE(sent.size() == 5);
  for (int i = 0; i < 5; ++i) {
    CHECK(sent[i]["biz_opaque_callback_data"] == ids[i]);  // in order, each once
  }
  CHECK(s.scalar("SELECT count(*) FROM mod_chat_messages WHERE sender_type = 'agent' AND status = 'sent'") == "5");
  CHECK(s.scalar("SELECT count(*) FROM wa_outbox") == "0");
}

namespace {

// Meta's status webhook for one of our sends, naming it as our send set it.
std::string status_webhook(const std::string& wamid, const std::string& status, const std::string& ours) {
  json st{{"id", wamid},
          {"status", status},
          {"timestamp", std::to_string(std::time(nullptr))},
          {"recipient_id", customer},
          {"biz_opaque_callback_data", ours}};
  return test::envelope({{"messaging_product", "whatsapp"}, {"metadata", test::metadata(phone_id)}, {"statuses", json::array({st})}});
}

}  // namespace

TEST_CASE("an answer lost after Meta took the send: a status naming it is adopted and nothing is sent again") {
  sending s{60, {{"WACHAT_SEND_WAIT_MS", "1000"}, {"WACHAT_SEND_DOUBT_MS", "3000"}}};
  s.graph.script("POST", "*/messages", test::scripted_response::close_connection(), 1);
  auto r = s.send(text("did this arrive?"));
  REQUIRE(r.status == 202);  // in doubt: neither sent nor failed
  auto id = body_of(r)["message"]["id"].get<std::string>();
  REQUIRE(s.graph.send_calls() == 1);

  // Meta had taken it: its status webhook names our message id.
  REQUIRE(s.f->post_webhook(status_webhook("wamid.ADOPTED1", "delivered", id)).status == 200);
  REQUIRE(test::eventually([&] {
    return s.scalar("SELECT whatsapp_message_id || ' ' || status FROM mod_chat_messages WHERE id = " + id) ==
           "wamid.ADOPTED1 delivered";
  }));
  std::this_thread::sleep_for(std::chrono::seconds(5));  // past the doubt period and a sweep
  CHECK(s.graph.send_calls() == 1);
  CHECK(s.scalar("SELECT count(*) FROM wa_outbox") == "0");
}

TEST_CASE("a status Meta reports before its answer to the send is kept: 201 with that status, never back to sent") {
  sending s{60, {{"WACHAT_SEND_WAIT_MS", "8000"}}};
  json answer{{"messaging_product", "whatsapp"},
              {"contacts", json::array({{{"input", customer}, {"wa_id", customer}}})},
              {"messages", json::array({{{"id", "wamid.EARLY1"}}})}};
  auto slow = test::scripted_response::json(200, answer.dump());
  slow.delay = 1500ms;
  s.graph.script("POST", "*/messages", slow, 1);
  auto pending = std::async(std::launch::async, [&] { return s.send(text("quick question")); });
  REQUIRE(test::eventually([&] { return s.graph.send_calls() == 1; }));
  // Meta's status webhook, before its answer reached us; without callback data it names the
  // message by its wamid only, which nobody here knows yet.
  json st{{"id", "wamid.EARLY1"}, {"status", "delivered"}, {"timestamp", std::to_string(std::time(nullptr))},
          {"recipient_id", customer}};
  REQUIRE(s.f->post_webhook(test::envelope({{"messaging_product", "whatsapp"}, {"metadata", test::metadata(phone_id)},
                                            {"statuses", json::array({st})}}))
              .status == 200);
  auto r = pending.get();
  REQUIRE(r.status == 201);
  auto m = body_of(r)["message"];
  CHECK(m["whatsapp_message_id"] == "wamid.EARLY1");
  CHECK(m["status"] == "delivered");
  auto id = m["id"].get<std::string>();
  CHECK(s.scalar("SELECT status FROM mod_chat_messages WHERE id = " + id) == "delivered");
  CHECK(s.scalar("SELECT count(*) FROM wa_outbox") == "0");
  CHECK(s.graph.send_calls() == 1);
}

TEST_CASE("a retry whose answer is lost is resolved by its own status, never by the failed attempt's") {
  sending s{60, {{"WACHAT_SEND_WAIT_MS", "1000"}, {"WACHAT_SEND_DOUBT_MS", "3000"}}};
  auto first = s.send(text("one more time"));
  REQUIRE(first.status == 201);
  auto id = body_of(first)["message"]["id"].get<std::string>();
  auto old_wamid = body_of(first)["message"]["whatsapp_message_id"].get<std::string>();
  json failed{{"id", old_wamid}, {"status", "failed"}, {"timestamp", std::to_string(std::time(nullptr))},
              {"recipient_id", customer}, {"biz_opaque_callback_data", id},
              {"errors", json::array({{{"code", 131000}, {"title", "Something went wrong"}}})}};
  REQUIRE(s.f->post_webhook(test::envelope({{"messaging_product", "whatsapp"}, {"metadata", test::metadata(phone_id)},
                                            {"statuses", json::array({failed})}}))
              .status == 200);
  REQUIRE(test::eventually([&] { return s.scalar("SELECT status FROM mod_chat_messages WHERE id = " + id) == "failed"; }));

  // The retry reaches Meta, but Meta's answer is lost: in doubt.
  s.graph.script("POST", "*/messages", test::scripted_response::close_connection(), 1);
  auto again = s.f->call("POST", "/api/conversations/" + s.conversation + "/messages/" + id + "/retry");
  REQUIRE(again.status == 202);
  REQUIRE(s.graph.send_calls() == 2);
  // A late status of the failed attempt names our id too: it is not taken for the new attempt.
  REQUIRE(s.f->post_webhook(status_webhook(old_wamid, "delivered", id)).status == 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(s.scalar("SELECT coalesce(whatsapp_message_id, '-') FROM mod_chat_messages WHERE id = " + id) == "-");
  // The new attempt's status resolves it: adopted, not sent a third time.
  REQUIRE(s.f->post_webhook(status_webhook("wamid.RETRIED1", "delivered", id)).status == 200);
  REQUIRE(test::eventually([&] {
    return s.scalar("SELECT whatsapp_message_id || ' ' || status FROM mod_chat_messages WHERE id = " + id) ==
           "wamid.RETRIED1 delivered";
  }));
  std::this_thread::sleep_for(std::chrono::seconds(5));  // past the doubt period and a sweep
  CHECK(s.graph.send_calls() == 2);
  CHECK(s.scalar("SELECT count(*) FROM wa_outbox") == "0");
}

TEST_CASE("an answer lost and no status naming it: the send goes again once the doubt period is over") {
  sending s{60, {{"WACHAT_SEND_WAIT_MS", "500"}, {"WACHAT_SEND_DOUBT_MS", "2000"}}};
  s.graph.script("POST", "*/messages", test::scripted_response::close_connection(), 1);
  auto started = std::chrono::steady_clock::now();
  auto r = s.send(text("again?"));
  REQUIRE(r.status == 202);
  auto id = body_of(r)["message"]["id"].get<std::string>();
  REQUIRE(test::eventually([&] { return s.graph.sent_messages().size() == 1; }, std::chrono::seconds(15)));
  // Not before the doubt period: a status could still have come.
  CHECK(std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(1900));
  CHECK(s.graph.send_calls() == 2);
  CHECK(test::eventually([&] {
    return s.scalar("SELECT status FROM mod_chat_messages WHERE id = " + id) == "sent";
  }));
}

TEST_CASE("the site's messages_per_second holds across its conversations: sends wait, none is dropped") {
  sending s{60, {{"WACHAT_SEND_WAIT_MS", "0"}}};
  REQUIRE(s.f->call("PUT", "/api/sites/acme/whatsapp/settings",
                    json{{"phone_number_id", phone_id}, {"messages_per_second", 5}}.dump())
              .status == 200);
  // Two more customers: three conversations send side by side.
  auto conversations = with_customers(s, {"16505550002", "16505550003"});
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) {
    for (const auto& c : conversations) {
      REQUIRE(s.f->call("POST", "/api/conversations/" + c + "/messages", text("n" + std::to_string(i)).dump()).status ==
              202);
    }
  }
  REQUIRE(test::eventually([&] { return s.graph.sent_messages().size() == 15; }, std::chrono::seconds(20)));
  CHECK(std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(2500));  // 15 at 5/s
  CHECK(s.graph.max_sends_within(std::chrono::seconds(1)) <= 5);
}

TEST_CASE("sends held up behind a stalled sender take new slots: no second at Meta exceeds the rate") {
  // The sender's statement for one conversation waits for a row lock the test holds, so the
  // others' sends miss their slots meanwhile. Sent the moment the lock goes, they would land
  // together with the sends of later slots, and one second at Meta would hold more than 5.
  sending s{60, {{"WACHAT_SEND_WAIT_MS", "0"}}};
  REQUIRE(s.f->call("PUT", "/api/sites/acme/whatsapp/settings",
                    json{{"phone_number_id", phone_id}, {"messages_per_second", 5}}.dump())
              .status == 200);
  auto conversations = with_customers(s, {"16505550002", "16505550003", "16505550004"});
  const auto stalled = conversations.back();
  conversations.pop_back();
  for (int i = 0; i < 5; ++i) {
    for (const auto& c : conversations) {
      REQUIRE(s.f->call("POST", "/api/conversations/" + c + "/messages", text("n" + std::to_string(i)).dump()).status ==
              202);
    }
  }
  REQUIRE(test::eventually([&] { return s.graph.sent_messages().size() >= 4; }, std::chrono::seconds(10)));
  {
    pqxx::connection c{s.f->db};
    pqxx::work hold{c};
    hold.exec("SELECT id FROM mod_chat_conversations WHERE id = " + stalled + " FOR UPDATE");
    std::future<int> held_send = std::async(std::launch::async, [&] {
      return s.f->call("POST", "/api/conversations/" + stalled + "/messages", text("held").dump()).status;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(900));  // four slots pass
    hold.commit();
    CHECK(held_send.get() == 202);
  }
  REQUIRE(test::eventually([&] { return s.graph.sent_messages().size() == 16; }, std::chrono::seconds(20)));
  CHECK(s.graph.max_sends_within(std::chrono::seconds(1)) <= 5);
  CHECK(s.f->metric("wachat_sends_slot_missed_total") >= 1);
}

TEST_CASE("at the default rate an ordinary burst to one customer (45 replies) is not held back") {
  sending s{60, {{"WACHAT_SEND_WAIT_MS", "0"}}};
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 45; ++i) {
    REQUIRE(s.send(text("line " + std::to_string(i))).status == 202);
  }
  REQUIRE(test::eventually([&] { return s.graph.sent_messages().size() == 45; }, std::chrono::seconds(20)));
  // 45 at 80/s is well under 6 s: no per-customer pacing on top (only Meta's 131056 adds one).
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(4));
  CHECK(s.graph.max_sends_within(std::chrono::seconds(1)) <= 80);
}

TEST_CASE("Meta refusing the site's token (190): the send fails, the site refuses sends at once until it is fixed") {
  sending s;
  s.graph.fail_next("*/messages", 1, 401, 190, "Error validating access token: Session has expired");
  auto r = s.send(text("hello"));
  REQUIRE(r.status == 502);
  CHECK(body_of(r)["error"]["graph"]["code"] == 190);
  CHECK(body_of(r)["message"]["error"]["retryable"] == true);  // once the token is fixed
  REQUIRE(test::eventually([&] {
    auto st = s.f->call_json("GET", "/api/sites/acme/whatsapp/status");
    return st["last_check"].is_object() && st["last_check"]["ok"] == false;
  }));
  auto st = s.f->call_json("GET", "/api/sites/acme/whatsapp/status");
  CHECK(st["last_check"]["error"].get<std::string>().find("190") != std::string::npos);

  auto refused = s.send(text("and this?"));
  CHECK(refused.status == 409);
  CHECK(body_of(refused)["error"]["code"] == "whatsapp_disabled");
  CHECK(body_of(refused)["error"]["message"].get<std::string>().find("190") != std::string::npos);
  CHECK(s.graph.send_calls() == 1);  // Meta was not asked again

  // Working credentials saved again: sends go.
  REQUIRE(s.f->call("PUT", "/api/sites/acme/whatsapp/settings",
                    json{{"phone_number_id", phone_id}, {"access_token", token}}.dump())
              .status == 200);
  CHECK(test::eventually([&] { return s.send(text("back")).status == 201; }));
}

TEST_CASE("a failed send is retried by hand: the same row goes again; anything else is invalid_state") {
  sending s;
  s.graph.fail_next("*/messages", 1, 400, 131026, "Message undeliverable");
  auto failed = s.send(text("try me"));
  REQUIRE(failed.status == 502);
  auto id = body_of(failed)["message"]["id"].get<std::string>();
  auto base = "/api/conversations/" + s.conversation + "/messages/";

  auto again = s.f->call("POST", base + id + "/retry");
  REQUIRE(again.status == 201);
  CHECK(body_of(again)["message"]["id"] == id);
  CHECK(body_of(again)["message"]["status"] == "sent");
  CHECK(body_of(again)["message"]["error"].is_null());
  CHECK(s.graph.sent_messages().size() == 1);
  CHECK(s.graph.sent_messages()[0]["biz_opaque_callback_data"] == id);
  CHECK(s.scalar("SELECT count(*) FROM mod_chat_messages WHERE sender_type = 'agent'") == "1");

  auto twice = s.f->call("POST", base + id + "/retry");
  CHECK(twice.status == 409);
  CHECK(body_of(twice)["error"]["code"] == "invalid_state");
  auto customers = s.scalar("SELECT id FROM mod_chat_messages WHERE sender_type = 'visitor'");
  CHECK(s.f->call("POST", base + customers + "/retry").status == 409);
  CHECK(s.f->call("POST", base + "999999/retry").status == 404);
  CHECK(s.f->call("POST", base + "abc/retry").status == 404);
  CHECK(s.graph.sent_messages().size() == 1);
}

TEST_CASE("a message Meta reports failed after taking it is retried by hand with the body Meta took") {
  sending s;
  auto first = s.send(text("will it arrive?"));
  REQUIRE(first.status == 201);
  auto id = body_of(first)["message"]["id"].get<std::string>();
  auto wamid = body_of(first)["message"]["whatsapp_message_id"].get<std::string>();
  auto base = "/api/conversations/" + s.conversation + "/messages/";
  // Not failed yet: nothing to retry.
  CHECK(s.f->call("POST", base + id + "/retry").status == 409);

  json st{{"id", wamid}, {"status", "failed"}, {"timestamp", std::to_string(std::time(nullptr))},
          {"recipient_id", customer},
          {"errors", json::array({{{"code", 131000}, {"title", "Something went wrong"}}})}};
  REQUIRE(s.f->post_webhook(test::envelope({{"messaging_product", "whatsapp"}, {"metadata", test::metadata(phone_id)},
                                            {"statuses", json::array({st})}}))
              .status == 200);
  REQUIRE(test::eventually([&] { return s.scalar("SELECT status FROM mod_chat_messages WHERE id = " + id) == "failed"; }));

  auto again = s.f->call("POST", base + id + "/retry");
  REQUIRE(again.status == 201);
  CHECK(body_of(again)["message"]["id"] == id);
  CHECK(body_of(again)["message"]["status"] == "sent");
  CHECK(body_of(again)["message"]["whatsapp_message_id"] != wamid);
  REQUIRE(s.graph.sent_messages().size() == 2);
  CHECK(s.graph.sent_messages()[1]["text"]["body"] == "will it arrive?");
  CHECK(s.graph.sent_messages()[1]["biz_opaque_callback_data"] == id);
  CHECK(s.scalar("SELECT count(*) FROM mod_chat_messages WHERE sender_type = 'agent'") == "1");
  CHECK(s.scalar("SELECT count(*) FROM wa_outbox") == "0");
  // Sent again: not failed, so not again.
  CHECK(s.f->call("POST", base + id + "/retry").status == 409);
}

TEST_CASE("read receipts: on_receipt marks a stored message read; on_agent_view waits for /read; off never") {
  sending s;  // on_receipt, the default: the fixture waited for its receipt
  auto receipts = s.graph.read_receipts();
  REQUIRE(receipts.size() == 1);
  CHECK(receipts[0]["message_id"] == "wamid.IN1");
  CHECK(receipts[0]["status"] == "read");
  CHECK_FALSE(receipts[0].contains("typing_indicator"));

  REQUIRE(s.f->call("PUT", "/api/sites/acme/whatsapp/settings",
                    json{{"phone_number_id", phone_id}, {"read_receipts", "on_agent_view"}}.dump())
              .status == 200);
  auto ts = static_cast<std::int64_t>(std::time(nullptr)) - 5;
  REQUIRE(s.f->post_webhook(test::text_webhook(phone_id, customer, "wamid.IN2", ts, "anyone?")).status == 200);
  REQUIRE(test::eventually([&] {
    return s.scalar("SELECT count(*) FROM mod_chat_messages WHERE whatsapp_message_id = 'wamid.IN2'") == "1";
  }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(s.graph.read_receipts().size() == 1);  // not on receipt any more
  auto read = s.f->call("POST", "/api/conversations/" + s.conversation + "/read", R"({"typing": true})");
  REQUIRE(read.status == 200);
  CHECK(body_of(read)["unread_count"] == 0);
  REQUIRE(test::eventually([&] { return s.graph.read_receipts().size() == 2; }));
  auto agent_view = s.graph.read_receipts()[1];
  CHECK(agent_view["message_id"] == "wamid.IN2");  // the newest
  CHECK(agent_view["typing_indicator"]["type"] == "text");
  CHECK(s.f->call("POST", "/api/conversations/" + s.conversation + "/read", "[1]").status == 400);

  REQUIRE(s.f->call("PUT", "/api/sites/acme/whatsapp/settings",
                    json{{"phone_number_id", phone_id}, {"read_receipts", "off"}}.dump())
              .status == 200);
  REQUIRE(s.f->call("POST", "/api/conversations/" + s.conversation + "/read").status == 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(s.graph.read_receipts().size() == 2);
}

TEST_CASE("a customer known only by a business-scoped user id is answered at that id") {
  sending s;
  const std::string bsuid = "US.13491208655302741918";
  auto ts = static_cast<std::int64_t>(std::time(nullptr)) - 20;
  json value{{"messaging_product", "whatsapp"},
             {"metadata", test::metadata(phone_id)},
             {"contacts", {{{"profile", {{"name", "Pablo"}}}, {"user_id", bsuid}}}},
             {"messages",
              {{{"from_user_id", bsuid}, {"id", "wamid.user.1"}, {"timestamp", std::to_string(ts)},
                {"type", "text"}, {"text", {{"body", "hola"}}}}}}};
  REQUIRE(s.f->post_webhook(test::envelope(value)).status == 200);
  std::string conv;
  REQUIRE(test::eventually([&] {
    conv = s.scalar("SELECT c.id FROM mod_chat_conversations c JOIN mod_chat_visitors v ON v.id = c.visitor_id"
                    " WHERE v.whatsapp_user_id = '" + bsuid + "'");
    return !conv.empty();
  }));
  // A reply_to naming a message of another conversation is not this conversation's.
  auto cross = text("re");
  cross["reply_to"] = "wamid.IN1";
  CHECK(s.f->call("POST", "/api/conversations/" + conv + "/messages", cross.dump()).status == 422);
  auto r = s.f->call("POST", "/api/conversations/" + conv + "/messages", text("¡Hola Pablo!").dump());
  REQUIRE(r.status == 201);
  auto sent = s.graph.sent_messages();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0]["recipient"] == bsuid);
  CHECK_FALSE(sent[0].contains("to"));
}

TEST_CASE("an agent's reaction reaches Meta and shows on its target; it adds no message") {
  sending s;
  auto react = [&](const std::string& target, const std::string& emoji) {
    return s.send({{"type", "reaction"}, {"message_id", target}, {"emoji", emoji}, {"sender_id", "agent-7"},
                   {"sender_name", "Ann"}});
  };
  auto r = react("wamid.IN1", "👍");
  REQUIRE(r.status == 200);
  auto m = body_of(r)["message"];
  CHECK(m["whatsapp_message_id"] == "wamid.IN1");
  CHECK(m["reactions"] == json::array({{{"emoji", "👍"}, {"by", "agent"}}}));
  auto sent = s.graph.sent_messages();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0]["type"] == "reaction");
  CHECK(sent[0]["to"] == customer);
  CHECK(sent[0]["reaction"] == json{{"message_id", "wamid.IN1"}, {"emoji", "👍"}});

  // By our id too; a new one replaces the agent's; an empty one removes it.
  auto id = m["id"].get<std::string>();
  CHECK(body_of(react(id, "❤️"))["message"]["reactions"] == json::array({{{"emoji", "❤️"}, {"by", "agent"}}}));
  CHECK(body_of(react(id, ""))["message"]["reactions"] == json::array());
  CHECK(s.graph.sent_messages().size() == 3);

  auto unknown = react("wamid.NOPE", "👍");
  CHECK(unknown.status == 422);
  CHECK(body_of(unknown)["error"]["code"] == "invalid_field");
  s.graph.fail_next("*/messages", 1, 400, 131009, "Parameter value is not valid");
  auto refused = react(id, "👍");
  CHECK(refused.status == 502);
  CHECK(body_of(refused)["error"]["graph"]["code"] == 131009);
  CHECK(s.graph.sent_messages().size() == 3);
  CHECK(s.scalar("SELECT count(*) FROM mod_chat_messages WHERE sender_type = 'agent'") == "0");
  CHECK(s.scalar("SELECT reactions::text FROM mod_chat_messages WHERE id = " + id) == "[]");
}

TEST_CASE("two wachatd sending for the same conversation: each send reaches Meta once, in message order") {
  sending s{60, {{"WACHAT_SEND_WAIT_MS", "0"}}};
  test::wachat_fixture other{{{"WACHAT_GRAPH_BASE_URL", s.graph.base_url()}, {"WACHAT_SEND_WAIT_MS", "0"}}, s.f->db};
  // Meta answers slowly, so both processes have sends waiting at the same time.
  s.graph.script("POST", "*/messages", test::scripted_response::delayed(std::chrono::milliseconds(30)), -1);
  auto path = "/api/conversations/" + s.conversation + "/messages";
  auto burst = [&](test::wachat_fixture& f, const std::string& tag) {
    for (int i = 0; i < 10; ++i) {
      auto r = f.call("POST", path, text(tag + std::to_string(i), tag + std::to_string(i)).dump());
      CHECK(r.status == 202);
    }
  };
  std::thread a{[&] { burst(*s.f, "a"); }};
  std::thread b{[&] { burst(other, "b"); }};
  a.join();
  b.join();
  REQUIRE(test::eventually([&] { return s.graph.sent_messages().size() >= 20; }, std::chrono::seconds(30)));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto sent = s.graph.sent_messages();
  CHECK(sent.size() == 20);
  std::set<std::string> ids;
  long last = 0;
  for (const auto& m : sent) {
    auto id = m["biz_opaque_callback_data"].get<std::string>();
    ids.insert(id);
    CHECK(std::stol(id) > last);  // in message order
    last = std::stol(id);
  }
  CHECK(ids.size() == 20);
  CHECK(s.scalar("SELECT count(*) FROM mod_chat_messages WHERE sender_type = 'agent' AND status = 'sent'") == "20");
}

TEST_CASE("Graph refusing connections: the send answers 202 queued, and reaches Meta once it can be reached") {
  test::fake_graph graph;
  graph.add_token(token);
  graph.add_phone(phone_id, "+1 555-0100", "Acme Support");
  std::string db, conv;
  {
    // Set up with Graph reachable: the site's credentials checked, a customer who wrote.
    test::wachat_fixture f{{{"WACHAT_GRAPH_BASE_URL", graph.base_url()}}};
    db = f.db;
    f.call_json("POST", "/api/sites", {{"id", "acme"}}, 201);
    f.call_json("PUT", "/api/sites/acme/whatsapp/settings",
                {{"phone_number_id", phone_id}, {"access_token", token}, {"read_receipts", "off"}});
    REQUIRE(f.post_webhook(test::text_webhook(phone_id, customer, "wamid.IN-R", std::time(nullptr) - 30, "hello?")).status == 200);
    REQUIRE(test::eventually([&] {
      auto list = f.call_json("GET", "/api/sites/acme/conversations");
      if (list["conversations"].empty()) return false;
      conv = list["conversations"][0]["id"].get<std::string>();
      return true;
    }));
  }
  {
    // Graph's address now refuses every connection.
    const auto closed = "http://127.0.0.1:" + std::to_string(test::free_port());
    test::wachat_fixture f{{{"WACHAT_GRAPH_BASE_URL", closed}, {"WACHAT_SEND_WAIT_MS", "1500"}}, db};
    auto r = f.call("POST", "/api/conversations/" + conv + "/messages", text("Are you there?", "r-1").dump());
    REQUIRE(r.status == 202);
    CHECK(body_of(r)["message"]["status"] == "queued");
    CHECK(test::http_get(f.port(), "/readyz").status == 200);
    // The same request again is the same message, still queued.
    auto again = f.call("POST", "/api/conversations/" + conv + "/messages", text("Are you there?", "r-1").dump());
    CHECK(again.status == 202);
    CHECK(body_of(again)["message"]["id"] == body_of(r)["message"]["id"]);
  }
  CHECK(graph.send_calls() == 0);
  // Graph reachable again (a process pointed at it): the queued send goes out, once.
  test::wachat_fixture f{{{"WACHAT_GRAPH_BASE_URL", graph.base_url()}}, db};
  REQUIRE(test::eventually([&] { return graph.sent_messages().size() == 1; }, 30s));
  CHECK(graph.sent_messages()[0]["text"]["body"] == "Are you there?");
  REQUIRE(test::eventually([&] {
    auto page = f.call_json("GET", "/api/conversations/" + conv + "/messages");
    return page["messages"].back()["status"] == "sent";
  }));
  std::this_thread::sleep_for(1s);
  CHECK(graph.sent_messages().size() == 1);
}

TEST_CASE("Graph taking the request and never answering: 202 queued, then in doubt, never sent twice while a status may come") {
  sending s{60, {{"WACHAT_SEND_WAIT_MS", "1000"}, {"WACHAT_SEND_DOUBT_MS", "60000"}}};
  s.graph.script("POST", "*/messages", test::scripted_response::delayed(20s));
  auto r = s.send(text("Anyone?", "n-1"));
  REQUIRE(r.status == 202);
  CHECK(body_of(r)["message"]["status"] == "queued");
  std::this_thread::sleep_for(3s);
  // One request reached the fake; the doubt period holds any second one back.
  CHECK(s.graph.send_calls() == 1);
}

TEST_CASE("PostgreSQL stopped: sends answer 503 and store nothing; the same requests go once it is back") {
  sending s;
  auto conversations = with_customers(s, {"15550000011"});
  REQUIRE(s.send(text("before", "c-before")).status == 201);  // its customer is remembered now
  auto send_to = [&](const std::string& conversation, const std::string& body, const std::string& id) {
    return s.f->call("POST", "/api/conversations/" + conversation + "/messages", text(body, id).dump());
  };

  test::stop_test_postgres();
  auto remembered = send_to(conversations[0], "during, to a conversation sent to before", "c-during-1");
  auto unknown = send_to(conversations[1], "during, to a conversation not sent to yet", "c-during-2");
  test::start_test_postgres();
  CHECK(remembered.status == 503);
  CHECK(unknown.status == 503);
  CHECK(body_of(remembered)["error"]["code"] == "unavailable");
  CHECK(body_of(unknown)["error"]["code"] == "unavailable");

  // The caller repeats them (same client_message_id) until the database is back: each is
  // stored and sent once.
  auto until_created = [&](const std::string& conversation, const std::string& body, const std::string& id) {
    int status = 0;
    for (int i = 0; i < 100 && status != 201; ++i) {
      status = send_to(conversation, body, id).status;
      if (status != 201) std::this_thread::sleep_for(100ms);
    }
    return status;
  };
  CHECK(until_created(conversations[0], "during, to a conversation sent to before", "c-during-1") == 201);
  CHECK(until_created(conversations[1], "during, to a conversation not sent to yet", "c-during-2") == 201);
  CHECK(s.scalar("SELECT count(*) FROM mod_chat_messages WHERE sender_type = 'agent'") == "3");
  auto sent = s.graph.sent_messages();
  REQUIRE(sent.size() == 3);
  CHECK(sent[0]["text"]["body"] == "before");
  CHECK(sent[1]["text"]["body"] == "during, to a conversation sent to before");
  CHECK(sent[2]["text"]["body"] == "during, to a conversation not sent to yet");
}

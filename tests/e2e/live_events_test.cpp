// Live events over Server-Sent Events (API.md §3.5; DESIGN.md §2 "events", §6): what a webhook
// or a dashboard change puts on a site's stream, resuming with Last-Event-ID, tenancy, and the
// relay between two wachatd processes on one database.
#include <algorithm>
#include <catch2/catch.hpp>
#include <ctime>
#include <functional>
#include <set>
#include <thread>

#include "support/pg_control.hpp"
#include "support/sse_client.hpp"
#include "support/wachat_fixture.hpp"

using namespace wachat;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::string phone_a = "106540352242922";
const std::string phone_b = "106540352249999";

std::int64_t now_s() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::string events_path(const std::string& site) { return "/api/sites/" + site + "/events"; }

std::int64_t id_of(const test::sse_event& e) { return std::stoll(e.id); }

std::function<bool(const test::sse_event&)> message_created(const std::string& wamid) {
  return [wamid](const test::sse_event& e) {
    if (e.event != "message.created") {
      return false;
    }
    auto d = e.json();
    return d.contains("message") && d["message"].value("whatsapp_message_id", "") == wamid;
  };
}

std::function<bool(const test::sse_event&)> event_of(const std::string& type,
                                                      const std::string& conversation_id) {
  return [type, conversation_id](const test::sse_event& e) {
    return e.event == type && e.json().value("conversation_id", "") == conversation_id;
  };
}

// Every webhook stored so far has been processed.
void wait_processed(const std::string& db, int expected_rows) {
  REQUIRE(test::eventually(
      [&] {
        return test::query_scalar(db, "SELECT count(*) FROM wa_webhook_events WHERE status = 'processed'") ==
               std::to_string(expected_rows);
      },
      20s));
}

// "id:type" of the site's events after `after`, in id order, as the database has them.
std::vector<std::string> stored_events(const std::string& db, const std::string& site, std::int64_t after) {
  auto text = test::query_scalar(
      db, "SELECT string_agg(id || ':' || type, ',' ORDER BY id) FROM wa_events WHERE site_id = '" + site +
              "' AND id > " + std::to_string(after));
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto comma = text.find(',', start);
    if (comma == std::string::npos) {
      comma = text.size();
    }
    out.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

std::vector<std::string> ids_and_types(const std::vector<test::sse_event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) {
    out.push_back(e.id + ":" + e.event);
  }
  return out;
}

// Reads from `s` until `count` events came (or `timeout`), then makes sure nothing else follows.
std::vector<test::sse_event> read_exactly(test::sse_client& s, std::size_t count,
                                          std::chrono::milliseconds timeout = 10s) {
  std::vector<test::sse_event> out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < count && std::chrono::steady_clock::now() < deadline) {
    if (auto ev = s.next(200ms)) {
      out.push_back(*ev);
    }
  }
  for (auto& extra : s.drain(700ms)) {
    out.push_back(std::move(extra));
  }
  return out;
}

// CRM linking announces a visitor's new contact as conversation.updated, at a moment of its
// own; these tests count exact event sequences, so it is off for their sites (crm_test.cpp
// covers it).
void make_site_without_crm(test::wachat_fixture& f, const std::string& id, const std::string& phone) {
  f.make_site(id, phone);
  test::query_scalar(f.db, "UPDATE mod_chat_widget_settings SET crm_sync = false WHERE site_id = '" + id + "' RETURNING 1");
}

void check_well_formed(const std::vector<test::sse_event>& events, const std::string& site) {
  std::int64_t previous = 0;
  for (const auto& e : events) {
    INFO("event " << e.id << " " << e.event << " " << e.data);
    REQUIRE(!e.id.empty());
    auto id = id_of(e);
    CHECK(id > previous);  // ids only grow on one stream
    previous = id;
    auto d = e.json();
    CHECK(d["type"] == e.event);
    CHECK(d["site_id"] == site);
    CHECK(d.contains("conversation_id"));
    // Every event that names a conversation carries it (the tests never delete one), also when
    // several events of one run name the same conversation and the hub reads it once.
    if (d.contains("conversation_id") && !d["conversation_id"].is_null()) {
      REQUIRE(d.contains("conversation"));
      CHECK(d["conversation"]["id"] == d["conversation_id"]);
    }
  }
}

}  // namespace

TEST_CASE("the stream answers 200 text/event-stream, says it is connected, and keeps quiet until something happens") {
  test::wachat_fixture f;
  make_site_without_crm(f, "acme", phone_a);
  test::sse_client s{f.port(), events_path("acme"), test::admin_token};
  REQUIRE(s.status() == 200);
  CHECK(s.is_stream());
  CHECK(s.header("content-type").rfind("text/event-stream", 0) == 0);
  CHECK(s.header("cache-control") == "no-store");
  CHECK(s.header("content-length").empty());
  CHECK(!s.next(1500ms).has_value());
  CHECK(!s.ended());
  REQUIRE(!s.comments().empty());
  CHECK(s.comments()[0] == "connected");
  CHECK(s.retry_ms() == 2000);
}

TEST_CASE("a signed text webhook appears as conversation.created and message.created within seconds") {
  test::wachat_fixture f;
  make_site_without_crm(f, "acme", phone_a);
  test::sse_client s{f.port(), events_path("acme"), test::admin_token};
  REQUIRE(s.is_stream());
  auto sent_at = std::chrono::steady_clock::now();
  REQUIRE(f.post_webhook(test::text_webhook(phone_a, "16505551234", "wamid.LIVE1", now_s() - 5, "Hello live")).status == 200);
  auto w = s.wait_for(message_created("wamid.LIVE1"), 5s);
  REQUIRE(w.found);
  CHECK(std::chrono::steady_clock::now() - sent_at < 3s);
  auto tail = s.drain(500ms);
  auto all = w.events;
  all.insert(all.end(), tail.begin(), tail.end());
  check_well_formed(all, "acme");

  auto d = w.last().json();
  auto conv_id = d["conversation_id"].get<std::string>();
  auto list = f.call_json("GET", "/api/sites/acme/conversations")["conversations"];
  REQUIRE(list.size() == 1);
  CHECK(conv_id == list[0]["id"]);
  CHECK(d["message"]["content"] == "Hello live");
  CHECK(d["message"]["sender_type"] == "visitor");
  CHECK(d["message"]["conversation_id"] == conv_id);
  CHECK(d["message"]["status"] == "received");
  CHECK(d["conversation"]["id"] == conv_id);
  CHECK(d["conversation"]["visitor"]["whatsapp_phone"] == "16505551234");

  // The conversation was announced before its first message, and once.
  std::vector<std::string> types;
  for (const auto& e : all) {
    types.push_back(e.event);
  }
  auto created = std::find(types.begin(), types.end(), "conversation.created");
  auto message = std::find(types.begin(), types.end(), "message.created");
  REQUIRE(created != types.end());
  CHECK(created < message);
  CHECK(std::count(types.begin(), types.end(), "conversation.created") == 1);
  CHECK(std::count(types.begin(), types.end(), "message.created") == 1);
  for (const auto& e : all) {
    CHECK(e.json()["conversation_id"] == conv_id);
  }

  // A second message of the same visitor: a message.created, no new conversation.
  REQUIRE(f.post_webhook(test::text_webhook(phone_a, "16505551234", "wamid.LIVE2", now_s(), "Second")).status == 200);
  auto w2 = s.wait_for(message_created("wamid.LIVE2"), 5s);
  REQUIRE(w2.found);
  CHECK(w2.last().json()["message"]["content"] == "Second");
  for (const auto& e : w2.events) {
    CHECK(e.event != "conversation.created");
  }
}

TEST_CASE("an event committed right after the stream answered is not missed") {
  // A client that has its 200 and then acts expects to see the consequences of its action.
  test::wachat_fixture f;
  make_site_without_crm(f, "acme", phone_a);
  REQUIRE(f.post_webhook(test::text_webhook(phone_a, "111", "wamid.RACE0", now_s(), "hi")).status == 200);
  wait_processed(f.db, 1);
  auto conv = f.call_json("GET", "/api/sites/acme/conversations")["conversations"][0]["id"].get<std::string>();
  for (int round = 0; round < 5; ++round) {
    auto before = std::stoll(test::query_scalar(f.db, "SELECT max(id) FROM wa_events"));
    test::sse_client s{f.port(), events_path("acme"), test::admin_token};
    REQUIRE(s.is_stream());
    f.call_json("PATCH", "/api/conversations/" + conv, {{"status", round % 2 == 0 ? "active" : "pending"}});
    INFO("round " << round);
    // The event is committed (the PATCH answered) ...
    REQUIRE(stored_events(f.db, "acme", before).size() == 1);
    // ... and must reach a stream that was already open.
    CHECK(s.wait_for(event_of("conversation.updated", conv), 3s).found);
  }
}

TEST_CASE("Last-Event-ID resumes with exactly the missed events, in order, none seen before") {
  test::wachat_fixture f;
  make_site_without_crm(f, "acme", phone_a);
  std::set<std::int64_t> seen;
  std::int64_t last = 0;
  std::string conv1;
  {
    test::sse_client s{f.port(), events_path("acme"), test::admin_token};
    REQUIRE(s.is_stream());
    REQUIRE(f.post_webhook(test::text_webhook(phone_a, "111", "wamid.RS1", now_s() - 30, "one")).status == 200);
    auto w = s.wait_for(message_created("wamid.RS1"));
    REQUIRE(w.found);
    conv1 = w.last().json()["conversation_id"];
    auto all = w.events;
    for (auto& e : s.drain(500ms)) {
      all.push_back(e);
    }
    check_well_formed(all, "acme");
    for (const auto& e : all) {
      seen.insert(id_of(e));
    }
    last = id_of(all.back());
  }  // disconnected

  // Meanwhile: a message in the same conversation, a new visitor, a dashboard change.
  REQUIRE(f.post_webhook(test::text_webhook(phone_a, "111", "wamid.RS2", now_s() - 20, "two")).status == 200);
  REQUIRE(f.post_webhook(test::text_webhook(phone_a, "222", "wamid.RS3", now_s() - 10, "three")).status == 200);
  wait_processed(f.db, 3);
  f.call_json("PATCH", "/api/conversations/" + conv1, {{"status", "active"}});
  auto expected = stored_events(f.db, "acme", last);
  REQUIRE(expected.size() >= 5);  // RS2: message + conversation update; RS3: + a conversation; PATCH

  SECTION("with the Last-Event-ID header") {
    test::sse_client s{f.port(), events_path("acme"), test::admin_token, std::to_string(last)};
    REQUIRE(s.is_stream());
    auto got = read_exactly(s, expected.size());
    check_well_formed(got, "acme");
    CHECK(ids_and_types(got) == expected);
    for (const auto& e : got) {
      CHECK(seen.count(id_of(e)) == 0);
      CHECK(id_of(e) > last);
    }
    std::set<std::string> contents;
    for (const auto& e : got) {
      if (e.event == "message.created") {
        contents.insert(e.json()["message"]["content"].get<std::string>());
      }
    }
    CHECK(contents == std::set<std::string>{"two", "three"});
    CHECK(got.back().event == "conversation.updated");
    CHECK(got.back().json()["conversation"]["status"] == "active");

    // Live again after the replay: a new event follows without a reconnect.
    REQUIRE(f.post_webhook(test::text_webhook(phone_a, "222", "wamid.RS4", now_s(), "four")).status == 200);
    CHECK(s.wait_for(message_created("wamid.RS4")).found);
  }
  SECTION("with ?last_event_id= (for clients that cannot set headers)") {
    test::sse_client s{f.port(), events_path("acme") + "?last_event_id=" + std::to_string(last), test::admin_token};
    REQUIRE(s.is_stream());
    CHECK(ids_and_types(read_exactly(s, expected.size())) == expected);
  }
  SECTION("Last-Event-ID 0 replays the whole day") {
    test::sse_client s{f.port(), events_path("acme"), test::admin_token, "0"};
    REQUIRE(s.is_stream());
    auto everything = stored_events(f.db, "acme", 0);
    CHECK(ids_and_types(read_exactly(s, everything.size())) == everything);
  }
  SECTION("events older than 24 hours are not replayed") {
    test::query_scalar(f.db, "UPDATE wa_events SET created_at = now() - interval '25 hours' WHERE id <= " +
                                 std::to_string(last) + " RETURNING 1");
    test::sse_client s{f.port(), events_path("acme"), test::admin_token, "0"};
    REQUIRE(s.is_stream());
    CHECK(ids_and_types(read_exactly(s, expected.size())) == expected);
  }
  SECTION("a Last-Event-ID that is not an event id answers 400") {
    test::sse_client s{f.port(), events_path("acme"), test::admin_token, "yesterday"};
    CHECK(s.status() == 400);
    CHECK(json::parse(s.body())["error"]["code"] == "invalid_request");
  }
}

TEST_CASE("a site token gets its own site's stream only; no token answers 401") {
  test::wachat_fixture f;
  make_site_without_crm(f, "acme", phone_a);
  make_site_without_crm(f, "bravo", phone_b);
  auto acme_token = f.site_token("acme");
  auto bravo_token = f.site_token("bravo");

  {
    test::sse_client other{f.port(), events_path("bravo"), acme_token};
    CHECK(other.status() == 404);
    CHECK(json::parse(other.body())["error"]["code"] == "not_found");
  }
  {
    test::sse_client missing{f.port(), events_path("nowhere"), acme_token};
    CHECK(missing.status() == 404);
  }
  {
    test::sse_client missing{f.port(), events_path("nowhere"), test::admin_token};
    CHECK(missing.status() == 404);
  }
  {
    test::sse_client anonymous{f.port(), events_path("acme"), ""};
    CHECK(anonymous.status() == 401);
    CHECK(json::parse(anonymous.body())["error"]["code"] == "unauthorized");
  }
  {
    test::sse_client unknown{f.port(), events_path("acme"), "not-a-token-0123456789"};
    CHECK(unknown.status() == 401);
  }

  test::sse_client a{f.port(), events_path("acme"), acme_token};
  test::sse_client b{f.port(), events_path("bravo"), bravo_token};
  test::sse_client admin_b{f.port(), events_path("bravo"), test::admin_token};
  REQUIRE(a.is_stream());
  REQUIRE(b.is_stream());
  REQUIRE(admin_b.is_stream());
  // Bravo's events first: were they leaked, they would be on acme's stream before acme's own.
  REQUIRE(f.post_webhook(test::text_webhook(phone_b, "222", "wamid.B1", now_s(), "for bravo")).status == 200);
  REQUIRE(b.wait_for(message_created("wamid.B1")).found);
  REQUIRE(admin_b.wait_for(message_created("wamid.B1")).found);
  // One delivery naming both sites' numbers.
  json value_a = {{"messaging_product", "whatsapp"}, {"metadata", test::metadata(phone_a)},
                  {"contacts", {{{"profile", {{"name", "A"}}}, {"wa_id", "111"}}}},
                  {"messages", {{{"from", "111"}, {"id", "wamid.A1"}, {"timestamp", std::to_string(now_s())}, {"type", "text"}, {"text", {{"body", "for acme"}}}}}}};
  json value_b = value_a;
  value_b["metadata"] = test::metadata(phone_b);
  value_b["messages"][0]["id"] = "wamid.B2";
  value_b["messages"][0]["text"]["body"] = "for bravo too";
  json body = {{"object", "whatsapp_business_account"},
               {"entry", {{{"id", "1"}, {"changes", {{{"field", "messages"}, {"value", value_b}}, {{"field", "messages"}, {"value", value_a}}}}}}}};
  REQUIRE(f.post_webhook(body.dump()).status == 200);
  REQUIRE(b.wait_for(message_created("wamid.B2")).found);
  auto wa = a.wait_for(message_created("wamid.A1"));
  REQUIRE(wa.found);
  auto a_events = wa.events;
  for (auto& e : a.drain(1s)) {
    a_events.push_back(e);
  }
  auto bravo_ids = stored_events(f.db, "bravo", 0);
  REQUIRE(bravo_ids.size() >= 4);
  for (const auto& e : a_events) {
    INFO(e.data);
    CHECK(e.json()["site_id"] == "acme");
    CHECK(e.data.find("bravo") == std::string::npos);
    CHECK(std::find(bravo_ids.begin(), bravo_ids.end(), e.id + ":" + e.event) == bravo_ids.end());
  }
  // A resume on acme's stream from 0 replays acme's events only.
  test::sse_client replay{f.port(), events_path("acme"), acme_token, "0"};
  auto acme_ids = stored_events(f.db, "acme", 0);
  CHECK(ids_and_types(read_exactly(replay, acme_ids.size())) == acme_ids);
}

TEST_CASE("a conversation PATCH, a read and a message status each reach the stream") {
  test::wachat_fixture f;
  make_site_without_crm(f, "acme", phone_a);
  REQUIRE(f.post_webhook(test::text_webhook(phone_a, "444", "wamid.P1", now_s() - 60, "hi")).status == 200);
  wait_processed(f.db, 1);
  auto conv = f.call_json("GET", "/api/sites/acme/conversations")["conversations"][0]["id"].get<std::string>();
  test::sse_client s{f.port(), events_path("acme"), test::admin_token};
  REQUIRE(s.is_stream());

  f.call_json("PUT", "/api/sites/acme/agents/ann", {{"name", "Ann"}, {"status", "online"}, {"max_chats", 3}});
  f.call_json("PATCH", "/api/conversations/" + conv, {{"status", "active"}, {"assigned_agent_id", "ann"}});
  auto w = s.wait_for(event_of("conversation.updated", conv), 5s);
  REQUIRE(w.found);
  auto d = w.last().json();
  CHECK(d["conversation"]["status"] == "active");
  CHECK(d["conversation"]["assigned_agent_id"] == "ann");
  CHECK(!d.contains("message"));

  f.call_json("POST", "/api/conversations/" + conv + "/read");
  auto r = s.wait_for(event_of("conversation.updated", conv), 5s);
  REQUIRE(r.found);
  CHECK(r.last().json()["conversation"]["unread_count"] == 0);

  // An agent's message (as the send path stores it) moving to delivered at Meta.
  test::query_scalar(f.db, "INSERT INTO mod_chat_messages (conversation_id, site_id, sender_type, content, content_type, whatsapp_message_id, status)"
                           " VALUES (" + conv + ", 'acme', 'agent', 'reply', 'text', 'wamid.P-OUT', 'sent') RETURNING id");
  json value = {{"messaging_product", "whatsapp"}, {"metadata", test::metadata(phone_a)},
                {"statuses", {{{"id", "wamid.P-OUT"}, {"status", "delivered"}, {"timestamp", std::to_string(now_s())}, {"recipient_id", "444"}}}}};
  REQUIRE(f.post_webhook(test::envelope(value)).status == 200);
  auto u = s.wait_for([](const test::sse_event& e) { return e.event == "message.updated"; }, 5s);
  REQUIRE(u.found);
  auto m = u.last().json();
  CHECK(m["conversation_id"] == conv);
  CHECK(m["message"]["whatsapp_message_id"] == "wamid.P-OUT");
  CHECK(m["message"]["status"] == "delivered");

  f.call_json("PATCH", "/api/conversations/" + conv, {{"status", "closed"}});
  auto c = s.wait_for(event_of("conversation.updated", conv), 5s);
  REQUIRE(c.found);
  CHECK(c.last().json()["conversation"]["status"] == "closed");
}

TEST_CASE("two processes on one database: an event made by one reaches the other's streams") {
  test::wachat_fixture a;
  make_site_without_crm(a, "acme", phone_a);
  test::wachat_fixture b{{}, a.db};
  test::sse_client on_a{a.port(), events_path("acme"), test::admin_token};
  test::sse_client on_b{b.port(), events_path("acme"), test::admin_token};
  REQUIRE(on_a.is_stream());
  REQUIRE(on_b.is_stream());

  // A webhook delivered to B shows on A's stream (and B's), with the same ids.
  REQUIRE(b.post_webhook(test::text_webhook(phone_a, "555", "wamid.X1", now_s() - 5, "via b")).status == 200);
  auto wa = on_a.wait_for(message_created("wamid.X1"), 5s);
  auto wb = on_b.wait_for(message_created("wamid.X1"), 5s);
  REQUIRE(wa.found);
  REQUIRE(wb.found);
  CHECK(ids_and_types(wa.events) == ids_and_types(wb.events));
  CHECK(wa.last().json()["message"]["content"] == "via b");
  auto conv = wa.last().json()["conversation_id"].get<std::string>();
  on_a.drain(300ms);
  on_b.drain(300ms);

  // A dashboard change made through B is committed by B alone: A hears of it only via NOTIFY.
  b.call_json("PATCH", "/api/conversations/" + conv, {{"status", "active"}});
  auto pa = on_a.wait_for(event_of("conversation.updated", conv), 5s);
  REQUIRE(pa.found);
  CHECK(pa.last().json()["conversation"]["status"] == "active");
  auto last = pa.last().id;
  // And the other way round.
  a.call_json("POST", "/api/conversations/" + conv + "/read");
  CHECK(on_b.wait_for(event_of("conversation.updated", conv), 5s).found);
  CHECK(on_a.wait_for(event_of("conversation.updated", conv), 5s).found);

  // Resuming on the other process misses nothing (API.md §3.5 "whichever process served them").
  REQUIRE(a.post_webhook(test::text_webhook(phone_a, "555", "wamid.X2", now_s(), "via a")).status == 200);
  wait_processed(a.db, 2);
  auto expected = stored_events(a.db, "acme", std::stoll(last));
  REQUIRE(expected.size() >= 3);
  test::sse_client resumed{b.port(), events_path("acme"), test::admin_token, last};
  REQUIRE(resumed.is_stream());
  CHECK(ids_and_types(read_exactly(resumed, expected.size())) == expected);
}

TEST_CASE("an idle stream gets keep-alive comments and stays open") {
  test::wachat_fixture f;
  make_site_without_crm(f, "acme", phone_a);
  test::sse_client s{f.port(), events_path("acme"), test::admin_token};
  REQUIRE(s.is_stream());
  auto deadline = std::chrono::steady_clock::now() + 20s;
  auto keep_alive = [&] {
    return std::count(s.comments().begin(), s.comments().end(), "keep-alive") > 0;
  };
  while (!keep_alive() && std::chrono::steady_clock::now() < deadline && !s.ended()) {
    s.read_some(500ms);
  }
  CHECK(keep_alive());
  CHECK(!s.ended());
  // Still a live stream after the comment.
  REQUIRE(f.post_webhook(test::text_webhook(phone_a, "666", "wamid.K1", now_s(), "still here")).status == 200);
  CHECK(s.wait_for(message_created("wamid.K1")).found);
}

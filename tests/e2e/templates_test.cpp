// Templates (API.md §3.2 "GET .../whatsapp/templates", §3.4 template sends): the site actor's
// cache of Meta's list, and template sends checked against it before anything is stored.
#include <catch2/catch.hpp>
#include <ctime>
#include <thread>

#include "support/whatsapp_site.hpp"

using namespace wachat;
using nlohmann::json;

namespace {

json order_update(const std::string& status = "APPROVED", const std::string& language = "en_US") {
  return {{"name", "order_update"},
          {"language", language},
          {"status", status},
          {"category", "UTILITY"},
          {"components", json::array({{{"type", "BODY"}, {"text", "Hi {{1}}, your order {{2}} ships today."}}})}};
}

json template_send(json components) {
  return {{"type", "template"},
          {"template", {{"name", "order_update"}, {"language", "en_US"}, {"components", components}}},
          {"sender_id", "agent-7"},
          {"sender_name", "Ann"}};
}

json body_params(std::vector<std::string> values) {
  json params = json::array();
  for (auto& v : values) params.push_back({{"type", "text"}, {"text", v}});
  return json::array({{{"type", "body"}, {"parameters", params}}});
}

}  // namespace

TEST_CASE("the template list follows every page, is cached, and refresh=true fetches it again") {
  test::whatsapp_site s;
  for (int i = 0; i < 130; ++i) {
    s.graph.add_template(test::waba_id, {{"name", "t" + std::to_string(i)}, {"language", "en_US"}, {"status", "APPROVED"},
                                         {"category", "UTILITY"}, {"components", json::array()}});
  }
  auto list = s.f->call_json("GET", "/api/sites/acme/whatsapp/templates");
  CHECK(list["templates"].size() == 130);
  CHECK(list["templates"][129]["name"] == "t129");
  CHECK(list["error"].is_null());
  CHECK(list["fetched_at"].is_string());
  auto pages = s.graph.calls_matching("GET", "*/message_templates").size();
  CHECK(pages >= 2);  // 100 a page: the second came from paging.next

  s.graph.add_template(test::waba_id, order_update());
  CHECK(s.f->call_json("GET", "/api/sites/acme/whatsapp/templates")["templates"].size() == 130);  // cached
  CHECK(s.graph.calls_matching("GET", "*/message_templates").size() == pages);
  CHECK(s.f->call_json("GET", "/api/sites/acme/whatsapp/templates?refresh=true")["templates"].size() == 131);
  CHECK(s.f->call("GET", "/api/sites/acme/whatsapp/templates?refresh=maybe").status == 422);
  // Another site's token sees nothing.
  s.f->call_json("POST", "/api/sites", {{"id", "beta"}}, 201);
  CHECK(s.f->call("GET", "/api/sites/acme/whatsapp/templates", "", s.f->site_token("beta")).status == 404);
}

TEST_CASE("a template send is checked against Meta's definition; its stored content is the rendered body") {
  test::whatsapp_site s{25 * 3600};  // the window is closed: only templates may go
  s.graph.add_template(test::waba_id, order_update());
  s.graph.add_template(test::waba_id, order_update("PAUSED", "fr"));

  auto missing = s.send(template_send(body_params({"Ann"})));
  CHECK(missing.status == 422);
  CHECK(json::parse(missing.body)["error"]["code"] == "template_invalid");
  CHECK(json::parse(missing.body)["error"]["message"] == "Template 'order_update' body takes 2 parameter(s), 1 given.");
  auto paused = template_send(body_params({"Ann", "#42"}));
  paused["template"]["language"] = "fr";
  CHECK(json::parse(s.send(paused).body)["error"]["message"] == "Template 'order_update' (fr) is PAUSED, not APPROVED.");
  auto unknown = template_send(json::array());
  unknown["template"]["name"] = "nope";
  CHECK(s.send(unknown).status == 422);
  CHECK(s.scalar("SELECT count(*) FROM mod_chat_messages WHERE sender_type = 'agent'") == "0");
  CHECK(s.graph.sent_messages().empty());

  auto ok = s.send(template_send(body_params({"Ann", "#42"})));
  REQUIRE(ok.status == 201);
  auto m = json::parse(ok.body)["message"];
  CHECK(m["content"] == "Hi Ann, your order #42 ships today.");
  CHECK(m["content_type"] == "whatsapp_template");
  auto sent = s.graph.sent_messages();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0]["template"]["components"][0]["parameters"][1]["text"] == "#42");
}

TEST_CASE("templates of a site Meta refuses answer 502 with Meta's error; a send cannot be checked and is refused") {
  test::whatsapp_site s;
  s.graph.fail_next("*/message_templates", 2, 401, 190, "Error validating access token");
  auto r = s.f->call("GET", "/api/sites/acme/whatsapp/templates");
  CHECK(r.status == 502);
  CHECK(json::parse(r.body)["error"]["graph"]["code"] == 190);
  auto send = s.send(template_send(body_params({"Ann", "#42"})));
  CHECK(send.status == 502);
  CHECK(json::parse(send.body)["error"]["code"] == "graph_error");
  CHECK(s.scalar("SELECT count(*) FROM mod_chat_messages WHERE sender_type = 'agent'") == "0");
}

namespace {

json promo_template() {
  return {{"name", "spring_sale"},
          {"language", "en_US"},
          {"status", "APPROVED"},
          {"category", "MARKETING"},
          {"components", json::array({{{"type", "BODY"}, {"text", "20% off this week."}}})}};
}

json promo_send() {
  return {{"type", "template"},
          {"template", {{"name", "spring_sale"}, {"language", "en_US"}}},
          {"sender_id", "agent-7"},
          {"sender_name", "Ann"}};
}

std::string preference_webhook(const std::string& value) {
  json v{{"messaging_product", "whatsapp"},
         {"metadata", test::metadata(test::phone_id)},
         {"contacts", {{{"profile", {{"name", "Sheena"}}}, {"wa_id", test::customer}}}},
         {"user_preferences",
          {{{"wa_id", test::customer}, {"detail", "marketing"}, {"category", "marketing_messages"}, {"value", value},
            {"timestamp", std::time(nullptr)}}}}};
  json body{{"object", "whatsapp_business_account"},
            {"entry", {{{"id", test::waba_id}, {"changes", {{{"field", "user_preferences"}, {"value", v}}}}}}}};
  return body.dump();
}

}  // namespace

TEST_CASE("marketing opt-out: Meta's user_preferences, the site's keywords and 131050 set it; MARKETING is then refused") {
  test::whatsapp_site s;
  s.graph.add_template(test::waba_id, promo_template());
  s.graph.add_template(test::waba_id, order_update());
  auto opted_out = [&] {
    return s.f->call_json("GET", "/api/conversations/" + s.conversation)["visitor"]["marketing_opt_out"];
  };
  CHECK(opted_out() == false);

  REQUIRE(s.f->post_webhook(preference_webhook("stop")).status == 200);
  REQUIRE(test::eventually([&] { return opted_out() == true; }));
  auto refused = s.send(promo_send());
  CHECK(refused.status == 409);
  CHECK(json::parse(refused.body)["error"]["code"] == "recipient_opted_out");
  CHECK(s.send(template_send(body_params({"Ann", "#42"}))).status == 201);  // UTILITY still goes
  CHECK(s.graph.sent_messages().size() == 1);

  REQUIRE(s.f->post_webhook(preference_webhook("resume")).status == 200);
  REQUIRE(test::eventually([&] { return opted_out() == false; }));
  CHECK(s.send(promo_send()).status == 201);

  // Opted out again, then the customer writes (not a keyword): a reply to that is decided without
  // reading the facts, on an opt-out last known as off, and must still not send MARKETING.
  REQUIRE(s.f->post_webhook(preference_webhook("stop")).status == 200);
  REQUIRE(test::eventually([&] { return opted_out() == true; }));
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  REQUIRE(s.f->post_webhook(test::text_webhook(test::phone_id, test::customer, "wamid.AGAIN", now - 5, "hello?")).status == 200);
  REQUIRE(test::eventually([&] {
    return s.f->call_json("GET", "/api/conversations/" + s.conversation + "/messages")["messages"].dump().find(
               "hello?") != std::string::npos;
  }));
  auto still_refused = s.send(promo_send());
  CHECK(still_refused.status == 409);
  CHECK(json::parse(still_refused.body)["error"]["code"] == "recipient_opted_out");
  CHECK(s.graph.sent_messages().size() == 2);
  REQUIRE(s.f->post_webhook(preference_webhook("resume")).status == 200);
  REQUIRE(test::eventually([&] { return opted_out() == false; }));

  // The customer writes one of the site's keywords (trimmed, any case), then the opt-in one.
  auto ts = static_cast<std::int64_t>(std::time(nullptr));
  REQUIRE(s.f->post_webhook(test::text_webhook(test::phone_id, test::customer, "wamid.KW1", ts - 3, "  Stop ")).status == 200);
  REQUIRE(test::eventually([&] { return opted_out() == true; }));
  REQUIRE(s.f->post_webhook(test::text_webhook(test::phone_id, test::customer, "wamid.KW2", ts - 2, "start")).status == 200);
  REQUIRE(test::eventually([&] { return opted_out() == false; }));
  // The site's own keywords replace the defaults.
  REQUIRE(s.f->call("PUT", "/api/sites/acme/whatsapp/settings",
                    json{{"phone_number_id", test::phone_id}, {"opt_out_keywords", {"BASTA"}}}.dump())
              .status == 200);
  REQUIRE(s.f->post_webhook(test::text_webhook(test::phone_id, test::customer, "wamid.KW3", ts - 1, "basta")).status == 200);
  REQUIRE(test::eventually([&] { return opted_out() == true; }));
  REQUIRE(s.f->post_webhook(preference_webhook("resume")).status == 200);
  REQUIRE(test::eventually([&] { return opted_out() == false; }));

  // Meta's 131050 on a send says the same.
  s.graph.fail_next("*/messages", 1, 400, 131050, "Unable to deliver message: user stopped marketing messages");
  CHECK(s.send(promo_send()).status == 502);
  CHECK(test::eventually([&] { return opted_out() == true; }));
}

TEST_CASE("a customer who changed number is sent to at the new one, and Meta's 131050 opts them out there") {
  test::whatsapp_site s;
  s.graph.add_template(test::waba_id, promo_template());
  // A send first, so that this process has looked the conversation's customer up already.
  auto first = s.send(json{{"type", "text"}, {"text", "before"}, {"sender_id", "agent-7"}, {"sender_name", "Ann"}});
  INFO(first.body);
  REQUIRE(first.status == 201);
  REQUIRE(s.graph.sent_messages().size() == 1);
  CHECK(s.graph.sent_messages()[0]["to"] == test::customer);

  const std::string moved = "12195555358";
  json value = {{"messaging_product", "whatsapp"},
                {"metadata", test::metadata(test::phone_id)},
                {"messages",
                 {{{"from", test::customer}, {"id", "wamid.MOVED"}, {"timestamp", std::to_string(std::time(nullptr))},
                   {"type", "system"},
                   {"system", {{"body", "User changed their number"}, {"wa_id", moved}, {"type", "user_changed_number"}}}}}}};
  REQUIRE(s.f->post_webhook(test::envelope(value)).status == 200);
  auto visitor = [&] { return s.f->call_json("GET", "/api/conversations/" + s.conversation)["visitor"]; };
  REQUIRE(test::eventually([&] { return visitor()["whatsapp_phone"] == moved; }));

  // The customer's key changed with the number, and this process remembers the conversation's
  // customer under the number they left (a minute): the refusal must still opt out the customer
  // as they are now.
  s.graph.fail_next("*/messages", 1, 400, 131050, "Unable to deliver message: user stopped marketing messages");
  CHECK(s.send(promo_send()).status == 502);
  auto sends = s.graph.calls_matching("POST", "*/messages");
  REQUIRE(!sends.empty());
  CHECK(json::parse(sends.back().body)["to"] == moved);
  CHECK(test::eventually([&] { return visitor()["marketing_opt_out"] == true; }));
}

TEST_CASE("a test message goes to any number with the site's credentials and stores nothing") {
  test::whatsapp_site s;
  s.graph.add_template(test::waba_id, order_update());
  auto before = s.scalar("SELECT count(*) FROM mod_chat_messages");
  auto r = s.f->call("POST", "/api/sites/acme/whatsapp/test-message",
                     json{{"to", "+260 97 123-4567"}, {"text", "Testing 1, 2"}}.dump());
  REQUIRE(r.status == 200);
  CHECK(json::parse(r.body)["whatsapp_message_id"].get<std::string>().rfind("wamid.", 0) == 0);
  auto sent = s.graph.sent_messages();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0]["to"] == "260971234567");
  CHECK(sent[0]["text"]["body"] == "Testing 1, 2");

  auto t = s.f->call("POST", "/api/sites/acme/whatsapp/test-message",
                     json{{"to", "+260971234567"}, {"template", {{"name", "order_update"}, {"language", "en_US"},
                                                                  {"components", body_params({"Ann", "#1"})}}}}
                         .dump());
  CHECK(t.status == 200);
  auto bad = s.f->call("POST", "/api/sites/acme/whatsapp/test-message",
                       json{{"to", "+260971234567"}, {"template", {{"name", "order_update"}, {"language", "en_US"}}}}.dump());
  CHECK(bad.status == 422);
  CHECK(json::parse(bad.body)["error"]["code"] == "template_invalid");
  CHECK(s.f->call("POST", "/api/sites/acme/whatsapp/test-message", json{{"to", "call me"}, {"text", "x"}}.dump()).status ==
        422);
  CHECK(s.f->call("POST", "/api/sites/acme/whatsapp/test-message", json{{"to", "+260971234567"}}.dump()).status == 422);
  s.graph.fail_next("*/messages", 1, 400, 131026, "Message undeliverable");
  auto refused = s.f->call("POST", "/api/sites/acme/whatsapp/test-message",
                           json{{"to", "+260971234567"}, {"text", "x"}}.dump());
  CHECK(refused.status == 502);
  CHECK(json::parse(refused.body)["error"]["graph"]["code"] == 131026);
  CHECK(s.scalar("SELECT count(*) FROM mod_chat_messages") == before);
  s.f->call_json("POST", "/api/sites", {{"id", "beta"}}, 201);
  CHECK(s.f->call("POST", "/api/sites/acme/whatsapp/test-message", json{{"to", "+260971234567"}, {"text", "x"}}.dump(),
                  s.f->site_token("beta"))
            .status == 404);
}

TEST_CASE("a welcome_template is checked when saved and sent as the first message of a new conversation") {
  test::whatsapp_site s;
  s.graph.add_template(test::waba_id, {{"name", "hello_world"}, {"language", "en_US"}, {"status", "APPROVED"},
                                       {"category", "UTILITY"},
                                       {"components", json::array({{{"type", "BODY"}, {"text", "Hello World"}}})}});
  s.graph.add_template(test::waba_id, order_update());  // takes parameters
  auto put = [&](const std::string& spec) {
    return s.f->call("PUT", "/api/sites/acme/whatsapp/settings",
                     json{{"phone_number_id", test::phone_id}, {"welcome_template", spec}}.dump());
  };
  auto unknown = put("nope");
  CHECK(unknown.status == 422);
  CHECK(json::parse(unknown.body)["error"]["message"].get<std::string>().find("does not exist") != std::string::npos);
  CHECK(put("order_update").status == 422);
  CHECK(s.f->call_json("GET", "/api/sites/acme/whatsapp/status")["welcome_template"].is_null());  // nothing saved
  REQUIRE(put("hello_world").status == 200);
  CHECK(s.f->call_json("GET", "/api/sites/acme/whatsapp/status")["welcome_template"] == "hello_world");

  // The known customer writes again: no new conversation, no welcome.
  auto ts = static_cast<std::int64_t>(std::time(nullptr));
  REQUIRE(s.f->post_webhook(test::text_webhook(test::phone_id, test::customer, "wamid.W1", ts - 5, "again")).status == 200);
  // A new customer: a new conversation, and the welcome goes first.
  REQUIRE(s.f->post_webhook(test::text_webhook(test::phone_id, "16505559999", "wamid.W2", ts - 4, "hi!")).status == 200);
  REQUIRE(test::eventually([&] { return s.graph.sent_messages().size() == 1; }));
  auto sent = s.graph.sent_messages()[0];
  CHECK(sent["to"] == "16505559999");
  CHECK(sent["template"]["name"] == "hello_world");
  CHECK(sent["template"]["language"]["code"] == "en_US");
  CHECK(test::eventually([&] {
    return s.scalar("SELECT content || '|' || sender_name || '|' || status FROM mod_chat_messages"
                    " WHERE sender_type = 'agent'") == "Hello World|Welcome|sent";
  }));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(s.graph.sent_messages().size() == 1);
}

TEST_CASE("a template status webhook makes the site fetch its templates again on next use") {
  test::whatsapp_site s;
  s.graph.add_template(test::waba_id, order_update());
  REQUIRE(s.f->call_json("GET", "/api/sites/acme/whatsapp/templates")["templates"].size() == 1);
  auto fetches = s.graph.calls_matching("GET", "*/message_templates").size();
  s.graph.add_template(test::waba_id, order_update("APPROVED", "fr"));
  CHECK(s.f->call_json("GET", "/api/sites/acme/whatsapp/templates")["templates"].size() == 1);  // cached
  json value{{"event", "APPROVED"}, {"message_template_id", 12345}, {"message_template_name", "order_update"},
             {"message_template_language", "fr"}, {"reason", "NONE"}};
  json body{{"object", "whatsapp_business_account"},
            {"entry", {{{"id", test::waba_id}, {"time", std::time(nullptr)},
                        {"changes", {{{"field", "message_template_status_update"}, {"value", value}}}}}}}};
  REQUIRE(s.f->post_webhook(body.dump()).status == 200);
  CHECK(test::eventually([&] {
    return s.f->call_json("GET", "/api/sites/acme/whatsapp/templates")["templates"].size() == 2;
  }));
  CHECK(s.graph.calls_matching("GET", "*/message_templates").size() > fetches);
}

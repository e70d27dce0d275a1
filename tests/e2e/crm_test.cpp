// CRM linking (API.md §3.6, DESIGN.md §3 item 9): every WhatsApp visitor is found or created
// as a crm_contacts row, and conversations are logged as crm_activities; the real wachatd,
// PostgreSQL and a fake Graph API.
#include <catch2/catch.hpp>

#include <ctime>

#include "support/pg_control.hpp"
#include "support/wachat_fixture.hpp"
#include "support/whatsapp_site.hpp"

using namespace wachat;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

using test::phone_id;

struct crm_site : test::whatsapp_site {
  explicit crm_site(std::map<std::string, std::string> env = {}, std::string binary = {})
      : test::whatsapp_site(60, std::move(env), std::move(binary)) {}

  std::optional<json> contact(const std::string& conversation_id) {
    auto r = f->call("GET", "/api/conversations/" + conversation_id + "/contact");
    if (r.status == 404) return std::nullopt;
    REQUIRE(r.status == 200);
    return json::parse(r.body);
  }
  json wait_contact(const std::string& conversation_id) {
    std::optional<json> c;
    REQUIRE(test::eventually([&] { return (c = contact(conversation_id)).has_value(); }));
    return *c;
  }
  void write(const std::string& from, const std::string& wamid, const std::string& name = "Sheena Nelson") {
    REQUIRE(f->post_webhook(test::text_webhook(phone_id, from, wamid, std::time(nullptr), "hi", name)).status == 200);
  }
  // The open conversation of the customer with this phone.
  std::string conversation_of(const std::string& phone) {
    std::string id;
    REQUIRE(test::eventually([&] {
      auto list = f->call_json("GET", "/api/sites/acme/conversations");  // a named object: the loop reads into it
      for (const auto& c : list["conversations"]) {
        if (c["visitor"]["whatsapp_phone"] == phone && c["status"] != "closed") {
          id = c["id"].get<std::string>();
          return true;
        }
      }
      return false;
    }));
    return id;
  }
};

}  // namespace

TEST_CASE("a new customer gets a CRM contact in E.164, linked to the visitor, and the start is logged") {
  crm_site s;
  auto c = s.wait_contact(s.conversation);
  CHECK(c["phone"] == "+16505551234");
  CHECK(c["name"] == "Sheena Nelson");
  CHECK(c["email"].is_null());
  CHECK(c["created_by_chat"] == true);
  auto conv = s.f->call_json("GET", "/api/conversations/" + s.conversation);
  CHECK(conv["visitor"]["crm_contact_id"] == c["id"]);
  CHECK(s.scalar("SELECT title || '|' || entity_type || '|' || entity_id FROM crm_activities WHERE contact_id = " +
                 c["id"].get<std::string>()) == "WhatsApp conversation started|conversation|" + s.conversation);
  // Another site's token sees nothing; an unknown conversation is 404 too.
  s.f->call_json("POST", "/api/sites", {{"id", "other"}}, 201);
  CHECK(s.f->call("GET", "/api/conversations/" + s.conversation + "/contact", "", s.f->site_token("other")).status == 404);
  CHECK(s.f->call("GET", "/api/conversations/999999/contact").status == 404);
}

TEST_CASE("a contact the CRM holds with the phone written in a local format is found, not duplicated") {
  crm_site s;
  s.wait_contact(s.conversation);
  auto existing = s.scalar(
      "INSERT INTO crm_contacts (site_id, name, phone, email) VALUES ('acme', 'Pablo Ruiz', '(650) 555-9876',"
      " 'pablo@example.com') RETURNING id");
  s.write("16505559876", "wamid.PABLO1", "Pablo");
  auto c = s.wait_contact(s.conversation_of("16505559876"));
  CHECK(c["id"] == existing);
  CHECK(c["name"] == "Pablo Ruiz");
  CHECK(c["phone"] == "(650) 555-9876");
  CHECK(c["email"] == "pablo@example.com");
  CHECK(c["created_by_chat"] == false);
  CHECK(s.scalar("SELECT count(*) FROM crm_contacts") == "2");
}

TEST_CASE("closing a conversation logs its summary; the visitor's next conversation keeps the one contact") {
  crm_site s;
  auto first = s.wait_contact(s.conversation);
  REQUIRE(s.send({{"type", "text"}, {"text", "On its way."}, {"sender_id", "a1"}, {"sender_name", "Ann"}}).status == 201);
  s.f->call_json("PATCH", "/api/conversations/" + s.conversation, {{"status", "closed"}});
  // The customer writes again at once: a new conversation while the close is being logged.
  s.write(test::customer, "wamid.AGAIN1");
  auto next = s.conversation_of(test::customer);
  CHECK(next != s.conversation);
  CHECK(s.wait_contact(next)["id"] == first["id"]);
  std::string details;
  REQUIRE(test::eventually([&] {
    details = s.scalar("SELECT coalesce((SELECT details::text FROM crm_activities WHERE title = 'WhatsApp conversation closed'), '')");
    return !details.empty();
  }));
  auto d = json::parse(details);
  CHECK(d["messages_from_customer"] == 1);
  CHECK(d["messages_from_agents"] == 1);
  CHECK(d["messages"] == 2);
  CHECK(d["first_message_at"].is_string());
  CHECK(d["last_message_at"].is_string());
  CHECK(s.scalar("SELECT count(*) FROM crm_contacts") == "1");
  REQUIRE(test::eventually([&] {
    return s.scalar("SELECT count(*) FROM crm_activities WHERE title = 'WhatsApp conversation started'") == "2";
  }));
  CHECK(s.scalar("SELECT count(*) FROM crm_activities WHERE title = 'WhatsApp conversation closed'") == "1");
}

TEST_CASE("a customer known only by a BSUID gets a contact without a phone, which takes the phone once Meta names it") {
  crm_site s;
  const std::string bsuid = "US.13491208655302741918";
  json value = {{"messaging_product", "whatsapp"},
                {"metadata", test::metadata(phone_id)},
                {"contacts", {{{"profile", {{"name", "Pablo"}}}, {"user_id", bsuid}}}},
                {"messages",
                 {{{"from_user_id", bsuid}, {"id", "wamid.BS1"}, {"timestamp", std::to_string(std::time(nullptr))},
                   {"type", "text"}, {"text", {{"body", "hola"}}}}}}};
  REQUIRE(s.f->post_webhook(test::envelope(value)).status == 200);
  std::string conv;
  REQUIRE(test::eventually([&] {
    auto list = s.f->call_json("GET", "/api/sites/acme/conversations");
    for (const auto& c : list["conversations"]) {
      if (c["visitor"]["whatsapp_user_id"] == bsuid) conv = c["id"].get<std::string>();
    }
    return !conv.empty();
  }));
  auto c = s.wait_contact(conv);
  CHECK(c["phone"].is_null());
  CHECK(c["created_by_chat"] == true);
  CHECK(s.scalar("SELECT whatsapp_user_id FROM crm_contacts WHERE id = " + c["id"].get<std::string>()) == bsuid);
  value["contacts"][0]["wa_id"] = "16505550199";
  value["messages"][0]["from"] = "16505550199";
  value["messages"][0]["id"] = "wamid.BS2";
  REQUIRE(s.f->post_webhook(test::envelope(value)).status == 200);
  REQUIRE(test::eventually([&] { return s.contact(conv).value_or(json::object())["phone"] == "+16505550199"; }));
  CHECK(s.contact(conv).value()["id"] == c["id"]);
}

TEST_CASE("with crm_sync off a site's visitors get no contact, and nothing is left queued") {
  crm_site s;
  s.wait_contact(s.conversation);
  auto put = s.f->call("PUT", "/api/sites/acme/whatsapp/settings", json{{"crm_sync", false}}.dump());
  REQUIRE(put.status == 200);
  s.write("16505550142", "wamid.NOCRM1");
  auto conv = s.conversation_of("16505550142");
  REQUIRE(test::eventually([&] { return s.scalar("SELECT count(*) FROM wa_conversation_jobs") == "0"; }));
  CHECK_FALSE(s.contact(conv).has_value());
  CHECK(s.scalar("SELECT count(*) FROM crm_contacts") == "1");
}

TEST_CASE("a CRM worker that dies holding a job is restarted and the contact still made; messages never wait for it") {
  crm_site s{{{"WACHAT_FAULT_INJECT", "crm_sync:1"}}, test::wachatd::faults_binary()};
  auto c = s.wait_contact(s.conversation);
  CHECK(c["phone"] == "+16505551234");
  auto metrics = test::http_get(s.f->port(), "/metrics").body;
  CHECK(metrics.find("wachat_followup_worker_restarts_total 1") != std::string::npos);
  CHECK(s.scalar("SELECT count(*) FROM crm_contacts") == "1");
}

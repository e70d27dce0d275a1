// PUT settings / POST test against a fake Graph API over real sockets (API.md §3.2), and the
// per-site webhook verify token (API.md §2).
#include <catch2/catch.hpp>
#include <ctime>
#include <thread>

#include "support/fake_graph.hpp"
#include "support/pg_control.hpp"
#include "support/wachat_fixture.hpp"

using namespace wachat;
using nlohmann::json;

namespace {

const std::string phone_id = "106540352242922";
const std::string site_token_value = "EAABsiteToken0123456789wxyz";

struct settings_env {
  test::fake_graph graph;
  std::unique_ptr<test::wachat_fixture> f;

  explicit settings_env(std::map<std::string, std::string> env = {}) {
    graph.add_token(site_token_value);
    graph.add_phone(phone_id, "+1 555-0100", "Acme Support");
    env.emplace("WACHAT_GRAPH_BASE_URL", graph.base_url());
    f = std::make_unique<test::wachat_fixture>(env);
    f->call_json("POST", "/api/sites", {{"id", "acme"}}, 201);
  }

  test::http_result put(const json& body, const std::string& site = "acme") {
    return f->call("PUT", "/api/sites/" + site + "/whatsapp/settings", body.dump());
  }
  json status(const std::string& site = "acme") {
    return f->call_json("GET", "/api/sites/" + site + "/whatsapp/status");
  }
};

json valid_settings() {
  return {{"phone_number", "+15550100"},
          {"phone_number_id", phone_id},
          {"business_account_id", "102290129340398"},
          {"access_token", site_token_value},
          {"read_receipts", "off"},
          {"auto_assign", true}};
}

}  // namespace

TEST_CASE("PUT settings checks the credentials with Graph, then stores the token sealed") {
  settings_env e;
  auto r = e.put(valid_settings());
  REQUIRE(r.status == 200);
  auto body = json::parse(r.body);
  CHECK(body["success"] == true);
  CHECK(body["phone"]["display_phone_number"] == "+1 555-0100");
  CHECK(body["phone"]["verified_name"] == "Acme Support");

  auto calls = e.graph.calls_matching("GET", "*/" + phone_id);
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].headers["authorization"] == "Bearer " + site_token_value);
  CHECK(calls[0].param("fields") == "display_phone_number,verified_name,quality_rating");

  auto s = e.status();
  CHECK(s["configured"] == true);
  CHECK(s["enabled"] == true);
  CHECK(s["credential_source"] == "site");
  CHECK(s["phone_number_id"] == phone_id);
  CHECK(s["phone_number"] == "+15550100");
  CHECK(s["business_account_id"] == "102290129340398");
  CHECK(s["access_token"] == "EAAB…wxyz");
  CHECK(s["read_receipts"] == "off");
  CHECK(s["auto_assign"] == true);
  CHECK(s["last_check"]["ok"] == true);

  // At rest the token is ciphertext, never the token itself.
  auto stored = test::query_scalar(
      e.f->db, "SELECT encode(whatsapp_access_token_encrypted, 'escape') FROM mod_chat_widget_settings");
  CHECK(stored.find(site_token_value) == std::string::npos);
  CHECK(test::query_scalar(e.f->db, "SELECT length(whatsapp_access_token_encrypted) > 16 FROM mod_chat_widget_settings") == "t");
  CHECK(e.f->server->process().stderr_text().find(site_token_value) == std::string::npos);
}

TEST_CASE("PUT settings that Graph refuses answers 422 with Meta's error and saves nothing") {
  settings_env e;
  auto bad = valid_settings();
  bad["access_token"] = "EAABwrongToken000000000";
  auto r = e.put(bad);
  REQUIRE(r.status == 422);
  auto err = json::parse(r.body)["error"];
  CHECK(err["code"] == "graph_rejected_credentials");
  CHECK(err["graph"]["code"] == 190);
  CHECK(err["graph"]["fbtrace_id"].is_string());
  auto s = e.status();
  CHECK(s["configured"] == false);
  CHECK(s["phone_number_id"].is_null());
  CHECK(s["access_token"].is_null());
  CHECK(test::query_scalar(e.f->db, "SELECT count(*) FROM mod_chat_widget_settings"
                                     " WHERE whatsapp_access_token_encrypted IS NOT NULL") == "0");

  // An id Meta does not know is refused the same way (code 100).
  auto unknown = valid_settings();
  unknown["phone_number_id"] = "999";
  r = e.put(unknown);
  REQUIRE(r.status == 422);
  CHECK(json::parse(r.body)["error"]["graph"]["code"] == 100);
}

TEST_CASE("PUT settings when Graph is down answers 502 graph_error and saves nothing") {
  settings_env e;
  e.graph.fail_next("*", 1, 500, 1, "An unknown error occurred");
  auto r = e.put(valid_settings());
  REQUIRE(r.status == 502);
  CHECK(json::parse(r.body)["error"]["code"] == "graph_error");
  CHECK(e.status()["phone_number_id"].is_null());
  // Once Graph is back the same call succeeds.
  CHECK(e.put(valid_settings()).status == 200);
}

TEST_CASE("PUT settings validates its fields before calling Graph") {
  settings_env e;
  auto check_422 = [&](json body) {
    auto r = e.put(body);
    CHECK(r.status == 422);
    CHECK(json::parse(r.body)["error"]["code"] == "invalid_field");
  };
  auto b = valid_settings();
  b["read_receipts"] = "sometimes";
  check_422(b);
  b = valid_settings();
  b["phone_number_id"] = std::string(5000, '1');
  check_422(b);
  b = valid_settings();
  b["phone_number_id"] = "12 34";
  check_422(b);
  b = valid_settings();
  b["access_token"] = 42;
  check_422(b);
  b = valid_settings();
  b.erase("phone_number_id");
  check_422(b);
  CHECK(e.graph.call_count() == 0);
  auto r = e.f->call("PUT", "/api/sites/acme/whatsapp/settings", "{\"phone_number_id\": ");
  CHECK(r.status == 400);
  CHECK(json::parse(r.body)["error"]["code"] == "invalid_json");
  // An id with path characters reaches Graph percent-encoded, as one path segment.
  b = valid_settings();
  b["phone_number_id"] = "../me";
  r = e.put(b);
  CHECK(r.status == 422);
  auto calls = e.graph.calls();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].path.find("/me") == std::string::npos);
}

TEST_CASE("PUT settings: a site token reaches its own site only; a second site cannot take the number") {
  settings_env e;
  auto token = e.f->site_token("acme");
  e.f->call_json("POST", "/api/sites", {{"id", "other"}}, 201);
  auto r = e.f->call("PUT", "/api/sites/other/whatsapp/settings", valid_settings().dump(), token);
  CHECK(r.status == 404);
  r = e.f->call("PUT", "/api/sites/acme/whatsapp/settings", valid_settings().dump(), token);
  CHECK(r.status == 200);
  r = e.put(valid_settings(), "other");
  CHECK(r.status == 409);
  CHECK(json::parse(r.body)["error"]["code"] == "phone_number_in_use");
  CHECK(e.status("other")["phone_number_id"].is_null());
}

TEST_CASE("PUT settings keeps the stored token when none is given and can disable the site") {
  settings_env e;
  REQUIRE(e.put(valid_settings()).status == 200);
  auto r = e.put({{"phone_number_id", phone_id}, {"enabled", false}});
  REQUIRE(r.status == 200);
  auto calls = e.graph.calls_matching("GET", "*/" + phone_id);
  REQUIRE(calls.size() == 2);
  CHECK(calls[1].headers["authorization"] == "Bearer " + site_token_value);
  auto s = e.status();
  CHECK(s["enabled"] == false);
  CHECK(s["credential_source"] == "site");
  CHECK(s["phone_number"] == "+15550100");
}

TEST_CASE("saving a site token without WACHAT_MASTER_KEY answers 503 and stores nothing") {
  test::fake_graph graph;
  graph.add_token(site_token_value);
  graph.add_phone(phone_id, "+1 555-0100", "Acme Support");
  test::wachat_fixture f{{{"WACHAT_GRAPH_BASE_URL", graph.base_url()}, {"WACHAT_MASTER_KEY", ""}}};
  f.call_json("POST", "/api/sites", {{"id", "acme"}}, 201);
  auto r = f.call("PUT", "/api/sites/acme/whatsapp/settings", valid_settings().dump());
  CHECK(r.status == 503);
  CHECK(json::parse(r.body)["error"]["message"].get<std::string>().find("WACHAT_MASTER_KEY") !=
        std::string::npos);
  CHECK(graph.call_count() == 0);
}

TEST_CASE("POST test reports Graph's answer with the saved credentials and records the check") {
  settings_env e;
  auto r = e.f->call_json("POST", "/api/sites/acme/whatsapp/test");
  CHECK(r["ok"] == false);
  CHECK(r["phone"].is_null());
  CHECK(e.status()["last_check"]["ok"] == false);

  REQUIRE(e.put(valid_settings()).status == 200);
  r = e.f->call_json("POST", "/api/sites/acme/whatsapp/test");
  CHECK(r["ok"] == true);
  CHECK(r["phone"]["verified_name"] == "Acme Support");
  CHECK(r["error"].is_null());

  e.graph.remove_token(site_token_value);  // the token was revoked at Meta
  r = e.f->call_json("POST", "/api/sites/acme/whatsapp/test");
  CHECK(r["ok"] == false);
  CHECK(r["error"]["code"] == 190);
  auto s = e.status();
  CHECK(s["last_check"]["ok"] == false);
  CHECK(s["last_check"]["error"].is_string());
}

TEST_CASE("webhook GET verification accepts a site's verify token and nothing else") {
  settings_env e;
  auto verify = e.status()["verify_token"].get<std::string>();
  REQUIRE(verify.size() >= 16);
  auto r = test::http_get(e.f->port(), test::webhook_path + "?hub.mode=subscribe&hub.verify_token=" +
                                           verify + "&hub.challenge=1158201444");
  CHECK(r.status == 200);
  CHECK(r.body == "1158201444");
  r = test::http_get(e.f->port(), test::webhook_path +
                                      "?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1");
  CHECK(r.status == 403);
  r = test::http_get(e.f->port(), test::webhook_path + "?hub.mode=unsubscribe&hub.verify_token=" +
                                      verify + "&hub.challenge=1");
  CHECK(r.status == 403);
}

TEST_CASE("events that named an unknown phone number id are processed once PUT settings adds it") {
  settings_env e;
  REQUIRE(e.f->post_webhook(test::text_webhook(phone_id, "16505551234", "wamid.U1",
                                               std::time(nullptr) - 10, "hello?"))
              .status == 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(e.f->call_json("GET", "/api/sites/acme/conversations")["conversations"].empty());
  REQUIRE(e.put(valid_settings()).status == 200);
  CHECK(test::eventually([&] {
    return e.f->call_json("GET", "/api/sites/acme/conversations")["conversations"].size() == 1;
  }));
}

TEST_CASE("after DELETE /whatsapp the phone number id routes nowhere, from the next delivery on") {
  settings_env e;
  REQUIRE(e.put(valid_settings()).status == 200);
  auto messages = [&] {
    return test::query_scalar(e.f->db, "SELECT count(*) FROM mod_chat_messages");
  };
  // The dispatcher now knows where this phone number id goes.
  REQUIRE(e.f->post_webhook(test::text_webhook(phone_id, "16505551234", "wamid.D1",
                                               std::time(nullptr) - 10, "before"))
              .status == 200);
  REQUIRE(test::eventually([&] { return messages() == "1"; }));
  REQUIRE(e.f->call("DELETE", "/api/sites/acme/whatsapp").status == 204);
  REQUIRE(e.f->post_webhook(test::text_webhook(phone_id, "16505551234", "wamid.D2",
                                               std::time(nullptr) - 5, "after"))
              .status == 200);
  CHECK(test::eventually([&] {
    return test::query_scalar(e.f->db, "SELECT count(*) FROM wa_webhook_events"
                                       " WHERE status = 'unroutable'") == "1";
  }));
  CHECK(messages() == "1");
}

// The site actor owns its site's settings (API.md §3.2, DESIGN.md §2): it loads them once, and
// hears of every change — made through this process, through another wachatd on the same
// database, or by hand in SQL — without a restart, both for routing and for credentials.
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
const std::string first_token = "EAABfirstToken0123456789abcd";
const std::string second_token = "EAABsecondToken0123456789wxyz";

json settings_with(const std::string& token) {
  return {{"phone_number_id", phone_id}, {"access_token", token}};
}

// The bearer token of the newest credentials check Graph received.
std::string last_check_token(test::fake_graph& graph) {
  auto calls = graph.calls_matching("GET", "*/" + phone_id);
  return calls.empty() ? "" : calls.back().headers["authorization"];
}

std::string count(const std::string& db, const std::string& sql) { return test::query_scalar(db, sql); }

}  // namespace

TEST_CASE("a second wachatd hears of credentials saved through the first and uses them at once") {
  test::fake_graph graph;
  graph.add_token(first_token);
  graph.add_token(second_token);
  graph.add_phone(phone_id, "+1 555-0100", "Acme Support");
  std::map<std::string, std::string> env{{"WACHAT_GRAPH_BASE_URL", graph.base_url()}};
  test::wachat_fixture a{env};
  a.call_json("POST", "/api/sites", {{"id", "acme"}}, 201);
  REQUIRE(a.call("PUT", "/api/sites/acme/whatsapp/settings", settings_with(first_token).dump()).status == 200);

  test::wachat_fixture b{env, a.db};
  // b's site actor loads the settings on first use: the token it opens is the first one.
  CHECK(b.call_json("POST", "/api/sites/acme/whatsapp/test")["ok"] == true);
  CHECK(last_check_token(graph) == "Bearer " + first_token);

  REQUIRE(a.call("PUT", "/api/sites/acme/whatsapp/settings", settings_with(second_token).dump()).status == 200);
  graph.remove_token(first_token);  // revoked at Meta: only the new one works now
  // b was not told through HTTP; it hears of the change from PostgreSQL (LISTEN/NOTIFY). Its
  // status is read from its site actor, which only a refresh can change.
  CHECK(test::eventually([&] {
    return b.call_json("GET", "/api/sites/acme/whatsapp/status")["access_token"] == "EAAB…wxyz";
  }, std::chrono::seconds(5)));
  CHECK(b.call_json("POST", "/api/sites/acme/whatsapp/test")["ok"] == true);
  CHECK(last_check_token(graph) == "Bearer " + second_token);

  // Removed through b: a stops routing the number as well.
  REQUIRE(b.call("DELETE", "/api/sites/acme/whatsapp").status == 204);
  CHECK(test::eventually([&] {
    return a.call_json("GET", "/api/sites/acme/whatsapp/status")["phone_number_id"].is_null();
  }, std::chrono::seconds(5)));
  CHECK(a.call_json("POST", "/api/sites/acme/whatsapp/test")["ok"] == false);
}

TEST_CASE("a phone number id moved in SQL by hand routes the next delivery to its new site, no restart") {
  test::wachat_fixture f;
  f.make_site("acme", "111");
  f.make_site("beta", "222");
  auto stored_for = [&](const std::string& site) {
    return count(f.db, "SELECT count(*) FROM mod_chat_messages m JOIN mod_chat_conversations c"
                       " ON c.id = m.conversation_id WHERE c.site_id = '" + site + "'");
  };
  auto now = std::time(nullptr);
  REQUIRE(f.post_webhook(test::text_webhook("111", "16505551234", "wamid.M1", now - 30, "one")).status == 200);
  REQUIRE(f.post_webhook(test::text_webhook("333", "16505551234", "wamid.M2", now - 29, "two")).status == 200);
  REQUIRE(test::eventually([&] { return stored_for("acme") == "1"; }));
  REQUIRE(test::eventually([&] {
    return count(f.db, "SELECT count(*) FROM wa_webhook_events WHERE status = 'unroutable'") == "1";
  }));

  // Another tool moves acme to number 333 and gives beta number 111.
  count(f.db, "UPDATE mod_chat_widget_settings SET whatsapp_phone_number_id = NULL WHERE site_id = 'beta'");
  count(f.db, "UPDATE mod_chat_widget_settings SET whatsapp_phone_number_id = '333' WHERE site_id = 'acme'");
  count(f.db, "UPDATE mod_chat_widget_settings SET whatsapp_phone_number_id = '111' WHERE site_id = 'beta'");

  // The row that waited for 333 is taken again and lands at acme; new deliveries follow the
  // new routes although both numbers were looked up (and remembered) before.
  CHECK(test::eventually([&] { return stored_for("acme") == "2"; }));
  REQUIRE(f.post_webhook(test::text_webhook("111", "16505559999", "wamid.M3", now - 20, "three")).status == 200);
  REQUIRE(f.post_webhook(test::text_webhook("333", "16505551234", "wamid.M4", now - 19, "four")).status == 200);
  CHECK(test::eventually([&] { return stored_for("beta") == "1" && stored_for("acme") == "3"; }));
  CHECK(test::eventually([&] {
    return count(f.db, "SELECT count(*) FROM wa_webhook_events WHERE status <> 'processed'") == "0";
  }));
}

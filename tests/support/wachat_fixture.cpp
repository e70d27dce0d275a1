#include "support/wachat_fixture.hpp"

#include <thread>

#include "support/pg_control.hpp"
#include "support/test_env.hpp"

namespace wachat::test {

using nlohmann::json;

wachat_fixture::wachat_fixture(std::map<std::string, std::string> env, std::string database,
                               std::string binary)
    : db(database.empty() ? fresh_database() : std::move(database)) {
  env.emplace("WACHAT_ADMIN_TOKEN", admin_token);
  env.emplace("WHATSAPP_APP_SECRET", app_secret);
  env.emplace("WACHAT_MASTER_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
  server = std::make_unique<wachatd>(db, env, std::move(binary));
}

http_result wachat_fixture::call(const std::string& method, const std::string& target,
                                 const std::string& body, const std::string& token) {
  std::map<std::string, std::string> headers;
  if (!token.empty()) {
    headers["Authorization"] = "Bearer " + token;
  }
  if (!body.empty()) {
    headers["Content-Type"] = "application/json";
  }
  http_client c{"127.0.0.1", port()};
  return c.request(method, target, body, headers);
}

json wachat_fixture::call_json(const std::string& method, const std::string& target,
                               const json& body, int expect, const std::string& token) {
  auto r = call(method, target, body.is_null() ? std::string{} : body.dump(), token);
  if (r.status != expect) {
    throw std::runtime_error(method + " " + target + " answered " + std::to_string(r.status) +
                             ": " + r.body);
  }
  return r.body.empty() ? json(nullptr) : json::parse(r.body);
}

long wachat_fixture::metric(const std::string& name) {
  auto body = call("GET", "/metrics", {}, "").body;
  auto at = body.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stol(body.substr(at + name.size() + 2));
}

http_result wachat_fixture::post_webhook(const std::string& body) {
  return http_post(port(), webhook_path, body,
                   {{"X-Hub-Signature-256", meta_signature(app_secret, body)}});
}

void wachat_fixture::make_site(const std::string& id, const std::string& phone_number_id) {
  call_json("POST", "/api/sites", {{"id", id}, {"name", id + " Inc"}}, 201);
  query_scalar(db,
               "UPDATE mod_chat_widget_settings SET whatsapp_enabled = true,"
               " whatsapp_phone_number_id = '" + phone_number_id +
                   "' WHERE site_id = '" + id + "' RETURNING 1");
}

std::string wachat_fixture::site_token(const std::string& site) {
  return call_json("POST", "/api/sites/" + site + "/tokens", nullptr, 201)["token"];
}

bool eventually(const std::function<bool()>& check, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (check()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return check();
}

json metadata(const std::string& phone_number_id) {
  return {{"display_phone_number", "15550783881"}, {"phone_number_id", phone_number_id}};
}

std::string envelope(const json& value) {
  json body = {{"object", "whatsapp_business_account"},
               {"entry",
                {{{"id", "102290129340398"},
                  {"changes", {{{"field", "messages"}, {"value", value}}}}}}}};
  return body.dump();
}

std::string text_webhook(const std::string& phone_number_id, const std::string& from,
                         const std::string& wamid, std::int64_t timestamp,
                         const std::string& text, const std::string& name) {
  json value = {{"messaging_product", "whatsapp"},
                {"metadata", metadata(phone_number_id)},
                {"contacts", {{{"profile", {{"name", name}}}, {"wa_id", from}}}},
                {"messages",
                 {{{"from", from},
                   {"id", wamid},
                   {"timestamp", std::to_string(timestamp)},
                   {"type", "text"},
                   {"text", {{"body", text}}}}}}};
  return envelope(value);
}

}  // namespace wachat::test

#pragma once
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "support/http_client.hpp"
#include "support/process.hpp"

namespace wachat::test {

inline const std::string admin_token = "admin-token-for-tests-0123456789";
inline const std::string app_secret = "test-app-secret";
inline const std::string webhook_path = "/api/modules/live-chat/webhooks/whatsapp";

// A wachatd with an admin token and app secret on a fresh database, plus helpers to call it.
struct wachat_fixture {
  std::string db;
  std::unique_ptr<wachatd> server;

  explicit wachat_fixture(std::map<std::string, std::string> env = {}, std::string database = {},
                          std::string binary = {});
  std::uint16_t port() const { return server->port(); }

  http_result call(const std::string& method, const std::string& target,
                   const std::string& body = {}, const std::string& token = admin_token);
  nlohmann::json call_json(const std::string& method, const std::string& target,
                           const nlohmann::json& body = nullptr, int expect = 200,
                           const std::string& token = admin_token);
  http_result post_webhook(const std::string& body);
  // A counter or gauge from /metrics; -1 when it is not there.
  long metric(const std::string& name);

  // Creates a site through the API and gives it a phone number id (directly in the database,
  // as Graph validation is covered elsewhere).
  void make_site(const std::string& id, const std::string& phone_number_id);
  std::string site_token(const std::string& site);
};

// Polls `check` until true or `timeout` passes; returns its last answer.
bool eventually(const std::function<bool()>& check,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));

// A Meta-shaped delivery with one text message.
std::string text_webhook(const std::string& phone_number_id, const std::string& from,
                         const std::string& wamid, std::int64_t timestamp,
                         const std::string& text, const std::string& name = "Sheena Nelson");
// Wraps `value` (the object inside changes[0]) in the envelope.
std::string envelope(const nlohmann::json& value);
nlohmann::json metadata(const std::string& phone_number_id);

}  // namespace wachat::test

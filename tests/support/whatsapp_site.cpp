#include "support/whatsapp_site.hpp"

#include <ctime>
#include <stdexcept>

#include "support/pg_control.hpp"

namespace wachat::test {

using nlohmann::json;

whatsapp_site::whatsapp_site(std::int64_t age_s, std::map<std::string, std::string> env, std::string binary) {
  graph.add_token(token);
  graph.add_phone(phone_id, "+1 555-0100", "Acme Support");
  graph.add_waba(waba_id);
  env["WACHAT_GRAPH_BASE_URL"] = graph.base_url();
  f = std::make_unique<wachat_fixture>(env, std::string{}, std::move(binary));
  f->call_json("POST", "/api/sites", {{"id", "acme"}}, 201);
  auto put = f->call("PUT", "/api/sites/acme/whatsapp/settings",
                     json{{"phone_number_id", phone_id}, {"business_account_id", waba_id}, {"access_token", token}}.dump());
  if (put.status != 200) {
    throw std::runtime_error("whatsapp_site: PUT settings answered " + std::to_string(put.status) + ": " + put.body);
  }
  graph.reset_calls();
  auto ts = static_cast<std::int64_t>(std::time(nullptr)) - age_s;
  if (f->post_webhook(text_webhook(phone_id, customer, "wamid.IN1", ts, "Hi, is my order ready?")).status != 200) {
    throw std::runtime_error("whatsapp_site: the customer's webhook was refused");
  }
  bool found = eventually([&] {
    auto list = f->call_json("GET", "/api/sites/acme/conversations")["conversations"];
    if (list.empty()) return false;
    conversation = list[0]["id"].get<std::string>();
    return true;
  });
  if (!found) {
    throw std::runtime_error("whatsapp_site: the customer's conversation did not appear");
  }
  // read_receipts is on_receipt by default: the customer's message is marked read at Meta. Wait
  // for it, so that it cannot take a failure a test scripts for its own sends.
  if (!eventually([&] { return !graph.read_receipts().empty(); })) {
    throw std::runtime_error("whatsapp_site: no read receipt for the customer's message");
  }
}

http_result whatsapp_site::send(const json& body, const std::string& as) {
  return f->call("POST", "/api/conversations/" + conversation + "/messages", body.dump(), as);
}

std::string whatsapp_site::scalar(const std::string& sql) { return query_scalar(f->db, sql); }

}  // namespace wachat::test

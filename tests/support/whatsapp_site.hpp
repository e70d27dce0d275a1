#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "support/fake_graph.hpp"
#include "support/wachat_fixture.hpp"

namespace wachat::test {

inline const std::string phone_id = "106540352242922";
inline const std::string waba_id = "102290129340398";
inline const std::string token = "EAABsendToken0123456789abcd";
inline const std::string customer = "16505551234";

// A wachatd whose site `acme` has working credentials at a fake Graph API (its number, WABA and
// token), and one customer who wrote `age_s` seconds ago: the ground for sending tests.
struct whatsapp_site {
  fake_graph graph;
  std::unique_ptr<wachat_fixture> f;
  std::string conversation;

  // `binary`: another wachatd build (wachatd::faults_binary() for the supervision tests).
  explicit whatsapp_site(std::int64_t age_s = 60, std::map<std::string, std::string> env = {},
                         std::string binary = {});

  // POST /api/conversations/{conversation}/messages.
  http_result send(const nlohmann::json& body, const std::string& as = admin_token);
  std::string scalar(const std::string& sql);
};

}  // namespace wachat::test

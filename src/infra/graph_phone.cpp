#include "infra/graph_phone.hpp"

#include <nlohmann/json.hpp>

#include "infra/url.hpp"

namespace wachat::infra {

using nlohmann::json;

graph_request phone_check_request(const std::string& phone_number_id, std::string access_token) {
  graph_request req;
  req.path = "/" + percent_encode(phone_number_id);
  req.query = {{"fields", "display_phone_number,verified_name,quality_rating"}};
  req.access_token = std::move(access_token);
  return req;
}

std::string phone_fields_json(const std::string& body) {
  auto j = json::parse(body, nullptr, false);
  json out = json::object();
  if (j.is_object()) {
    for (const char* key : {"id", "display_phone_number", "verified_name", "quality_rating"}) {
      if (j.contains(key) && j[key].is_string()) {
        out[key] = j[key];
      }
    }
  }
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<std::string> display_phone_number(const std::string& body) {
  auto j = json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("display_phone_number") && j["display_phone_number"].is_string()) {
    return j["display_phone_number"].get<std::string>();
  }
  return std::nullopt;
}

}  // namespace wachat::infra

#include "http/responses.hpp"

#include <nlohmann/json.hpp>

namespace wachat::http {

response json_error(bhttp::status status, std::string_view code, std::string_view message) {
  nlohmann::json j = {{"error", {{"code", code}, {"message", message}}}};
  return json_body(status, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

response json_body(bhttp::status status, std::string body) {
  return text_body(status, std::move(body), "application/json");
}

response text_body(bhttp::status status, std::string body, std::string_view content_type) {
  response res{status, 11};
  res.set(bhttp::field::content_type, content_type);
  res.set(bhttp::field::cache_control, "no-store");
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

}  // namespace wachat::http

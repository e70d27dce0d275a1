#pragma once
#include <optional>
#include <string>

#include "infra/graph_client.hpp"

// The Graph call that checks a site's credentials: reading its phone number's fields.
namespace wachat::infra {

graph_request phone_check_request(const std::string& phone_number_id, std::string access_token);

// Meta's answer to that call reduced to the fields the API hands back (a JSON object's text;
// "{}" when the body is not an object).
std::string phone_fields_json(const std::string& body);

std::optional<std::string> display_phone_number(const std::string& body);

}  // namespace wachat::infra

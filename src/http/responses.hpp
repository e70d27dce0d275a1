#pragma once
#include <string>
#include <string_view>

#include "http/types.hpp"

namespace wachat::http {

// `{"error": {"code": ..., "message": ...}}` with the given status (API.md §3).
response json_error(bhttp::status status, std::string_view code, std::string_view message);
response json_body(bhttp::status status, std::string body);
response text_body(bhttp::status status, std::string body, std::string_view content_type);

}  // namespace wachat::http

#pragma once
#include "http/api_common.hpp"

namespace wachat::http {

// Agents' sends (API.md §3.4 "POST /api/conversations/{id}/messages").
void add_message_routes(router& r, api_context& api);

}  // namespace wachat::http

#pragma once
#include "http/api_common.hpp"

namespace wachat::http {

// Agents (API.md §3.3) and conversation reads and updates (§3.4).
void add_conversation_routes(router& r, api_context& api);

}  // namespace wachat::http

#pragma once
#include "http/api_common.hpp"

namespace wachat::http {

// GET /api/sites/{site}/events: the live event stream (API.md §3.5).
void add_event_routes(router& r, api_context& api);

}  // namespace wachat::http

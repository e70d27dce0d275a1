#pragma once
#include "http/api_common.hpp"

namespace wachat::http {

// GET /api/sites/{site}/whatsapp/usage (API.md §3.6): what a site's messages cost, in Meta's
// own categories, counted from the `pricing` objects of Meta's status webhooks.
void add_usage_routes(router& r, api_context& api);

}  // namespace wachat::http

#pragma once
#include "http/api_common.hpp"

namespace wachat::http {

// PUT /api/sites/{site}/whatsapp/settings (checked with the Graph API before anything is saved)
// and POST /api/sites/{site}/whatsapp/test (API.md §3.2).
void add_whatsapp_settings_routes(router& r, api_context& api);

}  // namespace wachat::http

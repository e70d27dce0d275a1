#pragma once
#include "http/api_common.hpp"

namespace wachat::http {

// Admin calls (API.md §3.1) and a site's WhatsApp settings (§3.2).
void add_site_routes(router& r, api_context& api);

}  // namespace wachat::http

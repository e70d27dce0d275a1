#pragma once
#include "http/api_common.hpp"

namespace wachat::http {

// GET /api/conversations/{id}/contact (API.md §3.6): the CRM contact linked to the
// conversation's visitor, or 404 while there is none (CRM linking is off for the site, or not
// done yet: it follows the conversation's first message within moments).
void add_crm_routes(router& r, api_context& api);

}  // namespace wachat::http

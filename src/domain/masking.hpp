#pragma once
#include <string>
#include <string_view>

namespace wachat::domain {

// API.md §3.2: first and last 4 characters of a token of 16 or more, else "****".
std::string mask_token(std::string_view token);

// Site ids: `[a-z0-9][a-z0-9-]{0,62}`.
bool valid_site_id(std::string_view id);

}  // namespace wachat::domain

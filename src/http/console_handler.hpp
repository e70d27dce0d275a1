#pragma once
#include <string>

#include "http/router.hpp"

namespace wachat::http {

// The console (src/console, compiled in): `/console/` and its files, static, with a strict
// Content-Security-Policy built from `public_url` (docs/design.md "The console"). It holds no
// credential of its own: the page asks the operator for a token and calls the API with it.
void add_console_routes(router& r, const std::string& public_url);

}  // namespace wachat::http

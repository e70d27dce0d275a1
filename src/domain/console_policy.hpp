#pragma once
#include <optional>
#include <string>
#include <string_view>

// What the browser is allowed to do with the console's pages (docs/design.md "The console").
namespace wachat::domain {

// `scheme://host[:port]` of an absolute http(s) URL, lower-cased scheme and host; nullopt for
// anything else (a relative URL, another scheme, a URL with user info or odd characters that
// must not reach a header).
std::optional<std::string> url_origin(std::string_view url);

// The console's Content-Security-Policy: its own scripts and styles only (no inline code, no
// eval), API calls and the event stream to its own origin, media previews from its own origin
// and from `public_url`'s (signed media links are built on WACHAT_PUBLIC_URL, which may name
// another host than the one the operator browses), no frames, forms or plugins.
std::string console_csp(std::string_view public_url);

// The Content-Type of a console file by its extension; nullopt for a type the console never
// serves.
std::optional<std::string_view> console_content_type(std::string_view file_name);

}  // namespace wachat::domain

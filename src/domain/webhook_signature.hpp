#pragma once
#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace wachat::domain {

// Parses `sha256=<64 lowercase or uppercase hex>` into the 32 digest bytes.
std::optional<std::array<unsigned char, 32>> parse_signature_header(std::string_view header);

// The form Meta signs: every non-ASCII character of UTF-8 `body` written as `\uXXXX`
// (lowercase hex, UTF-16 code units, so characters beyond the BMP become surrogate pairs).
// nullopt when the body is pure ASCII (the form equals the body) or is not valid UTF-8.
std::optional<std::string> meta_unicode_escaped(std::string_view body);

}  // namespace wachat::domain

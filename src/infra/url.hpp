#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wachat::infra {

// Splits a request target into its path and its query string (without '?').
std::pair<std::string_view, std::string_view> split_target(std::string_view target);

// Decodes %XX escapes (and '+' as space when `plus_is_space`); nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view in, bool plus_is_space);

// Escapes everything but RFC 3986 unreserved characters, for one path segment or query value.
std::string percent_encode(std::string_view in);

// `a=1&b=x%20y` into decoded pairs; malformed pairs are dropped.
std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query);

// The first value of `key`, if present.
std::optional<std::string> query_value(const std::vector<std::pair<std::string, std::string>>& q,
                                       std::string_view key);

}  // namespace wachat::infra

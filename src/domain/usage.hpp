#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

// GET /api/sites/{site}/whatsapp/usage (API.md §3.6): the period asked for.
namespace wachat::domain {

// RFC 3339 date-time (`2026-11-25T17:34:54Z`, `...54.250+02:00`): unix seconds (fractions
// dropped), or nullopt for anything else, including impossible dates.
std::optional<std::int64_t> parse_rfc3339(std::string_view text);

struct usage_period {
  std::int64_t from = 0;  // inclusive, unix seconds
  std::int64_t to = 0;    // exclusive
};

// `from` and `to` as the query gave them (absent: the last 30 days up to `now`); the error
// names the parameter that is wrong.
std::variant<usage_period, std::string> read_usage_period(const std::optional<std::string>& from,
                                                          const std::optional<std::string>& to, std::int64_t now);

}  // namespace wachat::domain

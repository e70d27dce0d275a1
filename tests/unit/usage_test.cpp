// The usage period (domain/usage): RFC 3339 times and the 30-day default.
#include <catch2/catch.hpp>

#include "domain/usage.hpp"

using namespace wachat::domain;

TEST_CASE("RFC 3339 times are read exactly, offsets and fractions included") {
  CHECK(parse_rfc3339("1970-01-01T00:00:00Z") == 0);
  CHECK(parse_rfc3339("2026-11-25T17:34:54Z") == 1795628094);
  CHECK(parse_rfc3339("2026-11-25T19:34:54+02:00") == 1795628094);
  CHECK(parse_rfc3339("2026-11-25T17:34:54.999Z") == 1795628094);
  CHECK(parse_rfc3339("2024-02-29T00:00:00Z") == 1709164800);
  CHECK_FALSE(parse_rfc3339("2025-02-29T00:00:00Z"));
  CHECK_FALSE(parse_rfc3339("2026-13-01T00:00:00Z"));
  CHECK_FALSE(parse_rfc3339("2026-11-25T17:34:54"));
  CHECK_FALSE(parse_rfc3339("2026-11-25"));
  CHECK_FALSE(parse_rfc3339("2026-11-25T17:34:54Zjunk"));
  CHECK_FALSE(parse_rfc3339("1795628094"));
  CHECK_FALSE(parse_rfc3339(""));
}

TEST_CASE("the usage period defaults to the last 30 days and refuses what cannot be a period") {
  auto p = std::get<usage_period>(read_usage_period(std::nullopt, std::nullopt, 1'000'000'000));
  CHECK(p.to == 1'000'000'000);
  CHECK(p.from == 1'000'000'000 - 30 * 86400);
  auto q = std::get<usage_period>(read_usage_period(std::string{"2026-11-01T00:00:00Z"}, std::nullopt, 1795628094));
  CHECK(q.from == 1793491200);
  CHECK(q.to == 1795628094);
  CHECK(std::holds_alternative<std::string>(read_usage_period(std::string{"yesterday"}, std::nullopt, 0)));
  CHECK(std::holds_alternative<std::string>(
      read_usage_period(std::string{"2026-12-01T00:00:00Z"}, std::string{"2026-11-01T00:00:00Z"}, 0)));
}

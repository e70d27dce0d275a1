#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>

#include "domain/window.hpp"

using namespace wachat::domain;

TEST_CASE("an open window counts down to its expiry") {
  auto v = view_window(1000 + 3600, 1000);
  CHECK(v.open);
  CHECK(v.seconds_left == 3600);
  CHECK_FALSE(v.template_required);
  CHECK(v.expires_at == 4600);
}

TEST_CASE("a closed window keeps its last expiry and requires a template") {
  auto v = view_window(900, 1000);
  CHECK_FALSE(v.open);
  CHECK(v.seconds_left == 0);
  CHECK(v.template_required);
  CHECK(v.expires_at == 900);
  auto never = view_window(std::nullopt, 1000);
  CHECK_FALSE(never.open);
  CHECK_FALSE(never.expires_at);
  CHECK(view_window(1000, 1000).open == false);  // expiry is exclusive
}

TEST_CASE("implausible Meta timestamps fall back to the time of receipt") {
  CHECK(plausible_timestamp(1000, 2000) == 1000);
  CHECK(plausible_timestamp(0, 2000) == 2000);
  CHECK(plausible_timestamp(-5, 2000) == 2000);
  CHECK(plausible_timestamp(2000 + 300, 2000) == 2300);
  CHECK(plausible_timestamp(2000 + 301, 2000) == 2000);
  CHECK(plausible_timestamp(INT64_MAX, 2000) == 2000);
}

TEST_CASE("the window extends to 24 h after the customer's message, never back") {
  constexpr std::int64_t day = 24 * 60 * 60;
  CHECK(window_expiry_after(0, 1'700'000'000) == 1'700'000'000 + day);
  CHECK(window_expiry_after(1'700'000'000 + day, 1'700'000'100) == 1'700'000'100 + day);
  // A delivery retried days later carries an old timestamp and must not move the window.
  CHECK(window_expiry_after(1'700'500'000, 1'700'000'000) == 1'700'500'000);
  CHECK(window_expiry_after(1'700'000'000 + day, 1'700'000'000) == 1'700'000'000 + day);
  constexpr std::int64_t max = std::numeric_limits<std::int64_t>::max();
  CHECK(window_expiry_after(0, max) == max);
  CHECK(window_expiry_after(0, max - day + 1) == max);
  CHECK(window_expiry_after(5, std::numeric_limits<std::int64_t>::min()) == 5);
}


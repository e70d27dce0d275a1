#include <catch2/catch.hpp>

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

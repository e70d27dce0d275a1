// The dispatcher's memo of bodies the intake committed (actors/inbound/body_memo.hpp).
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "actors/inbound/body_memo.hpp"

using wachat::actors::body_memo;
using ids = std::vector<std::int64_t>;

TEST_CASE("body_memo hands each body back once and names the held ids a claim would return") {
  body_memo m{10, 1000};
  m.keep(5, "five");
  m.keep(3, "three");
  m.keep(9, "nine");
  CHECK(m.rows() == 3);
  CHECK(m.bytes() == 13);
  CHECK(m.held_above(0, 10) == ids{3, 5, 9});
  CHECK(m.held_above(3, 1) == ids{5});
  CHECK(m.held_above(9, 10).empty());
  REQUIRE(m.take(5));
  CHECK(!m.take(5));  // once
  CHECK(!m.take(4));  // never held
  CHECK(m.rows() == 2);
  CHECK(m.bytes() == 9);
}

TEST_CASE("body_memo keeps nothing beyond its bounds, so the oldest (claimed first) stay") {
  body_memo rows{2, 1000};
  rows.keep(1, "a");
  rows.keep(2, "b");
  rows.keep(3, "c");
  CHECK(rows.held_above(0, 10) == ids{1, 2});

  body_memo bytes{10, 8};
  bytes.keep(1, "12345");
  bytes.keep(2, "6789");  // 9 bytes in all: over
  bytes.keep(3, "abc");
  CHECK(bytes.held_above(0, 10) == ids{1, 3});
  CHECK(bytes.bytes() == 8);
}

TEST_CASE("body_memo drops the bodies of rows a claim passed over") {
  body_memo m{100, 10000};
  for (std::int64_t id = 1; id <= 10; ++id) {
    m.keep(id, "x");
  }
  SECTION("a full claim passed over rows locked elsewhere: those go, those above it stay") {
    // Claim of 3 above 2 returned 4, 6 and 7 (their bodies taken): 3 and 5 were locked by
    // another process or finished.
    for (auto id : {4, 6, 7}) {
      REQUIRE(m.take(id));
    }
    m.claimed(2, {4, 6, 7}, 3);
    CHECK(m.held_above(0, 100) == ids{1, 2, 8, 9, 10});
  }
  SECTION("a claim that was not full leaves nothing above `after` to wait for") {
    REQUIRE(m.take(8));
    m.claimed(6, {8}, 5);
    CHECK(m.held_above(0, 100) == ids{1, 2, 3, 4, 5, 6});
    m.claimed(0, {}, 5);
    CHECK(m.rows() == 0);
    CHECK(m.bytes() == 0);
  }
}

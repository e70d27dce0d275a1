// The send rate of a phone number: slots spaced so no second holds more than the rate.
#include <catch2/catch.hpp>
#include <vector>

#include "domain/send_pacing.hpp"

using wachat::domain::send_pacer;

TEST_CASE("under the rate a send goes at once; a burst is spread out, never dropped") {
  send_pacer p;
  CHECK(p.reserve(1'000'000, 80) == 0);
  CHECK(p.reserve(1'000'000 + 20'000, 80) == 0);  // 20 ms later: past the 13.1 ms spacing
  // 200 at once: each waits its slot.
  std::vector<std::int64_t> at;
  const std::int64_t now = 5'000'000;
  for (int i = 0; i < 200; ++i) {
    at.push_back(now + p.reserve(now, 80));
  }
  // No one-second window holds more than 80 of them.
  for (std::size_t i = 0; i + 80 < at.size(); ++i) {
    CHECK(at[i + 80] - at[i] >= 1'050'000);  // with a 50 ms margin for jitter
  }
  CHECK(at.back() - at.front() < 2'700'000);  // and not much slower than 200 at 80/s
}

TEST_CASE("the rate is the site's setting, bounded to Meta's range") {
  send_pacer p;
  CHECK(p.reserve(0, 1) == 0);
  CHECK(p.reserve(0, 1) == 1'050'000);  // 5 % wider than 1/rate: arrival jitter
  send_pacer fast;
  CHECK(fast.reserve(0, 5000) == 0);
  CHECK(fast.reserve(0, 5000) == 1'050);  // 1,000/s at most
}

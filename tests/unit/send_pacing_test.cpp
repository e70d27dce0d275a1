// The send rate of a phone number: slots spaced so no second holds more than the rate.
#include <catch2/catch.hpp>
#include <algorithm>
#include <random>
#include <vector>

#include "domain/send_pacing.hpp"

using wachat::domain::may_depart;
using wachat::domain::send_pacer;
using wachat::domain::slot_lateness_us;
using wachat::domain::slot_tolerance_us;

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
  for (int i = 0; i < 10; ++i) {
    CHECK(fast.reserve(0, 5000) == 0);  // 1,000/s at most: a burst of 10
  }
  CHECK(fast.reserve(0, 5000) == 1'050);
  CHECK(fast.reserve(0, 5000) == 2'100);
}

TEST_CASE("a quiet number may send a burst of 1 % of its rate at once, then slots are spaced again") {
  CHECK(send_pacer::burst(80) == 1);  // the default rate: no burst
  CHECK(send_pacer::burst(250) == 2);
  CHECK(send_pacer::burst(1000) == 10);
  send_pacer p;
  const std::int64_t now = 1'000'000;
  for (int i = 0; i < 10; ++i) {
    CHECK(p.reserve(now, 1000) == 0);
  }
  CHECK(p.reserve(now, 1000) == 1'050);
  // A quiet spell refills it; a short one only partly.
  CHECK(p.reserve(now + 3'000'000, 1000) == 0);
  send_pacer q;
  for (int i = 0; i < 10; ++i) {
    q.reserve(now, 1000);
  }
  const std::int64_t later = now + 3 * 1'050;  // three slots' time after the burst
  int at_once = 0;
  while (q.reserve(later, 1000) == 0) {
    ++at_once;
  }
  CHECK(at_once == 3);
}

TEST_CASE("a slot a few milliseconds away counts as now, and a second still holds no more than the rate") {
  using wachat::domain::slot_is_now;
  CHECK(slot_is_now(0));
  CHECK(slot_is_now(-10));
  CHECK(slot_is_now(5'000));
  CHECK_FALSE(slot_is_now(5'001));
  CHECK_FALSE(slot_is_now(13'125));  // the next slot at 80/s
  for (int rate : {1, 2, 80, 250, 1000}) {
    for (unsigned seed = 1; seed <= 5; ++seed) {
      // Sends arrive at random, in clumps and quiet spells, a little faster than the rate on
      // average. Worst case for the jitter: in one stretch of `rate` sends each leaves 30 ms
      // after its slot (a slow batch turn); in the next each goes as early as it may. Late ones
      // followed by early ones close up as much as they can.
      std::mt19937 rng{seed};
      std::exponential_distribution<double> gap{rate * 1.2 / 1e6};
      send_pacer p;
      std::int64_t now = 10'000'000;
      std::vector<std::int64_t> at;
      for (int i = 0; i < 6 * rate + 20; ++i) {
        if (i % 7 == 0) {  // seven at a time: clumps, 1.2 times the rate on average
          now += static_cast<std::int64_t>(gap(rng)) * 7;
        }
        const bool late = (i / std::max(rate, 2)) % 2 == 0;
        const auto wait = p.reserve(now, rate);
        if (late) {
          at.push_back(now + wait + 30'000);
        } else {
          at.push_back(slot_is_now(wait) ? now : now + wait);
        }
      }
      std::sort(at.begin(), at.end());
      for (std::size_t i = 0; i + rate < at.size(); ++i) {
        INFO("rate " << rate << " seed " << seed << " send " << i);
        REQUIRE(at[i + rate] - at[i] >= 1'000'000);
      }
    }
  }
}

TEST_CASE("a send may leave until its slot plus the lateness allowed, which the rate's margin covers") {
  CHECK(may_depart(1'000'000, 0));  // no limit
  CHECK(may_depart(1'000'000, 1'000'000));
  CHECK_FALSE(may_depart(1'000'001, 1'000'000));
  // The property above lets sends leave 30 ms late; the lateness allowed stays within that, the
  // early tolerance with it.
  CHECK(slot_lateness_us + slot_tolerance_us <= 30'000);
  for (int rate : {5, 80, 1000}) {
    // rate + 1 slots span at least 1.05 s less the burst's slack: more than a second by more than
    // the lateness and earliness allowed.
    const auto span = static_cast<std::int64_t>(rate) * send_pacer::spacing_us(rate) -
                      (send_pacer::burst(rate) - 1) * send_pacer::spacing_us(rate);
    CHECK(span - 1'000'000 > slot_lateness_us + slot_tolerance_us);
  }
}

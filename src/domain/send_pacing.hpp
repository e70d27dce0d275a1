#pragma once
#include <algorithm>
#include <cstdint>

// The send rate of one business phone number (META.md "Limits": 80 messages/s by default).
namespace wachat::domain {

// Hands out send slots evenly spaced at `rate` per second, so that no one-second window holds
// more than `rate` sends; a caller over the rate gets a later slot (it waits, nothing is
// dropped). The spacing is 5 % wider than 1/rate: the requests reach Meta with some jitter, and
// a slot kept exactly 1/rate apart lets rate+1 of them land within one second. Time in
// microseconds of any monotonic clock. Pure: the site actor owns one.
class send_pacer {
 public:
  // The wait until the caller's slot, which is taken.
  std::int64_t reserve(std::int64_t now_us, int rate) {
    rate = std::clamp(rate, 1, 1000);
    const std::int64_t spacing = 1'050'000 / rate;
    const std::int64_t slot = std::max(now_us, next_free_us_);
    next_free_us_ = slot + spacing;
    return slot - now_us;
  }

 private:
  std::int64_t next_free_us_ = 0;
};

}  // namespace wachat::domain

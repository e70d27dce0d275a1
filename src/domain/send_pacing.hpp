#pragma once
#include <algorithm>
#include <cstdint>

// The send rate of one business phone number (META.md "Limits": 80 messages/s by default).
namespace wachat::domain {

// Hands out send slots at `rate` per second, so that no one-second window holds more than `rate`
// sends; a caller over the rate gets a later slot (it waits, nothing is dropped). Slots are
// spaced 5 % wider than 1/rate, as margin for the jitter with which requests reach Meta (a slot
// kept exactly 1/rate apart lets rate+1 of them land within one second). A number that was quiet
// may send a burst of burst(rate) slots at once (the rest of the 5 % margin: 1 % of the rate):
// agents' sends arrive in clumps, and spacing each clump out made sends wait for their slot
// 11 ms in the median at a quarter of the rate (bench/RESULTS.md). A generic cell rate
// algorithm: `due_` is when the next slot would be were there no burst. Time in microseconds of
// any monotonic clock. Pure: the site actor owns one.
class send_pacer {
 public:
  static constexpr std::int64_t spacing_us(int rate) { return 1'050'000 / std::clamp(rate, 1, 1000); }
  // Slots that may be taken at once after a quiet spell: 1 % of the rate, at least one.
  static constexpr int burst(int rate) { return std::max(1, std::clamp(rate, 1, 1000) / 100); }

  // The wait until the caller's slot, which is taken.
  std::int64_t reserve(std::int64_t now_us, int rate) {
    const std::int64_t spacing = spacing_us(rate);
    const std::int64_t slack = (burst(rate) - 1) * spacing;
    const std::int64_t slot = std::max(now_us, due_us_ - slack);
    due_us_ = std::max(slot, due_us_) + spacing;
    return slot - now_us;
  }

 private:
  std::int64_t due_us_ = 0;
};

// Whether a send whose slot is `wait_us` away may go now. A few milliseconds early is harmless:
// rate + 1 consecutive slots span at least 1.05 s less the burst's slack (40 ms at 1,000/s, 50 ms
// at 80/s), so the sends of one second would have to close up by that much to put rate + 1 into
// it, and sends reach Meta late by a batch turn or two anyway. A
// send that goes now is claimed as it is queued, a statement and a turn less (the conversation
// actor's enqueue_send), where waiting 1 ms for its slot would cost both.
constexpr std::int64_t slot_tolerance_us = 5'000;
constexpr bool slot_is_now(std::int64_t wait_us) { return wait_us <= slot_tolerance_us; }

// How late after its slot a send may still leave. The pacer's slots assume each send leaves at
// its slot; one held up (its sender busy with a statement that waits for a lock, say) would
// leave with the sends of later slots and put more than `rate` into one second at Meta. Within
// this, the margin above still holds (15 ms late plus 5 ms early leave 20 of the 40 ms by which
// rate + 1 slots exceed a second at 1,000/s, 30 of 50 at 80/s and at 5/s, for the way to Meta);
// later, the send takes a new slot instead.
constexpr std::int64_t slot_lateness_us = 15'000;
// Whether a send due to leave by `depart_by_us` (0: no limit) may still leave at `now_us`.
constexpr bool may_depart(std::int64_t now_us, std::int64_t depart_by_us) {
  return depart_by_us == 0 || now_us <= depart_by_us;
}

}  // namespace wachat::domain

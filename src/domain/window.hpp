#pragma once
#include <cstdint>
#include <limits>
#include <optional>

namespace wachat::domain {

constexpr std::int64_t service_window_seconds = 24 * 60 * 60;

// The 24-hour customer service window as the dashboard sees it (API.md §3.4).
struct window_view {
  bool open = false;
  std::optional<std::int64_t> expires_at;  // unix seconds; the last expiry when closed
  std::int64_t seconds_left = 0;
  bool template_required = true;
};

window_view view_window(std::optional<std::int64_t> expires_at, std::int64_t now);

// Meta's timestamps are trusted for the window (DESIGN.md §3.4) but not blindly: one that is
// missing, negative, or in the future (beyond clock skew) is replaced by the time of receipt,
// so a hostile signed body cannot hold a window open for ever.
std::int64_t plausible_timestamp(std::int64_t meta_timestamp, std::int64_t now);

// DESIGN.md §3.4: the window runs 24 h from Meta's timestamp of the customer's message and
// never shrinks, so a delivery retried days later cannot reopen it. Saturates instead of
// overflowing on absurd timestamps from hostile input. The conversation actor applies it; the
// store only takes the greater of this and what another process stored (greatest()).
constexpr std::int64_t window_expiry_after(std::int64_t current_expiry, std::int64_t message_timestamp) {
  std::int64_t candidate = message_timestamp;
  if (message_timestamp > std::numeric_limits<std::int64_t>::max() - service_window_seconds) {
    candidate = std::numeric_limits<std::int64_t>::max();
  } else {
    candidate = message_timestamp + service_window_seconds;
  }
  return candidate > current_expiry ? candidate : current_expiry;
}

}  // namespace wachat::domain

#pragma once
#include <string_view>
#include <vector>

// The order of a sent message's statuses (API.md §3.4), decided here and nowhere else: the store
// turns it into an SQL guard, so that two processes applying statuses still never move one back.
namespace wachat::domain {

// API.md §3.4: sent < failed < delivered < read < played. Meta's order of arrival is not
// that order, so a status is applied only when it ranks higher. Unknown statuses rank 0
// and never replace a known one.
constexpr int status_rank(std::string_view status) {
  if (status == "sent") {
    return 1;
  }
  if (status == "failed") {
    return 2;
  }
  if (status == "delivered") {
    return 3;
  }
  if (status == "read") {
    return 4;
  }
  if (status == "played") {
    return 5;
  }
  return 0;
}

// Whether `next` replaces `current`; equal is not an advance, so a redelivered status is a no-op.
// Local states such as "queued" or "received" rank 0, so any known status advances them.
constexpr bool status_may_advance(std::string_view current, std::string_view next) {
  return status_rank(next) > status_rank(current);
}

// The statuses a stored message may have that `next` must not replace: every known status that
// ranks as high or higher. Empty when `next` is unknown (rank 0): then nothing is replaced at all
// (status_may_advance is false for it), and the caller skips the update.
std::vector<std::string_view> statuses_not_replaced_by(std::string_view next);

}  // namespace wachat::domain

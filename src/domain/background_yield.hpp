#pragma once
#include <chrono>

// Customers' messages before their files: a background pool (the media downloads) holds back
// from starting a job while the inbound path is busy, so that 200 files arriving at once do not
// slow the text messages beside them (issue 14's target). Pure.
namespace wachat::domain {

struct yield_settings {
  // Inbound counts as busy until it has been quiet this long.
  std::chrono::milliseconds quiet{250};
  // The longest the pool holds back: after this without starting a job it starts one anyway,
  // so a process that is never quiet still downloads (one job per `max_wait`, at least).
  // Zero: never hold back.
  std::chrono::milliseconds max_wait{1000};
};

// Whether to hold back from starting a job now, given how long ago inbound work was last seen
// and how long ago the pool last started a job.
bool background_should_yield(std::chrono::milliseconds since_inbound_activity,
                             std::chrono::milliseconds since_last_start, const yield_settings& s);

}  // namespace wachat::domain

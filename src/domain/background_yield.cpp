#include "domain/background_yield.hpp"

namespace wachat::domain {

bool background_should_yield(std::chrono::milliseconds since_inbound_activity,
                             std::chrono::milliseconds since_last_start, const yield_settings& s) {
  if (s.max_wait.count() <= 0) {
    return false;
  }
  const bool inbound_busy = since_inbound_activity < s.quiet;
  return inbound_busy && since_last_start < s.max_wait;
}

}  // namespace wachat::domain

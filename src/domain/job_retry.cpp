#include "domain/job_retry.hpp"

#include <algorithm>

namespace wachat::domain {

std::chrono::milliseconds job_retry_delay(int attempt, std::chrono::milliseconds base) {
  constexpr std::chrono::milliseconds cap = std::chrono::minutes(5);
  auto d = std::max(base, std::chrono::milliseconds(1));
  for (int i = 1; i < attempt && d < cap; ++i) {
    d *= 2;
  }
  return std::min(d, cap);
}

job_retry_decision decide_job_retry(bool permanent, int attempts, std::chrono::milliseconds base) {
  job_retry_decision d;
  d.give_up = permanent || attempts >= job_max_attempts;
  if (!d.give_up) {
    d.delay = job_retry_delay(attempts, base);
  }
  return d;
}

}  // namespace wachat::domain

#pragma once
#include <chrono>

// How a job kept in PostgreSQL (a media download, a CRM sync) is retried: the rule in one
// place, applied by the worker that holds the job.
namespace wachat::domain {

// A job is tried this many times (a worker that dies holding it counts as a try) before it is
// given up with its last reason.
constexpr int job_max_attempts = 5;

// The wait before try `attempt` + 1: `base` doubling, at most 5 minutes.
std::chrono::milliseconds job_retry_delay(int attempt, std::chrono::milliseconds base);

// What becomes of a job whose try failed: given up when the fault cannot go away by itself or
// the tries are used up; else tried again after job_retry_delay.
struct job_retry_decision {
  bool give_up = false;
  std::chrono::milliseconds delay{0};
};
job_retry_decision decide_job_retry(bool permanent, int attempts, std::chrono::milliseconds base);

}  // namespace wachat::domain

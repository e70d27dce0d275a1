#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

namespace wachat::bench {

// Percentiles of latencies in microseconds, from every sample (no histogram buckets: a run
// holds at most a few million samples, and exact tails are what the budget is about).
struct latency_summary {
  std::size_t count = 0;
  double p50_ms = 0;
  double p90_ms = 0;
  double p95_ms = 0;
  double p99_ms = 0;
  double p999_ms = 0;
  double max_ms = 0;
  double mean_ms = 0;

  // Sorts `samples_us` in place.
  static latency_summary of(std::vector<std::uint32_t>& samples_us);
  nlohmann::ordered_json to_json() const;
};

}  // namespace wachat::bench

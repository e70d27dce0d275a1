#include "latency_summary.hpp"

#include <algorithm>
#include <cmath>

namespace wachat::bench {
namespace {

// Nearest-rank percentile: the smallest sample with at least q of all samples at or below it.
double percentile_ms(const std::vector<std::uint32_t>& sorted, double q) {
  if (sorted.empty()) {
    return 0;
  }
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1] / 1000.0;
}

double round3(double v) {
  return std::round(v * 1000.0) / 1000.0;
}

}  // namespace

latency_summary latency_summary::of(std::vector<std::uint32_t>& samples_us) {
  std::sort(samples_us.begin(), samples_us.end());
  latency_summary s;
  s.count = samples_us.size();
  if (samples_us.empty()) {
    return s;
  }
  s.p50_ms = percentile_ms(samples_us, 0.50);
  s.p90_ms = percentile_ms(samples_us, 0.90);
  s.p95_ms = percentile_ms(samples_us, 0.95);
  s.p99_ms = percentile_ms(samples_us, 0.99);
  s.p999_ms = percentile_ms(samples_us, 0.999);
  s.max_ms = samples_us.back() / 1000.0;
  double sum = 0;
  for (auto v : samples_us) {
    sum += v;
  }
  s.mean_ms = sum / static_cast<double>(samples_us.size()) / 1000.0;
  return s;
}

nlohmann::ordered_json latency_summary::to_json() const {
  return {{"count", count},        {"p50", round3(p50_ms)},    {"p90", round3(p90_ms)},
          {"p95", round3(p95_ms)}, {"p99", round3(p99_ms)},    {"p99_9", round3(p999_ms)},
          {"max", round3(max_ms)}, {"mean", round3(mean_ms)}};
}

}  // namespace wachat::bench

#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace wachat::infra {

// Process-wide counters and gauges, rendered as Prometheus text on /metrics.
// Counters are plain atomics handed out once, so the hot path is one relaxed increment.
class metrics {
 public:
  using counter = std::atomic<std::uint64_t>;
  using gauge = std::atomic<std::int64_t>;

  // Stable for the life of this object; `name` must be a valid Prometheus metric name.
  counter& get_counter(const std::string& name, const std::string& help);
  gauge& get_gauge(const std::string& name, const std::string& help);

  void count_request(std::string_view route, int status);

  std::string render() const;

 private:
  struct family {
    std::string help;
    bool is_gauge = false;
    std::unique_ptr<counter> c;
    std::unique_ptr<gauge> g;
  };
  mutable std::mutex mutex_;
  std::map<std::string, family> families_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;
};

}  // namespace wachat::infra

#include "infra/metrics.hpp"

#include <fmt/format.h>

namespace wachat::infra {

metrics::counter& metrics::get_counter(const std::string& name, const std::string& help) {
  std::lock_guard lock{mutex_};
  auto& f = families_[name];
  if (!f.c) {
    f.help = help;
    f.c = std::make_unique<counter>(0);
  }
  return *f.c;
}

metrics::gauge& metrics::get_gauge(const std::string& name, const std::string& help) {
  std::lock_guard lock{mutex_};
  auto& f = families_[name];
  if (!f.g) {
    f.help = help;
    f.is_gauge = true;
    f.g = std::make_unique<gauge>(0);
  }
  return *f.g;
}

void metrics::count_request(std::string_view route, int status) {
  std::lock_guard lock{mutex_};
  ++requests_[{std::string{route}, status}];
}

std::string metrics::render() const {
  std::lock_guard lock{mutex_};
  std::string out;
  out += "# HELP wachat_http_requests_total HTTP requests answered, by route and status.\n";
  out += "# TYPE wachat_http_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    out += fmt::format("wachat_http_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", key.first,
                       key.second, n);
  }
  for (const auto& [name, f] : families_) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, f.help, name,
                       f.is_gauge ? "gauge" : "counter");
    if (f.is_gauge) {
      out += fmt::format("{} {}\n", name, f.g->load(std::memory_order_relaxed));
    } else {
      out += fmt::format("{} {}\n", name, f.c->load(std::memory_order_relaxed));
    }
  }
  return out;
}

}  // namespace wachat::infra

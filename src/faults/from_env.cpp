// Test builds only (wachatd_faults and the test binaries): WACHAT_FAULT_INJECT lists
// `where:n` pairs, comma-separated; the n-th time the fault point `where` is passed, it throws,
// as a bug in a worker would. `where:n*` throws the n-th time and every time after.
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

#include "actors/supervision/fault_point.hpp"

namespace wachat::actors {
namespace {

struct plan {
  std::mutex mutex;
  struct fault {
    long remaining = 0;  // passes left before it throws
    bool forever = false;
  };
  std::map<std::string, fault, std::less<>> faults;

  plan() {
    const char* spec = std::getenv("WACHAT_FAULT_INJECT");
    std::string text = spec == nullptr ? "" : spec;
    std::size_t at = 0;
    while (at < text.size()) {
      auto end = text.find(',', at);
      auto item = text.substr(at, end == std::string::npos ? std::string::npos : end - at);
      at = end == std::string::npos ? text.size() : end + 1;
      auto colon = item.rfind(':');
      if (colon != std::string::npos) {
        faults[item.substr(0, colon)] = {std::strtol(item.c_str() + colon + 1, nullptr, 10),
                                         item.back() == '*'};
      }
    }
  }
};

plan& the_plan() {
  static plan p;
  return p;
}

}  // namespace

void fault_point(std::string_view where) {
  auto& p = the_plan();
  std::lock_guard lock{p.mutex};
  auto it = p.faults.find(where);
  if (it == p.faults.end()) {
    return;
  }
  auto& f = it->second;
  if (f.remaining > 1) {
    --f.remaining;
    return;
  }
  if (f.remaining == 1 || f.forever) {
    f.remaining = 0;
    throw std::runtime_error("fault injected at " + std::string{where});
  }
}

}  // namespace wachat::actors

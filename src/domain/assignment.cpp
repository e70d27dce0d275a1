#include "domain/assignment.hpp"

#include <limits>
#include <tuple>

namespace wachat::domain {

std::optional<std::string> choose_agent(const std::vector<agent_load>& agents) {
  const agent_load* best = nullptr;
  auto key = [](const agent_load& a) {
    return std::make_tuple(a.active_chats, a.last_assigned_at.value_or(std::numeric_limits<std::int64_t>::min()),
                           a.id);
  };
  for (const auto& a : agents) {
    if (a.status != "online" || a.active_chats >= a.max_chats) {
      continue;
    }
    if (best == nullptr || key(a) < key(*best)) {
      best = &a;
    }
  }
  return best == nullptr ? std::nullopt : std::optional<std::string>{best->id};
}

}  // namespace wachat::domain

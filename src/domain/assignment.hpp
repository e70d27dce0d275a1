#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

// Auto-assignment (DESIGN.md §3 item 8): which agent takes a new conversation. Pure: the
// follow-up worker applies it under a per-site lock, so two processes never over-assign.
namespace wachat::domain {

struct agent_load {
  std::string id;
  std::string status;  // online | away | offline
  int active_chats = 0;
  int max_chats = 0;
  std::optional<std::int64_t> last_assigned_at;  // unix seconds; never: nullopt
};

// The online agent with the fewest active chats among those under their max_chats; ties go to
// the one whose last assignment is oldest (never assigned first), then by id, so a run of
// conversations goes round the team. nullopt when nobody can take one.
std::optional<std::string> choose_agent(const std::vector<agent_load>& agents);

}  // namespace wachat::domain

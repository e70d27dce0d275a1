#pragma once
#include <chrono>
#include <string>

#include "actors/inbound/inbound_interfaces.hpp"
#include "actors/site/site_interfaces.hpp"

namespace wachat::actors {

// The state a conversation actor owns (DESIGN.md §2): plain data, decided on by the pure rules
// of src/domain.
struct conversation_state {
  std::size_t in_flight = 0;
  std::uint64_t received = 0;  // units taken, so the site can tell whether its idle ask is stale
  // The window's end as this actor last decided it (unix s; 0: not known). Another process may
  // have moved it further: the store keeps the greater of the two.
  std::int64_t window_expiry = 0;
  static inline const char* name = "conversation";
};

// Applies the conversation's rules to one unit before it is stored (DESIGN.md §3.4, API.md
// §3.4): a customer message moves the window (domain::window_expiry_after; reactions do not),
// a failed status with Meta's 131047 shuts it (domain::closes_window). The decided values go
// with the unit to the store. `now` is the time of receipt, for implausible timestamps.
void decide(conversation_state& st, unit_job& job, std::int64_t now);

// The single writer of one customer's conversation within this process: units are decided on,
// then stored one after another in the order they arrived, each waiting for the previous one's
// commit. Other processes are kept in line by row locks and ON CONFLICT (DESIGN.md §4.4). After
// `idle` with nothing in flight it asks `site` to retire it (the site decides, see site_actor).
// The dashboard's changes (`patch`) are taken in the same turn order: one waits for the unit
// before it, and the next unit waits for it.
conversation_actor::behavior_type conversation(conversation_actor::stateful_pointer<conversation_state> self,
                                               inbound_writer_actor writer,
                                               conversation_writer_actor changes, site_actor site,
                                               std::string key, std::chrono::milliseconds idle);

}  // namespace wachat::actors

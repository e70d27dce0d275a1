#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "domain/inbound_units.hpp"
#include "infra/event_log.hpp"

namespace pqxx {
class transaction_base;
}

namespace wachat::infra {

// Stores one inbound reaction or status of `site` in the caller's transaction (DESIGN.md §3 items
// 5 and 10): the target's reactions, statuses with history and the never-backwards rule
// (domain::statuses_not_replaced_by), and the window shut when the conversation actor decided
// so (`closes_window`: Meta's 131047), unless a later customer message is stored. Plain messages
// go through infra::store_units only (one implementation of visitors, conversations and the
// window); given one, this throws std::logic_error. Idempotent: a unit stored before (identical
// reaction or status) changes nothing. Live events to announce go to `events`, to be appended
// in the same transaction. Throws on database errors.
domain::unit_outcome store_unit(pqxx::transaction_base& tx, const std::string& site,
                                std::int64_t event_id, const domain::inbound_unit& unit,
                                bool closes_window, std::vector<pending_event>& events);

}  // namespace wachat::infra

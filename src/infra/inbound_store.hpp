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

// Stores one inbound message or status of `site` in the caller's transaction (DESIGN.md §3 items
// 2–5 and 10): visitor, conversation, message, window, reactions, replies, statuses with history
// and the never-backwards rule, 131047 closing the window. Idempotent: a unit stored before
// (wamid, identical status) changes nothing. Live events to announce go to `events`, to be
// appended in the same transaction. Throws on database errors.
domain::unit_outcome store_unit(pqxx::transaction_base& tx, const std::string& site,
                                std::int64_t event_id, const domain::inbound_unit& unit,
                                std::vector<pending_event>& events);

}  // namespace wachat::infra

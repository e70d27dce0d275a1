#pragma once
#include <caf/actor_addr.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <cstddef>
#include <cstdint>
#include <string>

#include "actors/atoms.hpp"
#include "actors/inbound/inbound_messages.hpp"

// The typed interfaces of the site area (DESIGN.md §2): a site actor per site, a conversation
// actor per live customer conversation within it.
namespace wachat::actors {

// One customer's conversation in this process: the single writer of its window and order.
// `store` answers once the unit is committed; `stop` is sent by its site only.
using conversation_actor =
    caf::typed_actor<caf::replies_to<store_atom, unit_job>::with<domain::unit_outcome>,
                     caf::reacts_to<stop_atom>>;

// One site: routes each unit to its customer's conversation actor (spawned on first use) and
// retires idle ones. `idle` comes from a conversation actor (its key, id and units taken);
// `count` answers how many conversation actors are live.
using site_actor =
    caf::typed_actor<caf::replies_to<store_atom, unit_job>::with<domain::unit_outcome>,
                     caf::reacts_to<idle_atom, std::string, caf::actor_id, std::uint64_t>,
                     caf::replies_to<count_atom>::with<std::size_t>,
                     caf::reacts_to<stop_atom>>;

}  // namespace wachat::actors

#pragma once
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/atoms.hpp"

// The typed interface of the media workers (DESIGN.md §2).
namespace wachat::actors {

using wake_atom = caf::atom_constant<caf::atom("wake")>;  // there may be work now

// The media workers' pool: looks for due jobs in PostgreSQL every half second on its own, and
// at once when woken (say after a retry was requested).
using media_pool_actor = caf::typed_actor<caf::reacts_to<wake_atom>, caf::reacts_to<stop_atom>>;

}  // namespace wachat::actors

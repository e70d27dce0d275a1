#pragma once
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/atoms.hpp"
#include "actors/inbound/inbound_messages.hpp"

// The typed interfaces of the inbound path (DESIGN.md §2): what each actor takes and answers.
namespace wachat::actors {

// The inbound writer pool: stores a unit and answers once it is committed (or why not).
using inbound_writer_actor =
    caf::typed_actor<caf::replies_to<write_atom, unit_job>::with<domain::unit_outcome>,
                     caf::reacts_to<stop_atom>>;

}  // namespace wachat::actors

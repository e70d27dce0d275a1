#pragma once
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/atoms.hpp"

// The typed interface of the readiness probe (DESIGN.md §2).
namespace wachat::actors {

// Answers `probe` with whether `SELECT 1` succeeded on its connection.
using db_probe_actor = caf::typed_actor<caf::replies_to<probe_atom>::with<bool>, caf::reacts_to<stop_atom>>;

}  // namespace wachat::actors

#pragma once
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/api/api_call.hpp"
#include "actors/atoms.hpp"

// The typed interface of the API gateway (DESIGN.md §2): what the HTTP layer sends it.
namespace wachat::actors {

using run_atom = caf::atom_constant<caf::atom("run")>;

// Takes dashboard calls; `stop` runs what is queued, then ends the pool and its workers.
using api_gateway_actor = caf::typed_actor<caf::reacts_to<run_atom, api_call>, caf::reacts_to<stop_atom>>;

// A gateway worker: carries out one call and says when it is done (`done`).
using api_worker_actor = caf::typed_actor<caf::replies_to<run_atom, api_call>::with<done_atom>,
                                          caf::reacts_to<stop_atom>>;

}  // namespace wachat::actors

// Local messages only: never serialized.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::actors::api_call)

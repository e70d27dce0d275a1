#pragma once
#include <caf/fwd.hpp>

namespace wachat::actors {

// From a thread outside the actor system (main's shutdown): tells `actor` to stop (stop_atom),
// waits until it is gone, and clears the handle. Does nothing for an empty handle.
void stop_and_wait(caf::actor_system& sys, caf::actor& actor);

}  // namespace wachat::actors

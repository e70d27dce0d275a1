#include "actors/supervision/stop_and_wait.hpp"

#include <caf/all.hpp>

#include "actors/atoms.hpp"

namespace wachat::actors {

void stop_and_wait(caf::actor_system& sys, caf::actor& actor) {
  if (!actor) {
    return;
  }
  caf::scoped_actor self{sys};
  self->monitor(actor);
  self->send(actor, stop_atom::value);
  self->receive([](const caf::down_msg&) {});
  actor = nullptr;
}

}  // namespace wachat::actors

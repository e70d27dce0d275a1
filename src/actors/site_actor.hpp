#pragma once
#include <caf/actor.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "infra/metrics.hpp"

namespace wachat::actors {

struct site_actor_settings {
  std::string site;
  caf::actor writer;  // the inbound writer pool
  // A conversation actor with nothing to do for this long stops; the next unit brings it back.
  std::chrono::milliseconds conversation_idle{std::chrono::seconds(60)};
  infra::metrics::gauge* live_conversations = nullptr;
};

// One per site (DESIGN.md §2): owns the map of live conversation actors and hands each unit
// (`store_atom, unit_job`) to the actor of its customer, which answers with a unit_outcome.
// Later issues add the site's settings, template cache and send rate limits here.
caf::actor spawn_site_actor(caf::actor_system& sys, site_actor_settings settings);

}  // namespace wachat::actors

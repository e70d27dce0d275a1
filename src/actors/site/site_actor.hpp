#pragma once
#include <caf/fwd.hpp>
#include <chrono>
#include <string>

#include "actors/inbound/inbound_interfaces.hpp"
#include "actors/site/site_interfaces.hpp"
#include "infra/metrics.hpp"

namespace wachat::actors {

struct site_actor_settings {
  std::string site;
  inbound_writer_actor writer;
  // A conversation actor with nothing to do for this long stops; the next unit brings it back.
  std::chrono::milliseconds conversation_idle{std::chrono::seconds(60)};
  infra::metrics::gauge* live_conversations = nullptr;
};

// One per site (DESIGN.md §2): owns the map of live conversation actors and hands each unit
// (`store_atom, unit_job`) to the actor of its customer, which answers with a unit_outcome.
// Later issues add the site's settings, template cache and send rate limits here.
site_actor spawn_site_actor(caf::actor_system& sys, site_actor_settings settings);

}  // namespace wachat::actors

#pragma once
#include <caf/fwd.hpp>
#include <chrono>
#include <string>

#include "actors/inbound/inbound_interfaces.hpp"
#include "actors/site/conversation_actor.hpp"
#include "actors/site/site_interfaces.hpp"
#include "infra/config.hpp"
#include "infra/metrics.hpp"

namespace wachat::infra {
class graph_client;
}

namespace wachat::actors {

struct site_actor_settings {
  infra::site_settings settings;  // as loaded by the directory
  conversation_links conversations;  // what each conversation actor is spawned with
  site_directory_actor directory;  // writes the settings it decides on
  const infra::config* cfg = nullptr;
  infra::graph_client* graph = nullptr;  // outlives the actor system's actors
  infra::metrics::gauge* live_conversations = nullptr;
};

// One per site (DESIGN.md §2): owns the site's settings and opened credentials, decides
// changes to them (a PUT is checked with Graph before the directory writes it), and owns the
// map of live conversation actors, handing each unit (`store_atom, unit_job`) to the actor of
// its customer, which answers with a unit_outcome. Later issues add the template cache and
// the send rate limits here.
site_actor spawn_site_actor(caf::actor_system& sys, site_actor_settings settings);

}  // namespace wachat::actors

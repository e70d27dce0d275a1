#pragma once
#include <caf/fwd.hpp>
#include <chrono>
#include <memory>
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

struct site_directory_settings {
  std::string database_url;
  const infra::config* cfg = nullptr;    // outlives the actor system's actors
  infra::graph_client* graph = nullptr;  // likewise
  conversation_links conversations;  // what every conversation actor is spawned with
  // How often other processes' settings changes are looked for (LISTEN, no query).
  std::chrono::milliseconds listen_poll{250};
  std::chrono::milliseconds outbox_sweep{1000};
};

// It also sweeps the outbox (every `outbox_sweep`): entries nobody is on — their actor or
// process stopped, or an attempt's answer was lost and its doubt period is over — go to their
// conversation's actor again (`resume`).
// Spawns the directory of this process's sites (detached: it owns two database connections).
// A unit whose phone number id no site has is answered at once with `unroutable` set.
site_directory_actor spawn_site_directory(caf::actor_system& sys, site_directory_settings settings,
                                          std::shared_ptr<infra::metrics> metrics);

}  // namespace wachat::actors

#pragma once
#include <caf/fwd.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "actors/inbound/inbound_interfaces.hpp"
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
  inbound_writer_actor writer;
  conversation_writer_actor changes;
  std::chrono::milliseconds conversation_idle{std::chrono::seconds(60)};
  // How often other processes' settings changes are looked for (LISTEN, no query).
  std::chrono::milliseconds listen_poll{250};
};

// Spawns the directory of this process's sites (detached: it owns two database connections).
// A unit whose phone number id no site has is answered at once with `unroutable` set.
site_directory_actor spawn_site_directory(caf::actor_system& sys, site_directory_settings settings,
                                          std::shared_ptr<infra::metrics> metrics);

}  // namespace wachat::actors

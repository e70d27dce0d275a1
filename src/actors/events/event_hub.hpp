#pragma once
#include <caf/fwd.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "http/stream_sink.hpp"
#include "infra/metrics.hpp"

namespace wachat::actors {

// Fans live events (API.md §3.5) out to Server-Sent-Event subscribers. Events are rows of
// wa_events written by any wachatd; the hub's actor (events_interfaces.hpp) learns of them
// through LISTEN/NOTIFY on its own connection, renders each once, and writes it to every
// subscriber of its site. This handle spawns it and lets non-actor callers (the HTTP handler)
// subscribe. Light on purpose: no CAF for the handler's translation unit.
class event_hub {
 public:
  event_hub(caf::actor_system& sys, std::string database_url, std::shared_ptr<infra::metrics> metrics);
  ~event_hub();
  event_hub(const event_hub&) = delete;
  event_hub& operator=(const event_hub&) = delete;

  // A new stream of the site's events after event id `after` (0: all it still has).
  void subscribe(const std::string& site_id, std::int64_t after, std::shared_ptr<http::stream_sink> sink);
  // Closes every stream and stops the actor; returns when it is gone.
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace wachat::actors

#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "http/types.hpp"
#include "infra/metrics.hpp"

namespace wachat::http {

// Fans live events (API.md §3.5) out to Server-Sent-Event subscribers. Events are rows of
// wa_events written by any wachatd; this process learns of them through LISTEN/NOTIFY on its
// own connection and thread, renders each once, and writes it to every subscriber of its site.
class event_hub {
 public:
  event_hub(std::string database_url, std::shared_ptr<infra::metrics> metrics);
  ~event_hub();
  event_hub(const event_hub&) = delete;
  event_hub& operator=(const event_hub&) = delete;

  void start();
  void stop();

  // Adds a subscriber; with `last_event_id`, first replays the site's events after it (24 h).
  void subscribe(const std::string& site_id, std::optional<std::int64_t> last_event_id,
                 std::shared_ptr<stream_sink> sink);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace wachat::http

#pragma once
#include <caf/fwd.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "actors/media/media_interfaces.hpp"
#include "infra/metrics.hpp"

namespace wachat::infra {
class blob_store;
class graph_client;
struct config;
}  // namespace wachat::infra

namespace wachat::actors {

struct media_settings {
  std::string database_url;
  const infra::config* cfg = nullptr;  // the fallback token, and site settings' keys
  // Shared: the workers (detached) may outlive the pool; stop() it to cut downloads short.
  std::shared_ptr<infra::graph_client> graph;
  std::shared_ptr<infra::blob_store> blobs;
  unsigned workers = 4;
  std::chrono::milliseconds retry_base{2000};
  std::chrono::milliseconds stall{30000};
  // Customers' messages first (domain::background_should_yield): a number that grows as inbound
  // work is done, and the longest a download waits for it to go quiet (0: never).
  std::function<std::uint64_t()> inbound_activity;
  std::chrono::milliseconds yield_max{1000};
};

// The media workers (DESIGN.md §2, §3 item 6): a supervised pool of detached workers, each
// with its own connection, taking one job at a time from wa_media_jobs (committed with its
// message). A job: `GET /{media-id}` with the site's token, type and size checked against
// Meta's limits, the file streamed into the blob store (never whole in memory) with its sha256
// checked, then the message `stored` or, after bounded tries, `failed` with the reason; each
// change a message.updated event. A worker that dies is restarted with back-off
// (`wachat_media_worker_restarts_total`) and its job goes back to the queue, counted as a try,
// so a file that kills every worker ends `failed` rather than killing them for ever.
media_pool_actor spawn_media_workers(caf::actor_system& sys, media_settings settings,
                                     std::shared_ptr<infra::metrics> metrics);

}  // namespace wachat::actors

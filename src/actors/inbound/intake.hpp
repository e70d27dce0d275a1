#pragma once
#include <caf/fwd.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "infra/metrics.hpp"

namespace wachat::actors {

// How a webhook's commit ended. `stored` is the only outcome that may be answered 2xx.
struct intake_outcome {
  bool stored = false;
  std::int64_t event_id = 0;
};

// One validly signed webhook body on its way into wa_webhook_events.
struct intake_item {
  std::string body;
  std::string status;                    // "pending" or "rejected"
  std::string error;                     // the rejection reason, empty otherwise
  std::function<void(intake_outcome)> done;  // runs on the writer's thread; must not block
};

struct intake_settings {
  std::string database_url;
  std::uint32_t writers = 2;
  std::uint32_t batch_max = 1000;
  std::shared_ptr<infra::metrics> metrics;
  // Called on the writer's thread after each commit (wakes the inbox dispatcher).
  std::function<void(std::int64_t first_id)> on_commit;  // the batch's smallest id
};

// The group-committing writers: each owns one database connection and commits everything that
// reached its mailbox while the previous commit ran, in one transaction (DESIGN.md §2, intake).
// Callers hand items through submit(), which never blocks: the first writer with a short queue
// takes each, the others help under load.
class intake {
 public:
  intake(caf::actor_system& sys, intake_settings settings);
  ~intake();
  intake(const intake&) = delete;
  intake& operator=(const intake&) = delete;

  void submit(intake_item item);

  // Asks every writer to commit what it holds and stop; returns when they have.
  void shutdown();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace wachat::actors

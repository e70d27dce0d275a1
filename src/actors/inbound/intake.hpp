#pragma once
#include <atomic>
#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <cstdint>
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

// Where intake reports how each webhook's commit ended: the HTTP layer, which answers it.
// Called from the writers' threads (and the supervisor's, for a dead writer's webhooks), once
// per ticket; must not block.
class intake_listener {
 public:
  virtual ~intake_listener() = default;
  virtual void settled(std::uint64_t ticket, intake_outcome outcome) = 0;
};

// One validly signed webhook body on its way into wa_webhook_events; plain data.
struct intake_item {
  std::uint64_t ticket = 0;  // the caller's, handed back in intake_listener::settled
  std::string body;
  std::string status;  // "pending" or "rejected"
  std::string error;   // the rejection reason, empty otherwise
};

struct intake_settings {
  std::string database_url;
  std::uint32_t writers = 2;
  std::uint32_t batch_max = 1000;
  std::shared_ptr<infra::metrics> metrics;
  std::shared_ptr<intake_listener> listener;
  // Told `(wake_atom, first id)` after each commit: the inbox dispatcher (untyped here to keep
  // this header light).
  caf::actor wake;
  // The dispatcher's owner key (inbox_dispatcher::owner_key), read at every commit: pending rows
  // are committed with it and handed to `wake` with their bodies (`born`) instead; a commit whose
  // answer was lost is reported (`doubt`, with the key). None or 0: rows go to any claim.
  std::shared_ptr<const std::atomic<std::int64_t>> owner_key;
};

// The webhook intake (DESIGN.md §2): a supervisor actor (supervised_workers,
// `wachat_intake_writer_restarts_total`) and its group-committing writers, typed actors each
// owning one database connection, committing everything that reached its mailbox while the
// previous commit ran in one statement. submit() never blocks: the first writer with a short
// queue takes each item, the others help under load. Every ticket is settled once: with the
// writer's outcome, or not stored if its writer died or none is up (the caller answers 503 and
// Meta delivers again).
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

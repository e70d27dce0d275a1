#pragma once
#include <caf/fwd.hpp>
#include <memory>
#include <string>

#include "actors/api/api_call.hpp"
#include "infra/metrics.hpp"

namespace wachat::actors {

// The HTTP layer's way into the actors for dashboard calls (DESIGN.md §2): a typed pool actor
// taking `api_call`s, and its detached workers, each owning one PostgreSQL connection, so the
// HTTP threads never block on the database. A worker runs one call at a time through the
// executor: reads as direct queries, writes by asking the site actors. The pool supervises the
// workers (supervised_workers: `wachat_db_worker_restarts_total`); a call whose worker died is
// run again once, then answered as if the database were away.
class api_gateway {
 public:
  api_gateway(caf::actor_system& sys, std::string database_url, unsigned workers,
              std::shared_ptr<api_executor> executor, std::shared_ptr<infra::metrics> metrics);
  ~api_gateway();
  api_gateway(const api_gateway&) = delete;
  api_gateway& operator=(const api_gateway&) = delete;

  // Hands `call` to the pool; never blocks the caller.
  void submit(api_call call);
  // Runs what is queued, then stops the workers; returns when they have.
  void shutdown();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace wachat::actors

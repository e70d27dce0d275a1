#pragma once
#include <caf/fwd.hpp>
#include <functional>
#include <memory>
#include <string>

#include "infra/metrics.hpp"

namespace pqxx {
class connection_base;
}

namespace wachat::actors {

// A pool of detached actors, each owning one PostgreSQL connection, that run database jobs off
// the HTTP threads (DESIGN.md §2: http never blocks on the database). A job gets a live
// connection, or nullptr when the database cannot be reached (it must then answer 503). The
// pool actor hands out one job per worker at a time and supervises them (supervised_workers:
// `wachat_db_worker_restarts_total`); a job whose worker died is run again once.
class db_pool {
 public:
  using job = std::function<void(pqxx::connection_base*)>;

  db_pool(caf::actor_system& sys, std::string database_url, unsigned workers,
          std::shared_ptr<infra::metrics> metrics);
  ~db_pool();
  db_pool(const db_pool&) = delete;
  db_pool& operator=(const db_pool&) = delete;

  // Runs `j` on the least recently chosen worker; never blocks the caller.
  void run(job j);
  void shutdown();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace wachat::actors

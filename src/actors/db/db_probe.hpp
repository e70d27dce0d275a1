#pragma once
#include <caf/fwd.hpp>
#include <functional>
#include <memory>
#include <string>

namespace wachat::actors {

// Answers "does PostgreSQL answer right now?" for /readyz, on its own connection and thread,
// so that a hung database never blocks an HTTP thread.
class db_probe {
 public:
  db_probe(caf::actor_system& sys, std::string database_url);
  ~db_probe();
  db_probe(const db_probe&) = delete;
  db_probe& operator=(const db_probe&) = delete;

  // `done(true)` when `SELECT 1` succeeded; runs on an actor's thread, must not block.
  void check(std::function<void(bool)> done);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace wachat::actors

#pragma once
#include <functional>
#include <memory>
#include <pqxx/connection>
#include <string>

namespace wachat::actors {

// What every worker of a job pool (actors/supervision/job_pool) holds: its name in the jobs'
// claimed_by (process and slot), its own connection, and whether it may still hold a job that
// must be given back (a fresh worker, whose predecessor died, or one whose last job ended in a
// database failure).
struct job_worker_base {
  std::string database_url;
  std::string worker_name;
  std::unique_ptr<pqxx::connection> conn;
  bool may_hold_jobs = true;

  // The worker's connection, made (again) when there is none or it broke.
  pqxx::connection_base& connection();
};

// One pump of `w`: a database failure is logged as `event` at warn and answered false (no job
// done); the job it held is given back on the next pump. Anything else escapes: the worker dies
// and its supervisor restarts it.
bool guarded_pump(job_worker_base& w, const char* event, const std::function<bool()>& pump);

}  // namespace wachat::actors

#include "actors/supervision/job_worker.hpp"

#include <pqxx/pqxx>

#include "infra/cached_statement.hpp"
#include "infra/log.hpp"

namespace wachat::actors {

pqxx::connection_base& job_worker_base::connection() {
  if (!conn || !conn->is_open()) {
    conn.reset();
    conn = infra::connect_for_probes(database_url);
  }
  return *conn;
}

bool guarded_pump(job_worker_base& w, const char* event, const std::function<bool()>& pump) {
  try {
    return pump();
  } catch (const pqxx::broken_connection& e) {
    w.conn.reset();
    w.may_hold_jobs = true;
    infra::log_warn(event, {{"error", e.what()}});
  } catch (const pqxx::sql_error& e) {
    w.may_hold_jobs = true;
    infra::log_warn(event, {{"error", e.what()}});
  }
  return false;
}

}  // namespace wachat::actors

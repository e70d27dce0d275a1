#include "infra/migrations.hpp"

#include <fmt/format.h>

#include <pqxx/pqxx>
#include <stdexcept>

#include "infra/log.hpp"

namespace wachat::infra {
namespace {
// Arbitrary but fixed: every wachatd takes this advisory lock while migrating.
constexpr long long migration_lock_key = 0x7761636861740001LL;
}  // namespace

int apply_migrations(const std::string& database_url) {
  pqxx::connection conn{database_url};
  {
    pqxx::nontransaction nt{conn};
    nt.exec("SELECT pg_advisory_lock(" + std::to_string(migration_lock_key) + ")");
  }
  int applied = 0;
  try {
    {
      pqxx::work w{conn};
      w.exec(
          "CREATE TABLE IF NOT EXISTS schema_migrations ("
          " number integer PRIMARY KEY, name text NOT NULL,"
          " applied_at timestamptz NOT NULL DEFAULT now())");
      w.commit();
    }
    for (const auto& m : embedded_migrations()) {
      pqxx::work w{conn};
      auto done = w.exec_params("SELECT 1 FROM schema_migrations WHERE number = $1", m.number);
      if (!done.empty()) {
        continue;
      }
      w.exec(m.sql);
      w.exec_params("INSERT INTO schema_migrations (number, name) VALUES ($1, $2)", m.number,
                    m.name);
      w.commit();
      ++applied;
      log_info("migration_applied", {{"number", std::to_string(m.number)}, {"name", m.name}});
    }
  } catch (const std::exception& e) {
    pqxx::nontransaction nt{conn};
    nt.exec("SELECT pg_advisory_unlock_all()");
    throw std::runtime_error(fmt::format("database migration failed: {}", e.what()));
  }
  pqxx::nontransaction nt{conn};
  nt.exec("SELECT pg_advisory_unlock_all()");
  return applied;
}

}  // namespace wachat::infra

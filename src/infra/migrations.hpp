#pragma once
#include <string>
#include <vector>

namespace wachat::infra {

struct migration {
  int number;
  std::string name;
  std::string sql;
};

// The migrations compiled into this binary, in ascending number (generated at build time).
const std::vector<migration>& embedded_migrations();

// Applies every embedded migration not yet recorded in schema_migrations, each in its own
// transaction, holding an advisory lock so that processes starting together do not race.
// Returns the number applied; throws std::runtime_error with a clear message on failure.
int apply_migrations(const std::string& database_url);

}  // namespace wachat::infra

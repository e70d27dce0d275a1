#include "support/pg_control.hpp"

#include <unistd.h>

#include <cstdlib>
#include <pqxx/pqxx>
#include <stdexcept>

namespace wachat::test {
namespace {

std::string env_or_throw(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') {
    throw std::runtime_error(std::string{name} + " is not set: run the tests through scripts/test.sh");
  }
  return v;
}

void run_pg_ctl(const std::string& args) {
  auto data = env_or_throw("WACHAT_TEST_PG_DATA");
  std::string prefix = ::geteuid() == 0 ? "runuser -u postgres -- " : "";
  auto cmd = prefix + "/usr/lib/postgresql/15/bin/pg_ctl -D '" + data + "' " + args +
             " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    throw std::runtime_error("pg_ctl failed: " + args);
  }
}

}  // namespace

void stop_test_postgres() { run_pg_ctl("-m fast -w -t 30 stop"); }

void start_test_postgres() {
  auto data = env_or_throw("WACHAT_TEST_PG_DATA");
  auto port = env_or_throw("WACHAT_TEST_PG_PORT");
  auto log = env_or_throw("WACHAT_TEST_PG_LOG");
  run_pg_ctl("-l '" + log + "' -w -t 60 start -o \"-p " + port + " -k " + data +
             " -c listen_addresses=127.0.0.1 -c max_connections=200\"");
}

std::string query_scalar(const std::string& database_url, const std::string& sql) {
  pqxx::connection c{database_url};
  pqxx::nontransaction nt{c};
  auto r = nt.exec(sql);
  if (r.empty() || r[0][0].is_null()) {
    return {};
  }
  return r[0][0].c_str();
}

}  // namespace wachat::test

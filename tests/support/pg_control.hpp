#pragma once
#include <string>

namespace wachat::test {

// Stops and restarts the throwaway PostgreSQL that scripts/test.sh started, for outage tests.
// Uses WACHAT_TEST_PG_DATA / WACHAT_TEST_PG_PORT / WACHAT_TEST_PG_LOG.
void stop_test_postgres();
void start_test_postgres();

// Runs one SQL statement against `database_url` and returns the first column of the first row
// as text ("" when there is no row).
std::string query_scalar(const std::string& database_url, const std::string& sql);

}  // namespace wachat::test

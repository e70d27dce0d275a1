#pragma once
#include <cstdint>
#include <string>

namespace wachat::test {

// URL of the throwaway PostgreSQL that scripts/test.sh started (WACHAT_TEST_DATABASE_URL).
// Tests that need it fail loudly when it is missing rather than being skipped.
std::string admin_database_url();

// Creates an empty database with a unique name on the test server; returns its URL.
std::string fresh_database();

// At the end of a test run (catch_main.cpp): drops the databases fresh_database() made, unless
// something failed or WACHAT_TEST_KEEP_DATABASES=1 asks to keep them; kept ones are listed on
// stderr for inspection.
void drop_fresh_databases(bool run_passed);

// A TCP port on 127.0.0.1 that was free a moment ago.
std::uint16_t free_port();

}  // namespace wachat::test

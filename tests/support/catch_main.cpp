#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include "support/test_env.hpp"

namespace {

// Drops the run's throwaway databases once it passed (a failed run keeps them to look at): the
// developer's PostgreSQL had gathered thousands.
struct drop_databases_listener : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  void testRunEnded(const Catch::TestRunStats& stats) override {
    wachat::test::drop_fresh_databases(stats.totals.assertions.failed == 0 &&
                                       stats.totals.testCases.failed == 0 && !stats.aborting);
  }
};

}  // namespace

CATCH_REGISTER_LISTENER(drop_databases_listener)

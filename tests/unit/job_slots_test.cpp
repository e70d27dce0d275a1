// The give-back rule of the worker pools (docs/design.md, Supervision), as plain data.
#include <catch2/catch.hpp>
#include <string>

#include "actors/supervision/job_slots.hpp"

using wachat::actors::job_slots;

TEST_CASE("job_slots hands jobs out in order and frees a slot when its job finishes") {
  job_slots<std::string> q;
  q.resize(2);
  q.push("a");
  q.push("b");
  q.push("c");
  CHECK(q.take(0) == "a");
  CHECK(q.take(1) == "b");
  REQUIRE(q.held(0) != nullptr);
  CHECK(*q.held(0) == "a");
  q.finish(0);
  CHECK(q.held(0) == nullptr);
  CHECK(q.take(0) == "c");
  CHECK_FALSE(q.waiting());
}

TEST_CASE("a job whose worker died goes back to the front once, then is handed back as failed") {
  job_slots<std::string> q;
  q.resize(2);
  q.push("poison");
  q.push("next");
  CHECK(q.take(0) == "poison");
  CHECK_FALSE(q.died(0).has_value());  // given back ...
  CHECK(q.held(0) == nullptr);
  CHECK(q.take(1) == "poison");        // ... ahead of the job that waited
  auto failed = q.died(1);             // a second worker died with it
  REQUIRE(failed.has_value());
  CHECK(*failed == "poison");
  CHECK(q.take(0) == "next");
  CHECK_FALSE(q.waiting());
  CHECK_FALSE(q.died(1).has_value());  // an empty slot has nothing to give back
}

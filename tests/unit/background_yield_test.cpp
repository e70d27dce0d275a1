#include <catch2/catch.hpp>

#include "domain/background_yield.hpp"

using namespace wachat::domain;
using std::chrono::milliseconds;

TEST_CASE("media holds back while inbound messages are being processed") {
  yield_settings s;  // quiet 250 ms, max wait 1 s
  CHECK(background_should_yield(milliseconds(0), milliseconds(0), s));
  CHECK(background_should_yield(milliseconds(249), milliseconds(999), s));
}

TEST_CASE("media goes on once inbound has been quiet") {
  yield_settings s;
  CHECK_FALSE(background_should_yield(milliseconds(250), milliseconds(0), s));
  CHECK_FALSE(background_should_yield(milliseconds(60000), milliseconds(0), s));
}

TEST_CASE("a never-quiet inbound still lets one job start per max wait") {
  yield_settings s;
  CHECK_FALSE(background_should_yield(milliseconds(0), milliseconds(1000), s));
  CHECK_FALSE(background_should_yield(milliseconds(10), milliseconds(5000), s));
}

TEST_CASE("a max wait of zero never holds back") {
  yield_settings s{milliseconds(250), milliseconds(0)};
  CHECK_FALSE(background_should_yield(milliseconds(0), milliseconds(0), s));
}

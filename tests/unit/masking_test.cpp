#include <catch2/catch.hpp>

#include "domain/masking.hpp"

using namespace wachat::domain;

TEST_CASE("tokens of 16 or more show their first and last four characters") {
  CHECK(mask_token("EAABsomething-long-wxyz") == "EAAB\xe2\x80\xa6wxyz");
  CHECK(mask_token("0123456789abcdef") == "0123\xe2\x80\xa6" "cdef");
  CHECK(mask_token("0123456789abcde") == "****");
  CHECK(mask_token("") == "****");
}

TEST_CASE("site ids") {
  CHECK(valid_site_id("acme"));
  CHECK(valid_site_id("a"));
  CHECK(valid_site_id("0-a-b"));
  CHECK(valid_site_id(std::string(63, 'a')));
  CHECK_FALSE(valid_site_id(std::string(64, 'a')));
  CHECK_FALSE(valid_site_id("-acme"));
  CHECK_FALSE(valid_site_id("Acme"));
  CHECK_FALSE(valid_site_id("ac me"));
  CHECK_FALSE(valid_site_id(""));
  CHECK_FALSE(valid_site_id("a/../b"));
}

#include <catch2/catch.hpp>

#include "domain/webhook_signature.hpp"

using namespace wachat::domain;

TEST_CASE("signature header parses sha256= followed by 64 hex digits") {
  auto ok = parse_signature_header(
      "sha256=00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF");
  REQUIRE(ok.has_value());
  CHECK((*ok)[0] == 0x00);
  CHECK((*ok)[1] == 0x11);
  CHECK((*ok)[31] == 0xff);
}

TEST_CASE("signature header rejects other shapes") {
  CHECK_FALSE(parse_signature_header(""));
  CHECK_FALSE(parse_signature_header("sha1=0011"));
  CHECK_FALSE(parse_signature_header(
      "sha256=00112233445566778899aabbccddeeff00112233445566778899aabbccddeef"));
  CHECK_FALSE(parse_signature_header(
      "sha256=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeffa"));
  CHECK_FALSE(parse_signature_header(
      "sha256=zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"));
}

TEST_CASE("pure ASCII bodies need no escaped form") {
  CHECK_FALSE(meta_unicode_escaped(R"({"a":"b"})"));
}

TEST_CASE("non-ASCII becomes lowercase \\u escapes in UTF-16 units") {
  // é is U+00E9; ñ U+00F1; the emoji U+1F44D is the surrogate pair D83D DC4D.
  auto out = meta_unicode_escaped("{\"t\":\"caf\xc3\xa9 \xc3\xb1 \xf0\x9f\x91\x8d\"}");
  REQUIRE(out.has_value());
  CHECK(*out == R"({"t":"caf\u00e9 \u00f1 \ud83d\udc4d"})");
}

TEST_CASE("three-byte characters escape to one unit") {
  auto out = meta_unicode_escaped("\xe2\x82\xac");  // €
  REQUIRE(out.has_value());
  CHECK(*out == "\\u20ac");
}

TEST_CASE("invalid UTF-8 has no escaped form") {
  CHECK_FALSE(meta_unicode_escaped("\xff"));
  CHECK_FALSE(meta_unicode_escaped("\xc3"));          // truncated
  CHECK_FALSE(meta_unicode_escaped("\xc0\xaf"));      // overlong
  CHECK_FALSE(meta_unicode_escaped("\xed\xa0\x80"));  // surrogate
}

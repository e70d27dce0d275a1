#include <catch2/catch.hpp>

#include "infra/crypto.hpp"

using namespace wachat::infra;

TEST_CASE("HMAC-SHA256 matches RFC 4231 test case 2 and is reusable") {
  hmac_sha256_key key{"Jefe"};
  for (int i = 0; i < 3; ++i) {
    auto d = key.sign("what do ya want for nothing?");
    CHECK(hex_encode(d.data(), d.size()) ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  }
}

TEST_CASE("base64 round trip and rejection") {
  const unsigned char data[] = {0, 1, 2, 250, 251};
  auto text = base64_encode(data, sizeof data);
  auto back = base64_decode(text);
  REQUIRE(back);
  CHECK(std::vector<unsigned char>(data, data + 5) == *back);
  CHECK_FALSE(base64_decode("abc"));
  CHECK_FALSE(base64_decode(""));
}

TEST_CASE("constant-time equality") {
  CHECK(constant_time_equal("abc", "abc"));
  CHECK_FALSE(constant_time_equal("abc", "abd"));
  CHECK_FALSE(constant_time_equal("abc", "abcd"));
}

TEST_CASE("random tokens differ") {
  CHECK(random_hex(16).size() == 32);
  CHECK(random_hex(16) != random_hex(16));
}

TEST_CASE("sealed tokens open only with the same key and context, and never show the plaintext") {
  master_key k{};
  k[0] = 7;
  auto blob = seal(k, "EAABsecrettoken1234", "site:acme");
  CHECK(blob.find("EAABsecrettoken1234") == std::string::npos);
  CHECK(unseal(k, blob, "site:acme") == std::optional<std::string>{"EAABsecrettoken1234"});
  CHECK_FALSE(unseal(k, blob, "site:other"));
  master_key other = k;
  other[1] = 1;
  CHECK_FALSE(unseal(other, blob, "site:acme"));
  auto tampered = blob;
  tampered[14] ^= 1;
  CHECK_FALSE(unseal(k, tampered, "site:acme"));
  CHECK(seal(k, "x", "c") != seal(k, "x", "c"));  // fresh nonce each time
}

#pragma once
#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wachat::infra {

std::optional<std::vector<unsigned char>> base64_decode(std::string_view text);
std::string base64_encode(const unsigned char* data, std::size_t size);
std::string hex_encode(const unsigned char* data, std::size_t size);

// Constant-time equality of two byte strings (length differences leak only the length).
bool constant_time_equal(std::string_view a, std::string_view b);

// `bytes` cryptographically random bytes from OpenSSL's generator, hex encoded.
std::string random_hex(std::size_t bytes);

std::array<unsigned char, 32> sha256(std::string_view data);

// SHA-256 of data that arrives in pieces (a download): never all in memory.
class sha256_stream {
 public:
  sha256_stream();
  ~sha256_stream();
  sha256_stream(const sha256_stream&) = delete;
  sha256_stream& operator=(const sha256_stream&) = delete;
  void update(const char* data, std::size_t size);
  std::array<unsigned char, 32> finish();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

using master_key = std::array<unsigned char, 32>;

// AES-256-GCM with a random 96-bit nonce: returns nonce || ciphertext || 16-byte tag.
// `context` is authenticated but not stored (binds a ciphertext to, say, its site id).
std::string seal(const master_key& key, std::string_view plaintext, std::string_view context);
// nullopt when the blob was not sealed under this key and context, or was altered.
std::optional<std::string> unseal(const master_key& key, std::string_view blob,
                                  std::string_view context);

// An HMAC-SHA256 key set up once and reused for every message (keying costs more than
// hashing a typical webhook). Thread-safe: each call works on its own copy of the context.
class hmac_sha256_key {
 public:
  explicit hmac_sha256_key(std::string_view secret);
  ~hmac_sha256_key();
  hmac_sha256_key(const hmac_sha256_key&) = delete;
  hmac_sha256_key& operator=(const hmac_sha256_key&) = delete;

  std::array<unsigned char, 32> sign(std::string_view data) const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace wachat::infra

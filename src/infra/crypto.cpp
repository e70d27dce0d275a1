#include "infra/crypto.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdexcept>

namespace wachat::infra {

std::optional<std::vector<unsigned char>> base64_decode(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) {
    return std::nullopt;
  }
  std::vector<unsigned char> out(text.size() / 4 * 3);
  int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) {
    return std::nullopt;
  }
  // EVP_DecodeBlock counts padding as zero bytes; drop them.
  std::size_t pad = 0;
  if (text.back() == '=') {
    ++pad;
    if (text[text.size() - 2] == '=') {
      ++pad;
    }
  }
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

std::string base64_encode(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data,
                          static_cast<int>(size));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string hex_encode(const unsigned char* data, std::size_t size) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(size * 2, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    out[2 * i] = digits[data[i] >> 4];
    out[2 * i + 1] = digits[data[i] & 0xf];
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  if (RAND_bytes(buf.data(), static_cast<int>(bytes)) != 1) {
    throw std::runtime_error("OpenSSL random generator failed");
  }
  return hex_encode(buf.data(), buf.size());
}

std::array<unsigned char, 32> sha256(std::string_view data) {
  std::array<unsigned char, 32> out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("sha256 failed");
  }
  return out;
}

namespace {
constexpr std::size_t nonce_size = 12;
constexpr std::size_t tag_size = 16;

struct cipher_ctx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~cipher_ctx() { EVP_CIPHER_CTX_free(ctx); }
};
}  // namespace

std::string seal(const master_key& key, std::string_view plaintext, std::string_view context) {
  std::string out(nonce_size + plaintext.size() + tag_size, '\0');
  auto* bytes = reinterpret_cast<unsigned char*>(out.data());
  if (RAND_bytes(bytes, nonce_size) != 1) {
    throw std::runtime_error("OpenSSL random generator failed");
  }
  cipher_ctx c;
  int len = 0;
  bool ok = c.ctx != nullptr &&
            EVP_EncryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, key.data(), bytes) == 1 &&
            EVP_EncryptUpdate(c.ctx, nullptr, &len,
                              reinterpret_cast<const unsigned char*>(context.data()),
                              static_cast<int>(context.size())) == 1 &&
            EVP_EncryptUpdate(c.ctx, bytes + nonce_size, &len,
                              reinterpret_cast<const unsigned char*>(plaintext.data()),
                              static_cast<int>(plaintext.size())) == 1 &&
            EVP_EncryptFinal_ex(c.ctx, bytes + nonce_size + len, &len) == 1 &&
            EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, tag_size,
                                bytes + nonce_size + plaintext.size()) == 1;
  if (!ok) {
    throw std::runtime_error("AES-GCM encryption failed");
  }
  return out;
}

std::optional<std::string> unseal(const master_key& key, std::string_view blob,
                                  std::string_view context) {
  if (blob.size() < nonce_size + tag_size) {
    return std::nullopt;
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(blob.data());
  const auto text_size = blob.size() - nonce_size - tag_size;
  std::string out(text_size, '\0');
  cipher_ctx c;
  int len = 0;
  std::array<unsigned char, tag_size> tag{};
  std::copy(bytes + nonce_size + text_size, bytes + blob.size(), tag.begin());
  bool ok = c.ctx != nullptr &&
            EVP_DecryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, key.data(), bytes) == 1 &&
            EVP_DecryptUpdate(c.ctx, nullptr, &len,
                              reinterpret_cast<const unsigned char*>(context.data()),
                              static_cast<int>(context.size())) == 1 &&
            EVP_DecryptUpdate(c.ctx, reinterpret_cast<unsigned char*>(out.data()), &len,
                              bytes + nonce_size, static_cast<int>(text_size)) == 1 &&
            EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, tag_size, tag.data()) == 1 &&
            EVP_DecryptFinal_ex(c.ctx, reinterpret_cast<unsigned char*>(out.data()) + len,
                                &len) == 1;
  if (!ok) {
    return std::nullopt;
  }
  return out;
}

struct hmac_sha256_key::impl {
  EVP_MAC* mac = nullptr;
  EVP_MAC_CTX* keyed = nullptr;
};

hmac_sha256_key::hmac_sha256_key(std::string_view secret) : impl_(std::make_unique<impl>()) {
  impl_->mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (impl_->mac == nullptr) {
    throw std::runtime_error("OpenSSL has no HMAC");
  }
  impl_->keyed = EVP_MAC_CTX_new(impl_->mac);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  if (impl_->keyed == nullptr ||
      EVP_MAC_init(impl_->keyed, reinterpret_cast<const unsigned char*>(secret.data()),
                   secret.size(), params) != 1) {
    throw std::runtime_error("HMAC key setup failed");
  }
}

hmac_sha256_key::~hmac_sha256_key() {
  EVP_MAC_CTX_free(impl_->keyed);
  EVP_MAC_free(impl_->mac);
}

std::array<unsigned char, 32> hmac_sha256_key::sign(std::string_view data) const {
  std::array<unsigned char, 32> out{};
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_dup(impl_->keyed);
  std::size_t len = 0;
  bool ok = ctx != nullptr &&
            EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(data.data()),
                           data.size()) == 1 &&
            EVP_MAC_final(ctx, out.data(), &len, out.size()) == 1;
  EVP_MAC_CTX_free(ctx);
  if (!ok) {
    throw std::runtime_error("HMAC computation failed");
  }
  return out;
}

struct sha256_stream::impl {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~impl() { EVP_MD_CTX_free(ctx); }
};

sha256_stream::sha256_stream() : impl_(std::make_unique<impl>()) {
  if (impl_->ctx == nullptr || EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("sha256 failed");
  }
}

sha256_stream::~sha256_stream() = default;

void sha256_stream::update(const char* data, std::size_t size) {
  if (EVP_DigestUpdate(impl_->ctx, data, size) != 1) {
    throw std::runtime_error("sha256 failed");
  }
}

std::array<unsigned char, 32> sha256_stream::finish() {
  std::array<unsigned char, 32> out{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(impl_->ctx, out.data(), &len) != 1) {
    throw std::runtime_error("sha256 failed");
  }
  return out;
}

}  // namespace wachat::infra

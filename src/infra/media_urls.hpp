#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "infra/config.hpp"
#include "infra/crypto.hpp"

// Signed, expiring /media URLs (API.md §3.6): `{public}/media/{key}?exp=<unix>&sig=<hex>`, the
// signature an HMAC-SHA256 of domain::media_signature_payload.
namespace wachat::infra {

class media_url_signer {
 public:
  media_url_signer(std::string_view secret, std::string public_url, std::uint32_t ttl_seconds);

  // The URL of `key` valid until now + ttl.
  std::string url_for(std::string_view key, std::int64_t now) const;
  // Whether `exp` and `sig` (as they came in the query) are a valid, unexpired signature of `key`.
  bool verify(std::string_view key, std::string_view exp, std::string_view sig, std::int64_t now) const;
  std::string sign(std::string_view key, std::int64_t expires) const;

 private:
  hmac_sha256_key key_;
  std::string public_url_;
  std::uint32_t ttl_;
};

// The signing secret: derived from WACHAT_MASTER_KEY, else from WHATSAPP_APP_SECRET, so that
// every process of a deployment signs alike; with neither, a random one (URLs then hold only
// for this process, which start-up logs). Never the key itself: a derived one.
std::string media_signing_secret(const config& cfg, bool* random_fallback);

// The process's signer, set once at start-up before anything is served: message views sign
// `file_url` with it at every read. Without one, stored media show their unsigned path.
void install_media_url_signer(std::shared_ptr<const media_url_signer> signer);
const media_url_signer* media_urls();

}  // namespace wachat::infra

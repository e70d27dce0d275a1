#include "infra/media_urls.hpp"

#include <atomic>
#include <charconv>

#include "domain/media.hpp"
#include "infra/url.hpp"

namespace wachat::infra {
namespace {

std::shared_ptr<const media_url_signer>& installed() {
  static std::shared_ptr<const media_url_signer> s;
  return s;
}
std::atomic<const media_url_signer*> current{nullptr};

// `chat/acme/x y.pdf` -> `chat/acme/x%20y.pdf`: each segment escaped, the slashes kept.
std::string encode_key(std::string_view key) {
  std::string out;
  std::size_t at = 0;
  for (;;) {
    auto end = key.find('/', at);
    out += percent_encode(key.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at));
    if (end == std::string_view::npos) {
      return out;
    }
    out += '/';
    at = end + 1;
  }
}

}  // namespace

media_url_signer::media_url_signer(std::string_view secret, std::string public_url, std::uint32_t ttl_seconds)
    : key_(secret), public_url_(std::move(public_url)), ttl_(ttl_seconds) {
  while (!public_url_.empty() && public_url_.back() == '/') {
    public_url_.pop_back();
  }
}

std::string media_url_signer::sign(std::string_view key, std::int64_t expires) const {
  auto mac = key_.sign(domain::media_signature_payload(key, expires));
  return hex_encode(mac.data(), mac.size());
}

std::string media_url_signer::url_for(std::string_view key, std::int64_t now) const {
  auto exp = now + static_cast<std::int64_t>(ttl_);
  return public_url_ + "/media/" + encode_key(key) + "?exp=" + std::to_string(exp) + "&sig=" + sign(key, exp);
}

bool media_url_signer::verify(std::string_view key, std::string_view exp, std::string_view sig,
                              std::int64_t now) const {
  std::int64_t expires = 0;
  auto [ptr, ec] = std::from_chars(exp.data(), exp.data() + exp.size(), expires);
  if (exp.empty() || ec != std::errc{} || ptr != exp.data() + exp.size() || expires < now) {
    return false;
  }
  return constant_time_equal(sign(key, expires), sig);
}

std::string media_signing_secret(const config& cfg, bool* random_fallback) {
  *random_fallback = false;
  auto derive = [](std::string_view root) {
    hmac_sha256_key k{root};
    auto d = k.sign("wachat media URL signing v1");
    return hex_encode(d.data(), d.size());
  };
  if (cfg.master_key) {
    return derive(std::string_view{reinterpret_cast<const char*>(cfg.master_key->data()), cfg.master_key->size()});
  }
  if (cfg.app_secret) {
    return derive(*cfg.app_secret);
  }
  *random_fallback = true;
  return random_hex(32);
}

void install_media_url_signer(std::shared_ptr<const media_url_signer> signer) {
  current.store(signer.get());
  installed() = std::move(signer);
}

const media_url_signer* media_urls() { return current.load(); }

}  // namespace wachat::infra

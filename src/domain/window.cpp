#include "domain/window.hpp"


namespace wachat::domain {

window_view view_window(std::optional<std::int64_t> expires_at, std::int64_t now) {
  window_view v;
  v.expires_at = expires_at;
  if (expires_at && *expires_at > now) {
    v.open = true;
    v.seconds_left = *expires_at - now;
    v.template_required = false;
  }
  return v;
}

std::int64_t plausible_timestamp(std::int64_t meta_timestamp, std::int64_t now) {
  constexpr std::int64_t allowed_skew = 300;
  if (meta_timestamp <= 0 || meta_timestamp > now + allowed_skew) {
    return now;
  }
  return meta_timestamp;
}

}  // namespace wachat::domain

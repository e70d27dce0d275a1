#include "domain/masking.hpp"

namespace wachat::domain {

std::string mask_token(std::string_view token) {
  if (token.size() < 16) {
    return "****";
  }
  return std::string{token.substr(0, 4)} + "\xe2\x80\xa6" + std::string{token.substr(token.size() - 4)};
}

bool valid_site_id(std::string_view id) {
  if (id.empty() || id.size() > 63) {
    return false;
  }
  auto ok = [](char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (!first && c == '-');
  };
  for (std::size_t i = 0; i < id.size(); ++i) {
    if (!ok(id[i], i == 0)) {
      return false;
    }
  }
  return true;
}

}  // namespace wachat::domain

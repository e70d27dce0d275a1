#include "domain/console_policy.hpp"

#include <algorithm>
#include <cctype>

namespace wachat::domain {
namespace {

std::string lower(std::string_view s) {
  std::string out{s};
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

}  // namespace

std::optional<std::string> url_origin(std::string_view url) {
  auto sep = url.find("://");
  if (sep == std::string_view::npos) {
    return std::nullopt;
  }
  auto scheme = lower(url.substr(0, sep));
  if (scheme != "http" && scheme != "https") {
    return std::nullopt;
  }
  auto rest = url.substr(sep + 3);
  auto authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.empty()) {
    return std::nullopt;
  }
  // Letters, digits, dots, dashes, a port's colon and an IPv6 literal's brackets only: whatever
  // else (user info, spaces, quotes, semicolons) could change the policy's meaning.
  for (unsigned char c : authority) {
    if (!std::isalnum(c) && c != '.' && c != '-' && c != ':' && c != '[' && c != ']') {
      return std::nullopt;
    }
  }
  return scheme + "://" + lower(authority);
}

std::string console_csp(std::string_view public_url) {
  std::string media = "'self'";
  if (auto origin = url_origin(public_url)) {
    media += " " + *origin;
  }
  return "default-src 'none'; script-src 'self'; style-src 'self'; img-src " + media +
         "; media-src " + media +
         "; connect-src 'self'; font-src 'none'; object-src 'none'; frame-src 'none'; "
         "frame-ancestors 'none'; form-action 'none'; base-uri 'none'";
}

std::optional<std::string_view> console_content_type(std::string_view name) {
  if (ends_with(name, ".html")) {
    return "text/html; charset=utf-8";
  }
  if (ends_with(name, ".js")) {
    return "text/javascript; charset=utf-8";
  }
  if (ends_with(name, ".css")) {
    return "text/css; charset=utf-8";
  }
  if (ends_with(name, ".svg")) {
    return "image/svg+xml";
  }
  if (ends_with(name, ".png")) {
    return "image/png";
  }
  return std::nullopt;
}

}  // namespace wachat::domain

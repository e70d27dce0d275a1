#include "http/router.hpp"

#include <simdjson.h>

#include "infra/url.hpp"

namespace wachat::http {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  if (path.empty() || path.front() != '/') {
    return out;
  }
  path.remove_prefix(1);
  while (true) {
    auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) {
      break;
    }
    path.remove_prefix(slash + 1);
  }
  return out;
}

// Ids reach SQL and logs: a hostile one (NUL, control characters, broken UTF-8, a novel) matches
// no route, so it answers 404 like any id that does not exist.
bool acceptable_param(const std::string& v) {
  constexpr std::size_t max_param_bytes = 256;
  if (v.empty() || v.size() > max_param_bytes) {
    return false;
  }
  for (unsigned char c : v) {
    if (c < 0x20 || c == 0x7f) {
      return false;
    }
  }
  return simdjson::validate_utf8(v.data(), v.size());
}

// `xs` is the request's path, split once per request; each route's pattern was split when it
// was added (splitting both for every route took 1 % of a core at 15,000 webhooks/s).
bool match_pattern(const std::vector<std::string>& ps, const std::vector<std::string_view>& xs,
                   std::map<std::string, std::string>& params) {
  if (ps.size() != xs.size() || ps.empty()) {
    return false;
  }
  for (std::size_t i = 0; i < ps.size(); ++i) {
    std::string_view p = ps[i];
    if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
      if (xs[i].empty()) {
        return false;
      }
      auto value = infra::percent_decode(xs[i], false);
      if (!value || !acceptable_param(*value)) {
        return false;
      }
      params[std::string{p.substr(1, p.size() - 2)}] = std::move(*value);
    } else if (p != xs[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

void router::add(bhttp::verb method, std::string pattern, std::size_t max_body, handler h) {
  std::vector<std::string> segments;
  for (auto s : split_path(pattern)) {
    segments.emplace_back(s);
  }
  routes_.push_back(route{method, pattern, pattern, max_body, std::move(h), std::move(segments)});
}

route_match router::match(bhttp::verb method, std::string_view path) const {
  route_match m;
  const auto xs = split_path(path);
  for (const auto& r : routes_) {
    std::map<std::string, std::string> params;
    if (!match_pattern(r.segments, xs, params)) {
      continue;
    }
    m.path_known = true;
    m.allowed.push_back(r.method);
    if (r.method == method && m.matched == nullptr) {
      m.matched = &r;
      m.params = std::move(params);
    }
  }
  return m;
}

}  // namespace wachat::http

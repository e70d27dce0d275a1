#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/types.hpp"

namespace wachat::http {

struct route {
  bhttp::verb method;
  std::string pattern;  // e.g. "/api/conversations/{id}/messages"
  std::string name;     // metrics label; the pattern unless set
  std::size_t max_body; // requests with larger bodies answer 413
  handler handle;
  std::vector<std::string> segments;  // the pattern split at '/', once, when it is added
};

struct route_match {
  const route* matched = nullptr;
  std::map<std::string, std::string> params;
  bool path_known = false;  // some route has this path, perhaps with another method
  std::vector<bhttp::verb> allowed;
};

// Matches literal segments exactly and `{name}` segments against one non-empty segment.
// Segment values are percent-decoded; a value that fails to decode does not match.
class router {
 public:
  void add(bhttp::verb method, std::string pattern, std::size_t max_body, handler h);
  route_match match(bhttp::verb method, std::string_view path) const;

 private:
  std::vector<route> routes_;
};

}  // namespace wachat::http

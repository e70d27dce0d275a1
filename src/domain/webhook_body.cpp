#include "domain/webhook_body.hpp"

#include <simdjson.h>

namespace wachat::domain {

body_verdict classify_webhook_body(std::string_view body) {
  if (body.empty()) {
    return {false, "empty body"};
  }
  // One parser per thread: it keeps its buffers, so steady-state parsing allocates nothing.
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  // The view is not padded, so simdjson copies it into its own padded buffer.
  auto error = parser.parse(body.data(), body.size(), true).get(root);
  if (error) {
    return {false, std::string{"not valid JSON: "} + simdjson::error_message(error)};
  }
  if (!root.is_object()) {
    return {false, "JSON body is not an object"};
  }
  return {true, {}};
}

}  // namespace wachat::domain

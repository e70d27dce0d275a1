#pragma once
#include <string>
#include <string_view>

namespace wachat::domain {

// What intake decides about a validly signed body before storing it: `pending` bodies go on
// to processing; anything else is kept for the record with the reason it cannot be processed.
struct body_verdict {
  bool processable;
  std::string reason;  // empty when processable
};

// Checks that the body is one JSON object (strict: valid UTF-8, no trailing garbage).
// Cheap enough for the intake path (simdjson validates at GB/s).
body_verdict classify_webhook_body(std::string_view body);

}  // namespace wachat::domain

#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

#include "domain/webhook_model.hpp"

namespace wachat::domain {

// Caps that keep a hostile body from multiplying into far more memory than its size:
// a 22-byte `{"id":"a","from":"b"}` becomes a struct of several hundred bytes. Meta's
// real deliveries carry a handful of events, so the defaults are far above anything seen.
struct webhook_parse_limits {
  // Changes, contacts, messages, statuses and errors kept per delivery, all counted together.
  // What lies beyond is not read: counted in `items_over_limit` and reported once in
  // `problems` (a change dropped whole counts once). Such a delivery is refused whole
  // (domain::refusal_reason); its raw body stays in the inbox.
  std::size_t max_items = 10'000;
  // Problems recorded one by one; the rest are summed up in a final problem.
  std::size_t max_problems = 100;
};

// Why a body could not be read at all (not JSON, invalid UTF-8, too deep, not an object).
struct webhook_parse_error {
  std::string reason;
};

using webhook_parse_result = std::variant<webhook_delivery, webhook_parse_error>;

// Reads every entry, change, message, status and error of a webhook body. Never throws.
// Items missing what identifies them (message id or from, status id or status) are skipped
// and listed in `problems`; missing or mistyped optional fields take their defaults.
webhook_parse_result parse_webhook(std::string_view body, const webhook_parse_limits& limits = {});

}  // namespace wachat::domain

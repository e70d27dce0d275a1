// libFuzzer target for the webhook parser: whatever bytes arrive, parse_webhook returns a
// value, and the value keeps the promises callers rely on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>
#include <variant>

#include "domain/status_order.hpp"
#include "domain/webhook_parser.hpp"
#include "domain/window.hpp"

namespace {

using namespace wachat::domain;

void require(bool condition) {
  if (!condition) {
    // abort() makes libFuzzer save the input as a crash artifact.
    std::abort();
  }
}

// Small limits, so that short fuzz inputs reach the capping paths too.
const webhook_parse_limits fuzz_limits{64, 8};

void check_json(const std::string& text) {
  require(nlohmann::json::accept(text));
}

void check_message(const inbound_message& message) {
  require(!message.wamid.empty());
  // A customer is named by phone, by business-scoped user id, or both (META.md).
  require(!message.from.empty() || !message.from_user_id.empty());
  require(!message.content_type.empty());
  if (message.content_type == "location" || message.content_type == "contacts" ||
      message.content_type == "order") {
    check_json(message.content);
  }
  if (!message.referral_json.empty()) {
    check_json(message.referral_json);
  }
  if (message.reaction) {
    require(message.content == message.reaction->emoji);
  }
  // The window rule must hold for any timestamp Meta (or an attacker) can put in a body.
  const int64_t expiry = window_expiry_after(0, message.timestamp);
  require(expiry >= 0);
  require(window_expiry_after(expiry, message.timestamp) == expiry);
}

void check_status(const message_status& status) {
  require(!status.wamid.empty());
  require(!status.status.empty());
  require(!status_may_advance(status.status, status.status));
}

void check_delivery(const webhook_delivery& delivery) {
  std::size_t items = delivery.changes.size();
  for (const auto& change : delivery.changes) {
    items += change.contacts.size() + change.messages.size() + change.statuses.size() +
             change.errors.size();
    items += change.preferences.size();
    if (change.field == "messages" || change.field == "user_preferences") {
      // Parsed into their own lists; nothing is kept raw.
      require(change.raw_value.empty());
    } else {
      check_json(change.raw_value);
      require(change.messages.empty() && change.statuses.empty());
    }
    if (change.field != "user_preferences") {
      require(change.preferences.empty());
    }
    for (const auto& p : change.preferences) {
      require(!p.wa_id.empty() || !p.user_id.empty());
      require(!p.value.empty());
    }
    for (const auto& contact : change.contacts) {
      require(!contact.wa_id.empty() || !contact.user_id.empty());
    }
    for (const auto& message : change.messages) {
      items += message.errors.size();
      check_message(message);
    }
    for (const auto& status : change.statuses) {
      items += status.errors.size();
      check_status(status);
    }
  }
  require(items <= fuzz_limits.max_items);
  require(delivery.problems.size() <= fuzz_limits.max_problems + 2);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view body{reinterpret_cast<const char*>(data), size};
  auto result = parse_webhook(body, fuzz_limits);
  if (const auto* delivery = std::get_if<webhook_delivery>(&result)) {
    check_delivery(*delivery);
  } else {
    require(!std::get<webhook_parse_error>(result).reason.empty());
  }
  return 0;
}

#pragma once
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "domain/webhook_model.hpp"

namespace wachat::domain {

// One message or status of a delivery, ready for the conversation actor that owns it
// (DESIGN.md §2). Plain data, copied between actors.
struct inbound_unit {
  enum class kind { message, status, preference };
  kind what = kind::message;
  std::string phone_number_id;  // routes to the site
  // Which conversation actor: the customer's WhatsApp id (`from` of a message, `recipient_id`
  // of a status), so a customer's messages, reactions and statuses stay in order; their BSUID
  // when Meta withholds the phone (a BSUID has a dot, a phone only digits: they never collide).
  std::string visitor_wa_id;
  std::string profile_name;  // contacts[].profile.name for that customer; may be empty
  inbound_message message;   // when what == message
  message_status status;     // when what == status
  user_preference preference;  // when what == preference
};

// The WABAs whose message templates changed in this delivery (the
// message_template_status_update, message_template_quality_update and template_category_update
// fields): their sites' template caches are out of date.
std::vector<std::string> template_changes(const webhook_delivery& delivery);

// What a `user_preferences` item means for the customer's marketing_opt_out: stop → true,
// resume → false; other categories or values → nothing.
std::optional<bool> preference_opt_out(const user_preference& p);

// A customer's text that is one of the site's keywords (trimmed, any case): an opt-out keyword →
// true, an opt-in keyword → false, anything else → nothing (API.md §3.4 "Marketing opt-out").
std::optional<bool> keyword_opt_out(std::string_view text, const std::vector<std::string>& opt_out,
                                    const std::vector<std::string>& opt_in);

// Every message and status of every change, in delivery order (DESIGN.md §3: all entries, all
// changes, not just the first). Changes without messages or statuses (template updates,
// quality, account) add nothing here; they stay in the inbox.
std::vector<inbound_unit> split_delivery(const webhook_delivery& delivery);

// Every `value.errors[]` of every change (DESIGN.md §3: errors too, not just messages).
std::vector<webhook_error> delivery_errors(const webhook_delivery& delivery);

// Why a parsed delivery must not be processed at all, if it must not: one cut at the item limit
// would store a part and drop the rest silently, so it is refused whole (`rejected`, with this
// reason) and its body stays in the inbox for an operator.
std::optional<std::string> refusal_reason(const webhook_delivery& delivery,
                                          std::size_t max_items);

// Meta's error 131047 on a `failed` status: more than 24 h since the customer's last message,
// so Meta says the window is shut as of the status's time (API.md §3.4).
bool closes_window(const message_status& status);

// What happened to one unit, reported back to the dispatcher.
struct unit_outcome {
  bool stored = false;      // committed (including "nothing new": a redelivery)
  bool retryable = false;   // not stored for a passing reason (database down, deadlock)
  std::string error;        // why not, for the inbox row
  bool new_message = false;
  bool new_status = false;
  std::int64_t new_conversation = 0;  // the conversation this unit's message started, if any
  // Set when no site has the unit's phone number id (the row waits until one has it).
  std::optional<std::string> unroutable;
};

// How one inbox row ends once all of its units have answered.
struct event_verdict {
  // processed | partial (stored what could be used; skipped items named in `error`) |
  // unroutable | failed | pending (retry soon)
  std::string status;
  std::optional<std::string> error;
};

struct event_progress {
  std::size_t units = 0;
  std::size_t answered = 0;
  std::size_t retryable_failures = 0;
  std::vector<std::string> errors;        // units that failed for good
  std::set<std::string> unroutable_ids;   // phone number ids no site has
  std::vector<parse_problem> problems;    // skipped parts of the delivery
  std::vector<webhook_error> meta_errors; // `value.errors[]`: what Meta says went wrong

  bool complete() const { return answered >= units; }
  void record(const unit_outcome& o);
  event_verdict verdict() const;
};

}  // namespace wachat::domain

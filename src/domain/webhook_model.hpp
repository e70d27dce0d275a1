#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// What one webhook POST from Meta says, as plain values (META.md "Webhook envelope").
// Strings are copies: a delivery outlives the JSON parser and can travel between actors.

namespace wachat::domain {

// `errors[]` at any level (value, message, status). Meta puts the useful text in
// `error_data.details`; `code` is what callers branch on (META.md: never on text).
struct webhook_error {
  int64_t code = 0;
  std::string title;
  std::string message;
  std::string details;
};

// `value.contacts[]`: who wrote, with the name from their WhatsApp profile. Either id may be
// missing: Meta withholds the phone (`wa_id`) of a customer who uses a username, and older
// deliveries carry no business-scoped user id (BSUID, `user_id`; META.md "Customer identity").
struct webhook_contact {
  std::string wa_id;
  std::string user_id;
  std::string profile_name;
};

// `messages[].context`: set when the customer replied to, or forwarded, a message.
struct message_context {
  std::string from;
  std::string id;  // the wamid replied to; empty when not a reply
  bool forwarded = false;
  bool frequently_forwarded = false;
};

// image|video|audio|document|sticker. The id is only good for 7 days (META.md "Media"),
// which is why the media worker fetches it right away.
struct media_ref {
  std::string id;
  std::string mime_type;
  std::string sha256;
  std::string filename;  // documents only
  bool voice = false;    // audio recorded as a voice note
  bool animated = false; // stickers
};

// `reaction{message_id, emoji}`; an empty emoji means the customer removed their reaction.
struct reaction_ref {
  std::string message_id;
  std::string emoji;

  bool is_removal() const { return emoji.empty(); }
};

// interactive button_reply/list_reply/nfm_reply and template quick-reply `button`.
// The title becomes the message content; the id or payload is what bots route on.
struct reply_ref {
  std::string kind;           // "button_reply", "list_reply", "nfm_reply" or "button"
  std::string id;             // button/list id, button payload, or the flow's name
  std::string title;          // what the customer saw and tapped
  std::string description;    // list_reply only
  std::string response_json;  // nfm_reply only: the flow's answers as Meta sent them
};

// `system{body, type, wa_id, user_id, previous_user_id}`: the customer changed their number
// (`user_changed_number`: the new phone, and a new BSUID) or only their BSUID
// (`user_changed_user_id`). Older payloads name the new phone `new_wa_id`.
struct system_notice {
  std::string type;
  std::string new_wa_id;
  std::string new_user_id;
  std::string previous_user_id;
  // Whether it moves its customer to a new phone or BSUID (`customer_changed_number`: an older
  // name of `user_changed_number`); other system messages only tell.
  bool moves_customer() const {
    return type == "user_changed_number" || type == "customer_changed_number" || type == "user_changed_user_id";
  }
};

struct inbound_message {
  std::string wamid;
  std::string from;          // the customer's phone (wa_id); empty when Meta withholds it
  std::string from_user_id;  // the customer's BSUID; empty in older deliveries
  int64_t timestamp = 0;  // Unix seconds, Meta's clock; 0 when absent or unreadable
  std::string type;       // exactly as Meta sent it
  // DESIGN.md §3.5: the WhatsApp type when we understand it, else "unsupported".
  std::string content_type;
  // text body; media caption; location/contacts/order as JSON; reply title; system body;
  // reaction emoji.
  std::string content;
  message_context context;
  std::optional<media_ref> media;
  std::optional<reaction_ref> reaction;
  std::optional<reply_ref> reply;
  std::optional<system_notice> system;
  std::string referral_json;  // click-to-WhatsApp ad referral, minified; empty when none
  std::vector<webhook_error> errors;
};

struct status_pricing {
  bool billable = false;
  std::string pricing_model;
  std::string category;
  std::string type;  // newer per-message pricing: "regular", "free_customer_service", ...
};

struct message_status {
  std::string wamid;
  std::string status;  // sent|delivered|read|failed|played, unknown values kept verbatim
  int64_t timestamp = 0;
  std::string recipient_id;       // phone; may be withheld
  std::string recipient_user_id;  // BSUID; may be absent
  // What our send set (our message id): names a send whose answer from Meta was lost.
  std::string biz_opaque_callback_data;
  std::string conversation_id;
  std::optional<int64_t> conversation_expiration;  // only on `sent`
  std::string conversation_origin_type;
  std::optional<status_pricing> pricing;
  std::vector<webhook_error> errors;
};

// A customer stopped or resumed marketing messages (`user_preferences` webhook).
struct user_preference {
  std::string wa_id;     // phone; may be withheld
  std::string user_id;   // BSUID; may be absent
  std::string category;  // "marketing_messages"
  std::string value;     // "stop" | "resume"
  int64_t timestamp = 0;
};

// One `entry[].changes[]` item, flattened with its entry's id.
struct webhook_change {
  std::string field;  // "messages", "message_template_status_update", ...
  std::string entry_id;  // the WABA id
  std::string messaging_product;
  std::string phone_number_id;
  std::string display_phone_number;
  std::vector<webhook_contact> contacts;
  std::vector<inbound_message> messages;
  std::vector<message_status> statuses;
  std::vector<webhook_error> errors;
  std::vector<user_preference> preferences;  // field "user_preferences"
  // The minified `value` for fields other than "messages", kept so they can be routed
  // (templates, quality, account) without this parser knowing their shape.
  std::string raw_value;
};

// Something skipped or unreadable, with where it was ("entry[0].changes[1].messages[2]").
struct parse_problem {
  std::string where;
  std::string reason;
};

struct webhook_delivery {
  std::string object;  // "whatsapp_business_account"
  std::vector<webhook_change> changes;
  std::vector<parse_problem> problems;
  // Items beyond webhook_parse_limits::max_items, not read: the delivery is incomplete.
  std::size_t items_over_limit = 0;
};

// The profile name `contacts[]` gives for the customer with this phone or BSUID (either may be
// empty); empty when the change names none.
inline std::string_view profile_name_for(const webhook_change& change, std::string_view wa_id,
                                         std::string_view user_id = {}) {
  for (const auto& contact : change.contacts) {
    if ((!wa_id.empty() && contact.wa_id == wa_id) ||
        (!user_id.empty() && contact.user_id == user_id)) {
      return contact.profile_name;
    }
  }
  return {};
}

}  // namespace wachat::domain

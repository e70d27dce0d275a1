#include "domain/webhook_parser.hpp"

#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <exception>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

namespace wachat::domain {

namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

// Where in the body an item sits, rendered only when a problem must name it: most items
// have none, and building "entry[0].changes[0].messages[12]" for each would allocate.
struct json_path {
  static constexpr std::size_t no_index = std::numeric_limits<std::size_t>::max();

  const json_path* parent = nullptr;
  std::string_view name;
  std::size_t index = no_index;

  json_path child(std::string_view child_name, std::size_t child_index = no_index) const {
    return json_path{this, child_name, child_index};
  }

  std::string render() const {
    std::string out = parent == nullptr ? std::string{} : parent->render();
    if (!out.empty() && !name.empty()) {
      out += '.';
    }
    out += name;
    if (index != no_index) {
      out += '[';
      out += std::to_string(index);
      out += ']';
    }
    return out;
  }
};

// Absent and null are the same to us: Meta omits optional fields, hostile input nulls them.
std::optional<element> member(object parent, std::string_view key) {
  element value;
  if (parent.at_key(key).get(value) != simdjson::SUCCESS || value.is_null()) {
    return std::nullopt;
  }
  return value;
}

std::optional<object> object_member(object parent, std::string_view key) {
  auto value = member(parent, key);
  object out;
  if (!value || value->get_object().get(out) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  return out;
}

std::optional<array> array_member(object parent, std::string_view key) {
  auto value = member(parent, key);
  array out;
  if (!value || value->get_array().get(out) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  return out;
}

// Free text (bodies, captions, names): only a JSON string counts.
std::string text_member(object parent, std::string_view key) {
  auto value = member(parent, key);
  std::string_view out;
  if (!value || value->get_string().get(out) != simdjson::SUCCESS) {
    return {};
  }
  return std::string{out};
}

// Meta's wamids are about 60 bytes and wa_ids are phone numbers; anything far longer is hostile
// and would not fit PostgreSQL's unique indexes (about 2.7 kB a key), failing the whole row.
constexpr std::size_t max_id_bytes = 256;

// Identifiers (wamids, wa_ids, phone number ids) are strings at Meta, but an integer is
// unambiguous, so it is accepted rather than losing the item over it.
std::string id_member(object parent, std::string_view key) {
  auto value = member(parent, key);
  if (!value) {
    return {};
  }
  switch (value->type()) {
    case element_type::STRING: {
      std::string_view out;
      if (value->get_string().get(out) == simdjson::SUCCESS) {
        return std::string{out};
      }
      return {};
    }
    case element_type::INT64: {
      int64_t out = 0;
      if (value->get_int64().get(out) == simdjson::SUCCESS) {
        return std::to_string(out);
      }
      return {};
    }
    case element_type::UINT64: {
      uint64_t out = 0;
      if (value->get_uint64().get(out) == simdjson::SUCCESS) {
        return std::to_string(out);
      }
      return {};
    }
    default: {
      return {};
    }
  }
}

bool bool_member(object parent, std::string_view key) {
  auto value = member(parent, key);
  bool out = false;
  if (!value || value->get_bool().get(out) != simdjson::SUCCESS) {
    return false;
  }
  return out;
}

std::optional<int64_t> int64_from_double(double value) {
  // 2^63 is exactly representable; anything at or beyond it would overflow the cast.
  constexpr double limit = 9223372036854775808.0;
  if (!std::isfinite(value) || value >= limit || value < -limit) {
    return std::nullopt;
  }
  return static_cast<int64_t>(value);
}

// Timestamps and error codes: Meta sends timestamps as decimal strings and codes as numbers;
// either form is accepted for both.
std::optional<int64_t> int_member(object parent, std::string_view key) {
  auto value = member(parent, key);
  if (!value) {
    return std::nullopt;
  }
  switch (value->type()) {
    case element_type::INT64: {
      int64_t out = 0;
      if (value->get_int64().get(out) == simdjson::SUCCESS) {
        return out;
      }
      return std::nullopt;
    }
    case element_type::UINT64: {
      uint64_t out = 0;
      if (value->get_uint64().get(out) == simdjson::SUCCESS &&
          out <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return static_cast<int64_t>(out);
      }
      return std::nullopt;
    }
    case element_type::DOUBLE: {
      double out = 0;
      if (value->get_double().get(out) == simdjson::SUCCESS) {
        return int64_from_double(out);
      }
      return std::nullopt;
    }
    case element_type::STRING: {
      std::string_view text;
      if (value->get_string().get(text) != simdjson::SUCCESS || text.empty()) {
        return std::nullopt;
      }
      int64_t out = 0;
      const char* end = text.data() + text.size();
      auto [ptr, ec] = std::from_chars(text.data(), end, out);
      if (ec != std::errc{} || ptr != end) {
        return std::nullopt;
      }
      return out;
    }
    default: {
      return std::nullopt;
    }
  }
}

std::optional<double> number_member(object parent, std::string_view key) {
  auto value = member(parent, key);
  if (!value) {
    return std::nullopt;
  }
  double out = 0;
  if (value->get_double().get(out) == simdjson::SUCCESS) {
    return out;
  }
  std::string_view text;
  if (value->get_string().get(text) != simdjson::SUCCESS || text.empty()) {
    return std::nullopt;
  }
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  if (ec != std::errc{} || ptr != end || !std::isfinite(out)) {
    return std::nullopt;
  }
  return out;
}

// Meta's media types and the fields each may carry (META.md "Inbound message").
bool is_media_type(std::string_view type) {
  return type == "image" || type == "video" || type == "audio" || type == "document" ||
         type == "sticker";
}

std::string json_text(const nlohmann::ordered_json& value) {
  // simdjson has already rejected invalid UTF-8, so `replace` never fires; it only makes
  // sure dump() cannot throw on it.
  return value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

nlohmann::ordered_json optional_number_json(const std::optional<double>& value) {
  return value ? nlohmann::ordered_json(*value) : nlohmann::ordered_json(nullptr);
}

nlohmann::ordered_json optional_text_json(object parent, std::string_view key) {
  auto value = member(parent, key);
  std::string_view text;
  if (!value || value->get_string().get(text) != simdjson::SUCCESS) {
    return nullptr;
  }
  return std::string{text};
}

class delivery_reader {
 public:
  explicit delivery_reader(const webhook_parse_limits& limits) : limits_(limits) {}

  webhook_delivery read(object root) && {
    const json_path root_path{};
    delivery_.object = text_member(root, "object");
    if (delivery_.object != "whatsapp_business_account") {
      note(root_path.child("object"), delivery_.object.empty()
                                          ? "missing"
                                          : "not whatsapp_business_account");
    }
    auto entries = array_member(root, "entry");
    if (!entries) {
      note(root_path.child("entry"), "missing or not an array");
    } else {
      std::size_t index = 0;
      for (element entry : *entries) {
        read_entry(entry, root_path.child("entry", index));
        ++index;
      }
    }
    finish();
    return std::move(delivery_);
  }

 private:
  void note(const json_path& where, std::string reason) {
    if (delivery_.problems.size() < limits_.max_problems) {
      delivery_.problems.push_back(parse_problem{where.render(), std::move(reason)});
    } else {
      ++problems_dropped_;
    }
  }

  // Every kept item costs one unit of the delivery's budget (webhook_parse_limits).
  bool take_item() {
    if (items_used_ >= limits_.max_items) {
      ++items_dropped_;
      return false;
    }
    ++items_used_;
    return true;
  }

  void finish() {
    if (problems_dropped_ > 0) {
      delivery_.problems.push_back(
          parse_problem{"", std::to_string(problems_dropped_) + " more problems not listed"});
    }
    if (items_dropped_ > 0) {
      delivery_.items_over_limit = items_dropped_;
      delivery_.problems.push_back(parse_problem{
          "", std::to_string(items_dropped_) + " items dropped over the limit of " +
                  std::to_string(limits_.max_items) + " per delivery"});
    }
  }

  void read_entry(element entry_element, const json_path& where) {
    object entry;
    if (entry_element.get_object().get(entry) != simdjson::SUCCESS) {
      note(where, "not an object");
      return;
    }
    const std::string entry_id = id_member(entry, "id");
    auto changes = array_member(entry, "changes");
    if (!changes) {
      note(where.child("changes"), "missing or not an array");
      return;
    }
    std::size_t index = 0;
    for (element change : *changes) {
      read_change(change, entry_id, where.child("changes", index));
      ++index;
    }
  }

  void read_change(element change_element, const std::string& entry_id, const json_path& where) {
    object change;
    if (change_element.get_object().get(change) != simdjson::SUCCESS) {
      note(where, "not an object");
      return;
    }
    element value_element;
    object value;
    if (change.at_key("value").get(value_element) != simdjson::SUCCESS ||
        value_element.get_object().get(value) != simdjson::SUCCESS) {
      note(where.child("value"), "missing or not an object");
      return;
    }
    if (!take_item()) {
      return;
    }
    webhook_change out;
    out.field = text_member(change, "field");
    out.entry_id = entry_id;
    out.messaging_product = text_member(value, "messaging_product");
    if (auto metadata = object_member(value, "metadata")) {
      out.phone_number_id = id_member(*metadata, "phone_number_id");
      out.display_phone_number = id_member(*metadata, "display_phone_number");
    }
    if (out.field == "messages") {
      const json_path value_path = where.child("value");
      read_list(value, "contacts", value_path, [&](object item, const json_path& at) {
        read_contact(item, at, out.contacts);
      });
      read_list(value, "messages", value_path, [&](object item, const json_path& at) {
        read_message(item, at, out.messages);
      });
      read_list(value, "statuses", value_path, [&](object item, const json_path& at) {
        read_status(item, at, out.statuses);
      });
      out.errors = read_errors(value, value_path);
    } else if (out.field == "user_preferences") {
      read_list(value, "user_preferences", where.child("value"), [&](object item, const json_path& at) {
        read_preference(item, at, out.preferences);
      });
    } else {
      if (out.field.empty()) {
        note(where.child("field"), "missing; value kept raw");
      }
      out.raw_value = simdjson::minify(value_element);
    }
    delivery_.changes.push_back(std::move(out));
  }

  // Calls `read_item` for every object of the array `key`; other elements are noted and skipped.
  template <typename read_item_fn>
  void read_list(object parent, std::string_view key, const json_path& where, read_item_fn&& read_item) {
    auto value = member(parent, key);
    if (!value) {
      return;
    }
    const json_path list_path = where.child(key);
    array items;
    if (value->get_array().get(items) != simdjson::SUCCESS) {
      note(list_path, "not an array");
      return;
    }
    std::size_t index = 0;
    for (element item_element : items) {
      const json_path item_path = where.child(key, index);
      object item;
      if (item_element.get_object().get(item) != simdjson::SUCCESS) {
        note(item_path, "not an object");
      } else {
        read_item(item, item_path);
      }
      ++index;
    }
  }

  void read_contact(object item, const json_path& where, std::vector<webhook_contact>& out) {
    webhook_contact contact;
    contact.wa_id = id_member(item, "wa_id");
    contact.user_id = id_member(item, "user_id");
    if (contact.wa_id.empty() && contact.user_id.empty()) {
      note(where, "contact without wa_id or user_id");
      return;
    }
    if (auto profile = object_member(item, "profile")) {
      contact.profile_name = text_member(*profile, "name");
    }
    if (take_item()) {
      out.push_back(std::move(contact));
    }
  }

  std::vector<webhook_error> read_errors(object parent, const json_path& where) {
    std::vector<webhook_error> out;
    read_list(parent, "errors", where, [&](object item, const json_path&) {
      webhook_error error;
      error.code = int_member(item, "code").value_or(0);
      error.title = text_member(item, "title");
      error.message = text_member(item, "message");
      if (auto data = object_member(item, "error_data")) {
        error.details = text_member(*data, "details");
      }
      if (take_item()) {
        out.push_back(std::move(error));
      }
    });
    return out;
  }

  void read_message(object item, const json_path& where, std::vector<inbound_message>& out) {
    inbound_message message;
    message.wamid = id_member(item, "id");
    message.from = id_member(item, "from");
    message.from_user_id = id_member(item, "from_user_id");
    if (message.wamid.empty()) {
      note(where, "message without id");
      return;
    }
    // A customer with a username may be known by the BSUID alone (META.md).
    if (message.from.empty() && message.from_user_id.empty()) {
      note(where, "message without from or from_user_id");
      return;
    }
    if (message.wamid.size() > max_id_bytes || message.from.size() > max_id_bytes ||
        message.from_user_id.size() > max_id_bytes) {
      note(where, "message id, from or from_user_id longer than 256 bytes");
      return;
    }
    if (!take_item()) {
      return;
    }
    message.timestamp = int_member(item, "timestamp").value_or(0);
    message.type = text_member(item, "type");
    if (auto context = object_member(item, "context")) {
      message.context.from = id_member(*context, "from");
      message.context.id = id_member(*context, "id");
      message.context.forwarded = bool_member(*context, "forwarded");
      message.context.frequently_forwarded = bool_member(*context, "frequently_forwarded");
    }
    if (auto referral = object_member(item, "referral")) {
      message.referral_json = simdjson::minify(*referral);
    }
    message.errors = read_errors(item, where);
    map_content(item, message);
    out.push_back(std::move(message));
  }

  // DESIGN.md §3.5: what the dashboard shows as the message, by type.
  static void map_content(object item, inbound_message& message) {
    const std::string& type = message.type;
    auto body = type.empty() ? std::nullopt : object_member(item, type);
    if (type == "text") {
      message.content_type = type;
      if (body) {
        message.content = text_member(*body, "body");
      }
    } else if (is_media_type(type)) {
      message.content_type = type;
      if (body) {
        media_ref media;
        media.id = id_member(*body, "id");
        media.mime_type = text_member(*body, "mime_type");
        media.sha256 = text_member(*body, "sha256");
        media.filename = text_member(*body, "filename");
        media.voice = bool_member(*body, "voice");
        media.animated = bool_member(*body, "animated");
        message.media = std::move(media);
        message.content = text_member(*body, "caption");
      }
    } else if (type == "location") {
      message.content_type = type;
      map_location(body, message);
    } else if (type == "contacts") {
      message.content_type = type;
      auto cards = array_member(item, "contacts");
      message.content = cards ? simdjson::minify(*cards) : std::string{"[]"};
    } else if (type == "interactive") {
      message.content_type = type;
      map_interactive(body, message);
    } else if (type == "button") {
      message.content_type = type;
      reply_ref reply;
      reply.kind = "button";
      if (body) {
        reply.id = text_member(*body, "payload");
        reply.title = text_member(*body, "text");
      }
      message.content = reply.title;
      message.reply = std::move(reply);
    } else if (type == "order") {
      message.content_type = type;
      message.content = body ? simdjson::minify(*body) : std::string{"{}"};
    } else if (type == "system") {
      message.content_type = type;
      system_notice notice;
      if (body) {
        message.content = text_member(*body, "body");
        notice.type = text_member(*body, "type");
        notice.new_wa_id = id_member(*body, "new_wa_id");
        if (notice.new_wa_id.empty()) {
          notice.new_wa_id = id_member(*body, "wa_id");
        }
        notice.new_user_id = id_member(*body, "user_id");
        notice.previous_user_id = id_member(*body, "previous_user_id");
        if (notice.new_wa_id.size() > max_id_bytes || notice.new_user_id.size() > max_id_bytes ||
            notice.previous_user_id.size() > max_id_bytes) {
          notice = system_notice{notice.type, {}, {}, {}};  // unusable ids change no visitor
        }
      }
      message.system = std::move(notice);
    } else if (type == "reaction") {
      message.content_type = type;
      reaction_ref reaction;
      if (body) {
        reaction.message_id = id_member(*body, "message_id");
        reaction.emoji = text_member(*body, "emoji");
      }
      message.content = reaction.emoji;
      message.reaction = std::move(reaction);
    } else {
      // "unsupported", "unknown", "ephemeral", types Meta adds later, or no type at all.
      message.content_type = "unsupported";
    }
  }

  static void map_location(const std::optional<object>& body, inbound_message& message) {
    nlohmann::ordered_json location = nlohmann::ordered_json::object();
    if (body) {
      location["latitude"] = optional_number_json(number_member(*body, "latitude"));
      location["longitude"] = optional_number_json(number_member(*body, "longitude"));
      location["name"] = optional_text_json(*body, "name");
      location["address"] = optional_text_json(*body, "address");
    } else {
      location["latitude"] = nullptr;
      location["longitude"] = nullptr;
      location["name"] = nullptr;
      location["address"] = nullptr;
    }
    message.content = json_text(location);
  }

  static void map_interactive(const std::optional<object>& body, inbound_message& message) {
    reply_ref reply;
    if (body) {
      reply.kind = text_member(*body, "type");
      auto answer = reply.kind.empty() ? std::nullopt : object_member(*body, reply.kind);
      if (answer) {
        if (reply.kind == "nfm_reply") {
          // A flow's answers arrive as a JSON string; the body is its summary line.
          reply.id = text_member(*answer, "name");
          reply.title = text_member(*answer, "body");
          reply.response_json = text_member(*answer, "response_json");
        } else {
          reply.id = id_member(*answer, "id");
          reply.title = text_member(*answer, "title");
          reply.description = text_member(*answer, "description");
        }
      }
    }
    message.content = reply.title;
    message.reply = std::move(reply);
  }

  void read_preference(object item, const json_path& where, std::vector<user_preference>& out) {
    user_preference p;
    p.wa_id = id_member(item, "wa_id");
    p.user_id = id_member(item, "user_id");
    p.category = text_member(item, "category");
    p.value = text_member(item, "value");
    if ((p.wa_id.empty() && p.user_id.empty()) || p.value.empty()) {
      note(where, "preference without a customer id or value");
      return;
    }
    if (p.wa_id.size() > max_id_bytes || p.user_id.size() > max_id_bytes || p.category.size() > 64 ||
        p.value.size() > 64) {
      note(where, "preference field too long");
      return;
    }
    if (!take_item()) {
      return;
    }
    p.timestamp = int_member(item, "timestamp").value_or(0);
    out.push_back(std::move(p));
  }

  void read_status(object item, const json_path& where, std::vector<message_status>& out) {
    message_status status;
    status.wamid = id_member(item, "id");
    status.status = text_member(item, "status");
    if (status.wamid.empty()) {
      note(where, "status without id");
      return;
    }
    if (status.status.empty()) {
      note(where, "status without status");
      return;
    }
    if (status.wamid.size() > max_id_bytes || status.status.size() > 64) {
      note(where, "status id or status value too long");
      return;
    }
    if (!take_item()) {
      return;
    }
    status.timestamp = int_member(item, "timestamp").value_or(0);
    status.recipient_id = id_member(item, "recipient_id");
    status.recipient_user_id = id_member(item, "recipient_user_id");
    status.biz_opaque_callback_data = text_member(item, "biz_opaque_callback_data");
    if (status.biz_opaque_callback_data.size() > 512) {  // Meta's limit; longer is not ours
      status.biz_opaque_callback_data.clear();
    }
    if (auto conversation = object_member(item, "conversation")) {
      status.conversation_id = id_member(*conversation, "id");
      status.conversation_expiration = int_member(*conversation, "expiration_timestamp");
      if (auto origin = object_member(*conversation, "origin")) {
        status.conversation_origin_type = text_member(*origin, "type");
      }
    }
    if (auto pricing = object_member(item, "pricing")) {
      status_pricing out_pricing;
      out_pricing.billable = bool_member(*pricing, "billable");
      out_pricing.pricing_model = text_member(*pricing, "pricing_model");
      out_pricing.category = text_member(*pricing, "category");
      out_pricing.type = text_member(*pricing, "type");
      status.pricing = std::move(out_pricing);
    }
    status.errors = read_errors(item, where);
    out.push_back(std::move(status));
  }

  const webhook_parse_limits& limits_;
  webhook_delivery delivery_;
  std::size_t items_used_ = 0;
  std::size_t items_dropped_ = 0;
  std::size_t problems_dropped_ = 0;
};

}  // namespace

webhook_parse_result parse_webhook(std::string_view body, const webhook_parse_limits& limits) {
  try {
    // One parser per thread: it keeps its buffers, so steady-state parsing allocates little.
    thread_local simdjson::dom::parser parser;
    element root_element;
    // The view is not padded, so simdjson copies it into its own padded buffer.
    auto error = parser.parse(body.data(), body.size(), true).get(root_element);
    if (error != simdjson::SUCCESS) {
      return webhook_parse_error{std::string{"not valid JSON: "} + simdjson::error_message(error)};
    }
    object root;
    if (root_element.get_object().get(root) != simdjson::SUCCESS) {
      return webhook_parse_error{"JSON body is not an object"};
    }
    return delivery_reader{limits}.read(root);
  } catch (const std::exception& e) {
    // Only allocation can throw here; callers get a value either way.
    return webhook_parse_error{std::string{"cannot parse: "} + e.what()};
  }
}

}  // namespace wachat::domain

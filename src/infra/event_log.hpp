#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pqxx {
class transaction_base;
}

namespace wachat::infra {

inline constexpr const char* events_channel = "wachat_events";
// The key of the advisory lock a site's events are appended under (held to commit), for the
// site in parameter $1.
inline constexpr const char* events_lock_key_sql = "hashtext('wachat_events:' || $1)";
// The same key for the site in another parameter (`param` such as "$2").
inline std::string events_lock_key_for(std::string_view param) {
  return "hashtext('wachat_events:' || " + std::string{param} + ")";
}

// Records a live event (API.md §3.5) in the caller's transaction and notifies every wachatd at
// commit. Takes the site's event lock until commit, so that a site's event ids commit in order:
// call it last in the transaction.
void append_event(pqxx::transaction_base& tx, const std::string& site_id, std::string_view type,
                  std::optional<std::int64_t> conversation_id,
                  std::optional<std::int64_t> message_id);

// One `notification` event per row of mod_chat_notifications named (API.md §3.5), in order;
// like append_event, call it last in the transaction.
void append_notification_events(pqxx::transaction_base& tx, const std::string& site_id, std::int64_t conversation_id,
                                const std::vector<std::int64_t>& notification_ids);

struct pending_event {
  std::string site_id;
  std::string type;
  std::optional<std::int64_t> conversation_id;
  std::optional<std::int64_t> message_id;
};

// The same for many events at once (inbox processing collects them and appends at the end).
void append_events(pqxx::transaction_base& tx, const std::vector<pending_event>& events);

}  // namespace wachat::infra

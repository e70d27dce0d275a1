#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace pqxx {
class transaction_base;
class row;
}  // namespace pqxx

namespace wachat::infra {

// Loads and renders the API's Conversation and Message objects (API.md §3.4).
// Each returns nullopt when the row does not exist or belongs to another site than `site`
// (when `site` is given), so that callers answer 404 exactly as for a missing row.
std::optional<nlohmann::json> load_conversation(pqxx::transaction_base& tx, std::int64_t id,
                                                const std::optional<std::string>& site);
std::optional<nlohmann::json> load_message(pqxx::transaction_base& tx, std::int64_t id);

// For the event hub, one query for a run of events and the objects they name: $1 the site, $2
// the last event id seen, $3 the most events. Each row is the event's id, site_id, type,
// conversation_id and message_id, then its conversation, its message and its notification
// (NULL when it names none or the row is gone), read by the three functions below.
extern const std::string events_with_objects_sql;
void check_event_row(const pqxx::row& row);  // throws when the columns do not match
std::optional<nlohmann::json> event_conversation(const pqxx::row& row);
std::optional<nlohmann::json> event_message(const pqxx::row& row);
// A `notification` event's row of mod_chat_notifications: {"id","agent_id","type","created_at"}.
std::optional<nlohmann::json> event_notification(const pqxx::row& row);

// The SELECT lists the renderers expect, for callers that page through rows.
extern const std::string conversation_select;  // ... FROM c, its visitor v; add WHERE/ORDER
extern const std::string message_select;       // ... FROM mod_chat_messages m
// The bare SELECT list of message_select, over any row source aliased m with the table's
// columns (a data-modifying CTE's RETURNING *, so a write answers with its message at once).
extern const std::string message_columns;
inline constexpr int message_column_count = 25;
nlohmann::json conversation_json(const pqxx::row& row);
nlohmann::json message_json(const pqxx::row& row);

// Path ids are opaque strings; ours are positive integers. Anything else is simply not found.
std::optional<std::int64_t> parse_id(const std::string& text);

std::string dump(const nlohmann::json& j);

// RFC 3339 UTC from PostgreSQL's epoch seconds.
std::string rfc3339(std::int64_t unix_seconds);

}  // namespace wachat::infra

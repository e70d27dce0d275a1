#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <map>
#include <optional>
#include <set>
#include <string>

namespace pqxx {
class transaction_base;
class row;
}  // namespace pqxx

namespace wachat::http {

// Loads and renders the API's Conversation and Message objects (API.md §3.4).
// Each returns nullopt when the row does not exist or belongs to another site than `site`
// (when `site` is given), so that callers answer 404 exactly as for a missing row.
std::optional<nlohmann::json> load_conversation(pqxx::transaction_base& tx, std::int64_t id,
                                                const std::optional<std::string>& site);
std::optional<nlohmann::json> load_message(pqxx::transaction_base& tx, std::int64_t id);

// Many at once, by id (one query each, for the event hub); ids not found are left out.
std::map<std::int64_t, nlohmann::json> load_conversations(pqxx::transaction_base& tx,
                                                          const std::set<std::int64_t>& ids);
std::map<std::int64_t, nlohmann::json> load_messages(pqxx::transaction_base& tx,
                                                     const std::set<std::int64_t>& ids);

// The SELECT lists the renderers expect, for callers that page through rows.
extern const std::string conversation_select;  // ... FROM c, its visitor v; add WHERE/ORDER
extern const std::string message_select;       // ... FROM mod_chat_messages m
nlohmann::json conversation_json(const pqxx::row& row);
nlohmann::json message_json(const pqxx::row& row);

// Path ids are opaque strings; ours are positive integers. Anything else is simply not found.
std::optional<std::int64_t> parse_id(const std::string& text);

std::string dump(const nlohmann::json& j);

}  // namespace wachat::http

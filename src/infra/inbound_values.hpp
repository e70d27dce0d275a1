#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/webhook_model.hpp"

namespace wachat::infra {

// How inbound webhook values become column values; shared by the per-unit and batch stores.

// PostgreSQL text cannot hold NUL, which JSON's \u0000 can smuggle in: drop it.
std::string pg_text(std::string_view s);

// NULL for an empty string, else the string without NUL.
std::optional<std::string> non_empty(const std::string& s);

// `value.errors[]` / `statuses[].errors[]` as stored in jsonb columns.
nlohmann::json errors_value(const std::vector<domain::webhook_error>& errors);

// What the dashboard shows besides the content (reply ids, forwarding, referral, errors), or
// null when there is nothing: mod_chat_messages.extra.
nlohmann::json extra_value(const domain::inbound_message& m);

// JSON text for PostgreSQL: invalid UTF-8 replaced, never thrown on.
std::string pg_json(const nlohmann::json& j);

}  // namespace wachat::infra

#include "http/chat_views.hpp"

#include <charconv>
#include <ctime>
#include <pqxx/pqxx>

#include "domain/window.hpp"
#include "http/api_common.hpp"
#include "infra/cached_statement.hpp"

namespace wachat::http {

using nlohmann::json;

namespace {

constexpr const char* conversation_columns =
    "SELECT c.id, c.site_id, c.channel, c.status, c.assigned_agent_id,"
    " extract(epoch from c.whatsapp_window_expires_at)::bigint,"
    " extract(epoch from c.last_message_at)::bigint, c.unread_count,"
    " extract(epoch from c.created_at)::bigint, v.id, v.name, v.whatsapp_phone,"
    " v.crm_contact_id, extract(epoch from now())::bigint";
// LATERAL ... LIMIT 1: one primary-key probe per conversation. As a plain join the planner
// hashed the whole visitor table to render a few hundred events (20 ms at 10,000 visitors).
constexpr const char* conversation_visitor =
    " CROSS JOIN LATERAL (SELECT v.id, v.name, v.whatsapp_phone, v.crm_contact_id"
    "   FROM mod_chat_visitors v WHERE v.id = c.visitor_id LIMIT 1) v ";

constexpr const char* message_columns =
    "SELECT m.id, m.conversation_id, m.sender_type, m.sender_id, m.sender_name, m.content,"
    " m.content_type, m.file_url, m.file_name, m.file_size, m.file_mime_type, m.media_status,"
    " m.whatsapp_message_id, m.status, m.error_code, m.error_title, m.error_details,"
    " m.reply_to, m.reactions::text, extract(epoch from m.whatsapp_timestamp)::bigint,"
    " extract(epoch from m.created_at)::bigint, m.extra::text,"
    " (extract(epoch from m.created_at) * 1000000)::bigint";  // 22: the paging key, exact to 1 µs

}  // namespace

const std::string conversation_select =
    std::string{conversation_columns} + " FROM mod_chat_conversations c" + conversation_visitor;

const std::string message_select = std::string{message_columns} + " FROM mod_chat_messages m ";

namespace {

json opt_text(const pqxx::field& f) { return f.is_null() ? json(nullptr) : json(f.c_str()); }
json opt_time(const pqxx::field& f) {
  return f.is_null() ? json(nullptr) : json(rfc3339(f.as<std::int64_t>()));
}
json opt_id(const pqxx::field& f) { return f.is_null() ? json(nullptr) : json(f.c_str()); }

}  // namespace

json conversation_json(const pqxx::row& row) {
  auto expires = row[5].as<std::optional<std::int64_t>>();
  auto now = row[13].as<std::int64_t>();
  auto w = domain::view_window(expires, now);
  json window = {{"open", w.open},
                 {"expires_at", w.expires_at ? json(rfc3339(*w.expires_at)) : json(nullptr)},
                 {"seconds_left", w.seconds_left},
                 {"template_required", w.template_required}};
  return {
      {"id", row[0].c_str()},
      {"site_id", row[1].c_str()},
      {"channel", row[2].c_str()},
      {"status", row[3].c_str()},
      {"visitor",
       {{"id", row[9].c_str()},
        {"name", opt_text(row[10])},
        {"whatsapp_phone", opt_text(row[11])},
        {"crm_contact_id", opt_id(row[12])}}},
      {"assigned_agent_id", opt_text(row[4])},
      {"whatsapp_window_expires_at", opt_time(row[5])},
      {"window", window},
      {"last_message_at", opt_time(row[6])},
      {"unread_count", row[7].as<int>()},
      {"created_at", rfc3339(row[8].as<std::int64_t>())},
  };
}

json message_json(const pqxx::row& row) {
  json error = nullptr;
  if (!row[14].is_null() || !row[15].is_null()) {
    error = {{"code", row[14].is_null() ? json(nullptr) : json(row[14].as<int>())},
             {"title", opt_text(row[15])},
             {"details", opt_text(row[16])}};
  }
  json reactions = json::parse(row[18].c_str(), nullptr, false);
  if (reactions.is_discarded()) {
    reactions = json::array();
  }
  json j = {
      {"id", row[0].c_str()},
      {"conversation_id", row[1].c_str()},
      {"sender_type", row[2].c_str()},
      {"sender_id", opt_text(row[3])},
      {"sender_name", opt_text(row[4])},
      {"content", opt_text(row[5])},
      {"content_type", row[6].c_str()},
      {"file_url", opt_text(row[7])},
      {"file_name", opt_text(row[8])},
      {"file_size", row[9].is_null() ? json(nullptr) : json(row[9].as<std::int64_t>())},
      {"file_mime_type", opt_text(row[10])},
      {"media_status", row[11].c_str()},
      {"whatsapp_message_id", opt_text(row[12])},
      {"status", row[13].c_str()},
      {"error", error},
      {"reply_to", opt_id(row[17])},
      {"reactions", reactions},
      {"whatsapp_timestamp", opt_time(row[19])},
      {"created_at", rfc3339(row[20].as<std::int64_t>())},
  };
  if (!row[21].is_null()) {
    json extra = json::parse(row[21].c_str(), nullptr, false);
    if (extra.is_object()) {
      j["whatsapp"] = extra;
    }
  }
  return j;
}

std::optional<json> load_conversation(pqxx::transaction_base& tx, std::int64_t id,
                                      const std::optional<std::string>& site) {
  auto r = tx.exec_params(conversation_select + "WHERE c.id = $1", id);
  if (r.empty() || (site && r[0][1].as<std::string>() != *site)) {
    return std::nullopt;
  }
  return conversation_json(r[0]);
}

std::optional<json> load_message(pqxx::transaction_base& tx, std::int64_t id) {
  auto r = tx.exec_params(message_select + "WHERE m.id = $1", id);
  if (r.empty()) {
    return std::nullopt;
  }
  return message_json(r[0]);
}

namespace {

// `{1,2,3}`: only integers go in, so the literal needs no quoting.
std::string id_array(const std::set<std::int64_t>& ids) {
  std::string out = "{";
  for (auto id : ids) {
    out += (out.size() > 1 ? "," : "") + std::to_string(id);
  }
  return out + "}";
}

// `columns` of the rows of `table` named by `ids`, as `alias`, rendered by `render`. Driven by
// the ids, one primary-key probe each (LATERAL ... LIMIT 1): with `id = ANY(...)` the planner,
// on a young table's statistics, sometimes walked another index instead.
std::map<std::int64_t, json> load_by_ids(pqxx::transaction_base& tx, const std::string& columns,
                                         const std::string& table, const std::string& alias,
                                         const std::string& joins,
                                         const std::set<std::int64_t>& ids,
                                         json (*render)(const pqxx::row&)) {
  std::map<std::int64_t, json> out;
  if (ids.empty()) {
    return out;
  }
  auto sql = columns + " FROM unnest($1::bigint[]) AS k(id) CROSS JOIN LATERAL (SELECT * FROM " +
             table + " x WHERE x.id = k.id LIMIT 1) " + alias + joins;
  for (const auto& row : infra::exec_cached(tx, "load_by_ids_" + table, sql, id_array(ids))) {
    out.emplace(row[0].as<std::int64_t>(), render(row));
  }
  return out;
}

}  // namespace

std::map<std::int64_t, json> load_conversations(pqxx::transaction_base& tx,
                                                const std::set<std::int64_t>& ids) {
  return load_by_ids(tx, conversation_columns, "mod_chat_conversations", "c", conversation_visitor,
                     ids, conversation_json);
}

std::map<std::int64_t, json> load_messages(pqxx::transaction_base& tx,
                                           const std::set<std::int64_t>& ids) {
  return load_by_ids(tx, message_columns, "mod_chat_messages", "m", "", ids, message_json);
}

std::optional<std::int64_t> parse_id(const std::string& text) {
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || ptr != text.data() + text.size() || v <= 0 || text.size() > 19) {
    return std::nullopt;
  }
  return v;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace wachat::http

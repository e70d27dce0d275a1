#include "infra/chat_views.hpp"

#include <charconv>
#include <ctime>
#include <pqxx/pqxx>
#include <stdexcept>

#include "infra/cached_statement.hpp"
#include "domain/graph_error_policy.hpp"
#include "domain/window.hpp"
#include "infra/media_urls.hpp"

namespace wachat::infra {

using nlohmann::json;

namespace {

constexpr const char* conversation_columns =
    "SELECT c.id, c.site_id, c.channel, c.status, c.assigned_agent_id,"
    " extract(epoch from c.whatsapp_window_expires_at)::bigint,"
    " extract(epoch from c.last_message_at)::bigint, c.unread_count,"
    " extract(epoch from c.created_at)::bigint, v.id, v.name, v.whatsapp_phone,"
    " v.crm_contact_id, extract(epoch from now())::bigint, v.whatsapp_user_id, v.marketing_opt_out";
// LATERAL ... LIMIT 1: one primary-key probe per conversation. As a plain join the planner
// hashed the whole visitor table to render a few hundred events (20 ms at 10,000 visitors).
constexpr const char* conversation_visitor =
    " CROSS JOIN LATERAL (SELECT v.id, v.name, v.whatsapp_phone, v.crm_contact_id, v.whatsapp_user_id,"
    "   v.marketing_opt_out"
    "   FROM mod_chat_visitors v WHERE v.id = c.visitor_id LIMIT 1) v ";

constexpr const char* message_columns_text =
    "SELECT m.id, m.conversation_id, m.sender_type, m.sender_id, m.sender_name, m.content,"
    " m.content_type, m.file_url, m.file_name, m.file_size, m.file_mime_type, m.media_status,"
    " m.whatsapp_message_id, m.status, m.error_code, m.error_title, m.error_details,"
    " m.reply_to, m.reactions::text, extract(epoch from m.whatsapp_timestamp)::bigint,"
    " extract(epoch from m.created_at)::bigint, m.extra::text,"
    " (extract(epoch from m.created_at) * 1000000)::bigint,"  // 22: the paging key, exact to 1 µs
    " m.error_retryable, m.media_key";

}  // namespace

const std::string conversation_select =
    std::string{conversation_columns} + " FROM mod_chat_conversations c" + conversation_visitor;

const std::string message_columns = message_columns_text;
const std::string message_select = message_columns + " FROM mod_chat_messages m ";

namespace {

json opt_text(const pqxx::field& f) { return f.is_null() ? json(nullptr) : json(f.c_str()); }
json opt_time(const pqxx::field& f) {
  return f.is_null() ? json(nullptr) : json(rfc3339(f.as<std::int64_t>()));
}
json opt_id(const pqxx::field& f) { return f.is_null() ? json(nullptr) : json(f.c_str()); }

// A stored file's URL is signed afresh at every read (API.md §3.6); any other file_url (an
// agent's link) is shown as stored.
json file_url(const pqxx::row& row) {
  if (!row[24].is_null() && std::string_view{row[11].c_str()} == "stored") {
    if (const auto* signer = media_urls()) {
      return signer->url_for(row[24].c_str(), static_cast<std::int64_t>(std::time(nullptr)));
    }
  }
  return opt_text(row[7]);
}

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
        {"whatsapp_user_id", opt_text(row[14])},
        {"crm_contact_id", opt_id(row[12])},
        {"marketing_opt_out", row[15].as<bool>()}}},
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
    // Whether sending again can help: as decided when our send failed, else (a failed status
    // from Meta) by the code (domain::classify_graph_error).
    bool retryable = false;
    if (!row[23].is_null()) {
      retryable = row[23].as<bool>();
    } else if (!row[14].is_null()) {
      domain::graph_error e;
      e.code = row[14].as<int>();
      retryable = domain::is_retryable(domain::classify_graph_error(e));
    }
    error = {{"code", row[14].is_null() ? json(nullptr) : json(row[14].as<int>())},
             {"title", opt_text(row[15])},
             {"details", opt_text(row[16])},
             {"retryable", retryable}};
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
      {"file_url", file_url(row)},
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
  auto r = exec_cached(tx, "view_conversation", conversation_select + "WHERE c.id = $1", id);
  if (r.empty() || (site && r[0][1].as<std::string>() != *site)) {
    return std::nullopt;
  }
  return conversation_json(r[0]);
}

std::optional<json> load_message(pqxx::transaction_base& tx, std::int64_t id) {
  auto r = exec_cached(tx, "view_message", message_select + "WHERE m.id = $1", id);
  if (r.empty()) {
    return std::nullopt;
  }
  return message_json(r[0]);
}

namespace {

// Columns of conversation_columns and message_columns, in that order after the event's five.
constexpr int conversation_width = 16;
constexpr int message_width = message_column_count;
constexpr int event_width = 5;
constexpr int notification_width = 4;

}  // namespace

// Each object is one primary-key probe (LATERAL ... LIMIT 1): with joins or `id = ANY(...)` the
// planner, on a young table's statistics, hashed or walked whole tables. A conversation is read
// for the first of the run's events that names it only (`nth`, a filter on the outer row that
// PostgreSQL checks before probing): a new message's message.created and conversation.updated
// name the same one, and the caller serializes each object once anyway (its rows after the
// first have NULL conversation columns).
const std::string events_with_objects_sql =
    "SELECT e.id, e.site_id, e.type, e.conversation_id, e.message_id, cv.*, mv.*, nv.* FROM"
    " (SELECT w.*, row_number() OVER (PARTITION BY w.conversation_id ORDER BY w.id) AS nth FROM"
    "   (SELECT id, site_id, type, conversation_id, message_id, notification_id FROM wa_events"
    "     WHERE site_id = $1 AND id > $2 AND created_at > now() - interval '24 hours'"
    "     ORDER BY id LIMIT $3) w) e"
    " LEFT JOIN LATERAL (" + std::string{conversation_columns} +
    "   FROM (SELECT * FROM mod_chat_conversations x WHERE x.id = e.conversation_id"
    "     AND e.nth = 1 LIMIT 1) c" +
    conversation_visitor + ") cv ON true"
    " LEFT JOIN LATERAL (" + std::string{message_columns_text} +
    "   FROM (SELECT * FROM mod_chat_messages x WHERE x.id = e.message_id LIMIT 1) m) mv ON true"
    " LEFT JOIN LATERAL (SELECT n.id, n.agent_id, n.type, extract(epoch from n.created_at)::bigint"
    "   FROM mod_chat_notifications n WHERE n.id = e.notification_id LIMIT 1) nv ON true"
    " ORDER BY e.id";

void check_event_row(const pqxx::row& row) {
  if (row.size() != event_width + conversation_width + message_width + notification_width) {
    throw std::logic_error("events_with_objects_sql: unexpected number of columns");
  }
}

std::optional<json> event_conversation(const pqxx::row& row) {
  auto part = row.slice(event_width, event_width + conversation_width);
  return part[0].is_null() ? std::nullopt : std::optional<json>{conversation_json(part)};
}

std::optional<json> event_message(const pqxx::row& row) {
  auto part = row.slice(event_width + conversation_width,
                        event_width + conversation_width + message_width);
  return part[0].is_null() ? std::nullopt : std::optional<json>{message_json(part)};
}

std::optional<json> event_notification(const pqxx::row& row) {
  auto part = row.slice(event_width + conversation_width + message_width,
                        event_width + conversation_width + message_width + notification_width);
  if (part[0].is_null()) {
    return std::nullopt;
  }
  return json{{"id", part[0].c_str()},
              {"agent_id", opt_text(part[1])},
              {"type", part[2].c_str()},
              {"created_at", rfc3339(part[3].as<std::int64_t>())}};
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

std::string rfc3339(std::int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace wachat::infra

#include "infra/inbound_store.hpp"

#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <set>

#include "domain/window.hpp"
#include "infra/inbound_values.hpp"
#include "infra/log.hpp"

namespace wachat::infra {
namespace {

using nlohmann::json;

// SQL in one place (STYLE.md): every value a parameter.
constexpr const char* upsert_visitor_sql =
    "INSERT INTO mod_chat_visitors (site_id, name, whatsapp_phone, phone) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (site_id, whatsapp_phone) WHERE whatsapp_phone IS NOT NULL DO UPDATE"
    " SET name = coalesce(nullif(excluded.name, ''), mod_chat_visitors.name) RETURNING id";
constexpr const char* open_conversation_sql =
    "SELECT id FROM mod_chat_conversations WHERE site_id = $1 AND visitor_id = $2"
    " AND channel = 'whatsapp' AND status IN ('pending', 'active') FOR UPDATE";
constexpr const char* new_conversation_sql =
    "INSERT INTO mod_chat_conversations (site_id, visitor_id, channel, status, last_message_at)"
    " VALUES ($1, $2, 'whatsapp', 'pending', to_timestamp($3))"
    " ON CONFLICT (site_id, visitor_id) WHERE channel = 'whatsapp' AND status IN ('pending', 'active')"
    " DO NOTHING RETURNING id";
constexpr const char* insert_message_sql =
    "INSERT INTO mod_chat_messages (conversation_id, site_id, sender_type, sender_id, sender_name,"
    " content, content_type, file_name, file_mime_type, media_status, media_id, media_sha256,"
    " whatsapp_message_id, status, reply_to, reply_to_wamid, extra, whatsapp_timestamp, created_at)"
    " VALUES ($1, $2, 'visitor', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'received',"
    " (SELECT id FROM mod_chat_messages WHERE site_id = $2 AND whatsapp_message_id = $13),"
    " $13, $14::jsonb, to_timestamp($15), to_timestamp($15))"
    " ON CONFLICT (site_id, whatsapp_message_id) WHERE whatsapp_message_id IS NOT NULL DO NOTHING"
    " RETURNING id";
constexpr const char* touch_conversation_sql =
    "UPDATE mod_chat_conversations SET unread_count = unread_count + 1,"
    " last_message_at = greatest(last_message_at, to_timestamp($2)),"
    " whatsapp_window_expires_at = greatest(coalesce(whatsapp_window_expires_at, '-infinity'),"
    "   to_timestamp($2) + interval '24 hours'),"
    " updated_at = now() WHERE id = $1";
constexpr const char* find_target_sql =
    "SELECT id, reactions::text FROM mod_chat_messages WHERE site_id = $1 AND whatsapp_message_id = $2"
    " FOR UPDATE";
constexpr const char* set_reactions_sql =
    "UPDATE mod_chat_messages SET reactions = $2::jsonb WHERE id = $1 RETURNING conversation_id";
constexpr const char* insert_status_sql =
    "INSERT INTO wa_message_statuses (site_id, whatsapp_message_id, status, status_timestamp,"
    " recipient_id, conversation_meta_id, conversation_expires, conversation_origin, pricing,"
    " errors, event_id) VALUES ($1, $2, $3, to_timestamp($4), $5, $6, to_timestamp($7), $8,"
    " $9::jsonb, $10::jsonb, $11) ON CONFLICT DO NOTHING RETURNING id";
constexpr const char* advance_status_sql =
    "UPDATE mod_chat_messages SET status = $3,"
    " error_code = CASE WHEN $3 = 'failed' THEN $4 ELSE error_code END,"
    " error_title = CASE WHEN $3 = 'failed' THEN $5 ELSE error_title END,"
    " error_details = CASE WHEN $3 = 'failed' THEN $6 ELSE error_details END"
    " WHERE site_id = $1 AND whatsapp_message_id = $2"
    " AND wa_status_rank(status) < wa_status_rank($3) RETURNING id, conversation_id";
constexpr const char* close_window_sql =
    "UPDATE mod_chat_conversations c SET whatsapp_window_expires_at ="
    " least(c.whatsapp_window_expires_at, to_timestamp($2)), updated_at = now()"
    " WHERE c.id = (SELECT conversation_id FROM mod_chat_messages WHERE site_id = $1"
    "   AND whatsapp_message_id = $3)"
    " AND c.whatsapp_window_expires_at > to_timestamp($2)"
    " AND NOT EXISTS (SELECT 1 FROM mod_chat_messages m WHERE m.conversation_id = c.id"
    "   AND m.sender_type = 'visitor' AND m.whatsapp_timestamp > to_timestamp($2))"
    " RETURNING c.id";

std::optional<std::string> extra_text(const domain::inbound_message& m) {
  auto extra = extra_value(m);
  return extra.is_null() ? std::nullopt : std::optional<std::string>{pg_json(extra)};
}

// The writes of one unit, inside the caller's transaction (a savepoint of the writer's batch).
class unit_writer {
 public:
  unit_writer(pqxx::transaction_base& tx, std::int64_t event_id,
              std::vector<pending_event>& events, domain::unit_outcome& outcome)
      : tx_(tx), event_id_(event_id), events_(events), outcome_(outcome) {}

  void store(const std::string& site, const domain::inbound_unit& u) {
    if (u.what == domain::inbound_unit::kind::message) {
      message(site, u.profile_name, u.message);
    } else {
      status(site, u.status);
    }
  }

 private:
  // The visitor's open WhatsApp conversation, else a new pending one; locked for this tx.
  std::int64_t conversation_for(const std::string& site, std::int64_t visitor, std::int64_t ts) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto r = tx_.exec_params(open_conversation_sql, site, visitor);
      if (!r.empty()) {
        return r[0][0].as<std::int64_t>();
      }
      auto ins = tx_.exec_params(new_conversation_sql, site, visitor, ts);
      if (!ins.empty()) {
        auto id = ins[0][0].as<std::int64_t>();
        events_.push_back({site, "conversation.created", id, std::nullopt});
        return id;
      }
      // Another process opened it between our SELECT and INSERT: read it again.
    }
    throw std::runtime_error("could not find or open a conversation");
  }

  void message(const std::string& site, const std::string& name,
               const domain::inbound_message& m) {
    auto visitor = tx_.exec_params(upsert_visitor_sql, site, non_empty(name), pg_text(m.from),
                                   "+" + pg_text(m.from))[0][0]
                       .as<std::int64_t>();
    auto ts = domain::plausible_timestamp(m.timestamp, static_cast<std::int64_t>(std::time(nullptr)));
    if (m.reaction) {
      return reaction(site, m);
    }
    auto conversation = conversation_for(site, visitor, ts);
    const bool has_media = m.media.has_value();
    auto ins = tx_.exec_params(
        insert_message_sql, conversation, site, pg_text(m.from), non_empty(name), non_empty(m.content),
        pg_text(m.content_type), has_media ? non_empty(m.media->filename) : std::nullopt,
        has_media ? non_empty(m.media->mime_type) : std::nullopt,
        std::string{has_media ? "pending" : "none"},
        has_media ? non_empty(m.media->id) : std::nullopt,
        has_media ? non_empty(m.media->sha256) : std::nullopt, pg_text(m.wamid),
        non_empty(m.context.id), extra_text(m), ts);
    if (ins.empty()) {
      return;  // this wamid is stored already: a redelivery
    }
    auto id = ins[0][0].as<std::int64_t>();
    tx_.exec_params(touch_conversation_sql, conversation, ts);
    outcome_.new_message = true;
    events_.push_back({site, "message.created", conversation, id});
    events_.push_back({site, "conversation.updated", conversation, std::nullopt});
  }

  // A reaction updates its target's reactions (one per side) and adds no message (API.md §3.4).
  void reaction(const std::string& site, const domain::inbound_message& m) {
    auto target = tx_.exec_params(find_target_sql, site, pg_text(m.reaction->message_id));
    if (target.empty()) {
      return;  // a reaction to a message we never stored: nothing to show it on
    }
    auto id = target[0][0].as<std::int64_t>();
    json reactions = json::parse(target[0][1].c_str(), nullptr, false);
    if (!reactions.is_array()) {
      reactions = json::array();
    }
    json updated = json::array();
    for (const auto& r : reactions) {
      if (r.value("by", "") != "visitor") {
        updated.push_back(r);
      }
    }
    if (!m.reaction->is_removal()) {
      updated.push_back({{"emoji", pg_text(m.reaction->emoji)}, {"by", "visitor"}});
    }
    if (updated == reactions) {
      return;
    }
    auto r = tx_.exec_params(set_reactions_sql, id, pg_json(updated));
    events_.push_back({site, "message.updated", r[0][0].as<std::int64_t>(), id});
  }

  void status(const std::string& site, const domain::message_status& s) {
    std::optional<std::string> pricing;
    if (s.pricing) {
      pricing = pg_json(json{{"billable", s.pricing->billable},
                             {"pricing_model", pg_text(s.pricing->pricing_model)},
                             {"category", pg_text(s.pricing->category)},
                             {"type", pg_text(s.pricing->type)}});
    }
    auto ins = tx_.exec_params(
        insert_status_sql, site, pg_text(s.wamid), pg_text(s.status),
        domain::plausible_timestamp(s.timestamp, static_cast<std::int64_t>(std::time(nullptr))), non_empty(s.recipient_id),
        non_empty(s.conversation_id), s.conversation_expiration,
        non_empty(s.conversation_origin_type), pricing,
        s.errors.empty() ? std::nullopt : std::optional<std::string>{pg_json(errors_value(s.errors))},
        event_id_);
    if (ins.empty()) {
      return;  // the same status, redelivered
    }
    outcome_.new_status = true;
    std::optional<int> code;
    std::optional<std::string> title, details;
    if (!s.errors.empty()) {
      code = static_cast<int>(s.errors[0].code);
      title = non_empty(s.errors[0].title.empty() ? s.errors[0].message : s.errors[0].title);
      details = non_empty(s.errors[0].details);
    }
    auto upd = tx_.exec_params(advance_status_sql, site, pg_text(s.wamid), pg_text(s.status), code,
                             title, details);
    if (!upd.empty()) {
      events_.push_back({site, "message.updated", upd[0][1].as<std::int64_t>(),
                         upd[0][0].as<std::int64_t>()});
    }
    // 131047: more than 24 h since the customer's last message — Meta says the window is shut.
    if (s.status == "failed" && code == 131047) {
      auto closed = tx_.exec_params(
          close_window_sql, site,
          domain::plausible_timestamp(s.timestamp, static_cast<std::int64_t>(std::time(nullptr))),
          pg_text(s.wamid));
      if (!closed.empty()) {
        events_.push_back(
            {site, "conversation.updated", closed[0][0].as<std::int64_t>(), std::nullopt});
      }
    }
  }

  pqxx::transaction_base& tx_;
  std::int64_t event_id_;
  std::vector<pending_event>& events_;
  domain::unit_outcome& outcome_;
};

}  // namespace

domain::unit_outcome store_unit(pqxx::transaction_base& tx, const std::string& site,
                                std::int64_t event_id, const domain::inbound_unit& unit,
                                std::vector<pending_event>& events) {
  domain::unit_outcome outcome;
  unit_writer{tx, event_id, events, outcome}.store(site, unit);
  outcome.stored = true;
  return outcome;
}

}  // namespace wachat::infra

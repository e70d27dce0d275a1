#include "infra/inbox_processor.hpp"

#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <set>

#include "domain/webhook_parser.hpp"
#include "domain/window.hpp"
#include "infra/log.hpp"

namespace wachat::infra {
namespace {

using nlohmann::json;

// SQL in one place (STYLE.md): every value a parameter.
constexpr const char* claim_sql =
    "SELECT id, body FROM wa_webhook_events WHERE status = 'pending' ORDER BY id LIMIT $1"
    " FOR UPDATE SKIP LOCKED";
constexpr const char* site_by_phone_sql =
    "SELECT site_id FROM mod_chat_widget_settings WHERE whatsapp_phone_number_id = $1";
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
constexpr const char* finish_sql =
    "UPDATE wa_webhook_events SET status = $2, error = $3, processed_at = now(),"
    " attempts = attempts + 1, unroutable_phone_ids ="
    " CASE WHEN $4::jsonb IS NULL THEN NULL ELSE ARRAY(SELECT jsonb_array_elements_text($4::jsonb)) END"
    " WHERE id = $1";

// PostgreSQL text cannot hold NUL, which JSON's \u0000 can smuggle in: drop it.
std::string pg_text(std::string_view s) {
  std::string out{s};
  std::erase(out, '\0');
  return out;
}

std::optional<std::string> non_empty(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string>{pg_text(s)};
}

std::string errors_json(const std::vector<domain::webhook_error>& errors) {
  json arr = json::array();
  for (const auto& e : errors) {
    arr.push_back({{"code", e.code}, {"title", e.title}, {"message", e.message},
                   {"details", e.details}});
  }
  return arr.dump(-1, ' ', false, json::error_handler_t::replace);
}

// What the dashboard shows besides the content: reply ids, forwarding, referral, errors.
std::optional<std::string> extra_json(const domain::inbound_message& m) {
  json j = json::object();
  if (m.reply) {
    j["reply"] = {{"kind", m.reply->kind}, {"id", m.reply->id}, {"title", m.reply->title}};
    if (!m.reply->description.empty()) {
      j["reply"]["description"] = m.reply->description;
    }
    if (!m.reply->response_json.empty()) {
      j["reply"]["response_json"] = m.reply->response_json;
    }
  }
  if (m.context.forwarded || m.context.frequently_forwarded) {
    j["forwarded"] = true;
    j["frequently_forwarded"] = m.context.frequently_forwarded;
  }
  if (!m.referral_json.empty()) {
    j["referral"] = json::parse(m.referral_json, nullptr, false);
  }
  if (m.system) {
    j["system"] = {{"type", m.system->type}, {"new_wa_id", m.system->new_wa_id}};
  }
  if (m.media) {
    if (m.media->voice) {
      j["voice"] = true;
    }
    if (m.media->animated) {
      j["animated"] = true;
    }
  }
  if (!m.errors.empty()) {
    j["errors"] = json::parse(errors_json(m.errors));
  }
  if (m.type != m.content_type) {
    j["type"] = m.type;
  }
  if (j.empty()) {
    return std::nullopt;
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

struct event_outcome {
  std::string status = "processed";
  std::optional<std::string> error;
  std::set<std::string> unroutable_ids;
};

class event_processing {
 public:
  event_processing(pqxx::transaction_base& tx, std::int64_t event_id,
                   std::vector<pending_event>& events, inbox_batch_result& totals)
      : tx_(tx), event_id_(event_id), events_(events), totals_(totals) {}

  event_outcome run(std::string_view body) {
    event_outcome out;
    auto parsed = domain::parse_webhook(body);
    if (auto* err = std::get_if<domain::webhook_parse_error>(&parsed)) {
      out.status = "rejected";
      out.error = err->reason;
      return out;
    }
    const auto& delivery = std::get<domain::webhook_delivery>(parsed);
    for (const auto& change : delivery.changes) {
      if (change.messages.empty() && change.statuses.empty()) {
        continue;  // other fields (template status, quality, account) are kept in the inbox
      }
      auto site = site_for(change.phone_number_id);
      if (!site) {
        out.unroutable_ids.insert(change.phone_number_id);
        continue;
      }
      for (const auto& m : change.messages) {
        message(*site, change, m);
      }
      for (const auto& s : change.statuses) {
        status(*site, s);
      }
    }
    if (!out.unroutable_ids.empty()) {
      out.status = "unroutable";
      std::string ids;
      for (const auto& id : out.unroutable_ids) {
        ids += (ids.empty() ? "" : ", ") + id;
      }
      out.error = "no site has phone_number_id " + ids;
    } else if (!delivery.problems.empty()) {
      out.error = fmt::format("{} item(s) skipped; first: {}: {}", delivery.problems.size(),
                              delivery.problems[0].where, delivery.problems[0].reason);
    }
    return out;
  }

 private:
  std::optional<std::string> site_for(const std::string& phone_number_id) {
    if (phone_number_id.empty()) {
      return std::nullopt;
    }
    auto it = sites_.find(phone_number_id);
    if (it != sites_.end()) {
      return it->second;
    }
    auto r = tx_.exec_params(site_by_phone_sql, phone_number_id);
    std::optional<std::string> site;
    if (!r.empty()) {
      site = r[0][0].as<std::string>();
    }
    sites_[phone_number_id] = site;
    return site;
  }

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

  void message(const std::string& site, const domain::webhook_change& change,
               const domain::inbound_message& m) {
    auto name = std::string{domain::profile_name_for(change, m.from)};
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
        non_empty(m.context.id), extra_json(m), ts);
    if (ins.empty()) {
      return;  // this wamid is stored already: a redelivery
    }
    auto id = ins[0][0].as<std::int64_t>();
    tx_.exec_params(touch_conversation_sql, conversation, ts);
    ++totals_.messages;
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
      updated.push_back({{"emoji", m.reaction->emoji}, {"by", "visitor"}});
    }
    if (updated == reactions) {
      return;
    }
    auto r = tx_.exec_params(set_reactions_sql, id,
                             updated.dump(-1, ' ', false, json::error_handler_t::replace));
    events_.push_back({site, "message.updated", r[0][0].as<std::int64_t>(), id});
  }

  void status(const std::string& site, const domain::message_status& s) {
    std::optional<std::string> pricing;
    if (s.pricing) {
      pricing = json{{"billable", s.pricing->billable},
                     {"pricing_model", s.pricing->pricing_model},
                     {"category", s.pricing->category},
                     {"type", s.pricing->type}}
                    .dump();
    }
    auto ins = tx_.exec_params(
        insert_status_sql, site, pg_text(s.wamid), pg_text(s.status),
        domain::plausible_timestamp(s.timestamp, static_cast<std::int64_t>(std::time(nullptr))), non_empty(s.recipient_id),
        non_empty(s.conversation_id), s.conversation_expiration,
        non_empty(s.conversation_origin_type), pricing,
        s.errors.empty() ? std::nullopt : std::optional<std::string>{errors_json(s.errors)},
        event_id_);
    if (ins.empty()) {
      return;  // the same status, redelivered
    }
    ++totals_.statuses;
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
  inbox_batch_result& totals_;
  std::map<std::string, std::optional<std::string>> sites_;
};

std::optional<std::string> ids_json(const std::set<std::string>& ids) {
  if (ids.empty()) {
    return std::nullopt;
  }
  return json(ids).dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

inbox_batch_result inbox_processor::process_pending(std::size_t limit) {
  inbox_batch_result totals;
  std::vector<pending_event> events;
  pqxx::work tx{conn_};
  auto rows = tx.exec_params(claim_sql, static_cast<std::int64_t>(limit));
  for (const auto& row : rows) {
    auto id = row[0].as<std::int64_t>();
    pqxx::binarystring body{row[1]};
    event_outcome outcome;
    auto events_before = events.size();
    try {
      // A savepoint per row: one bad row cannot undo the rest of the batch.
      pqxx::subtransaction sub{tx, "event"};
      event_processing p{sub, id, events, totals};
      outcome = p.run(std::string_view{body.get(), body.size()});
      sub.commit();
    } catch (const pqxx::broken_connection&) {
      throw;
    } catch (const std::exception& e) {
      events.resize(events_before);
      outcome = event_outcome{};
      outcome.status = "failed";
      outcome.error = e.what();
      log_warn("inbox_event_failed", {{"event_id", std::to_string(id)}, {"error", e.what()}});
    }
    totals.unroutable += outcome.status == "unroutable" ? 1 : 0;
    totals.failed += outcome.status == "failed" ? 1 : 0;
    tx.exec_params(finish_sql, id, outcome.status, outcome.error,
                   ids_json(outcome.unroutable_ids));
    ++totals.events;
  }
  append_events(tx, events);
  tx.commit();
  return totals;
}

std::size_t inbox_processor::requeue_routable() {
  pqxx::work tx{conn_};
  auto r = tx.exec(
      "UPDATE wa_webhook_events SET status = 'pending', error = NULL WHERE status = 'unroutable'"
      " AND unroutable_phone_ids && ARRAY(SELECT whatsapp_phone_number_id"
      "   FROM mod_chat_widget_settings WHERE whatsapp_phone_number_id IS NOT NULL)");
  tx.commit();
  return r.affected_rows();
}

std::size_t inbox_processor::requeue_failed(int max_attempts) {
  pqxx::work tx{conn_};
  auto r = tx.exec_params(
      "UPDATE wa_webhook_events SET status = 'pending' WHERE status = 'failed' AND attempts < $1",
      max_attempts);
  tx.commit();
  return r.affected_rows();
}

}  // namespace wachat::infra

#include "infra/inbound_store.hpp"

#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <set>

#include "domain/status_order.hpp"
#include "domain/window.hpp"
#include "infra/chat_views.hpp"
#include "infra/inbound_values.hpp"
#include "infra/log.hpp"

namespace wachat::infra {
namespace {

using nlohmann::json;

// SQL in one place (STYLE.md): every value a parameter.
constexpr const char* find_target_sql =
    "SELECT id, reactions::text FROM mod_chat_messages WHERE site_id = $1 AND whatsapp_message_id = $2"
    " FOR UPDATE";
constexpr const char* set_reactions_sql =
    "UPDATE mod_chat_messages SET reactions = $2::jsonb WHERE id = $1 RETURNING conversation_id";
constexpr const char* insert_status_sql =
    "INSERT INTO wa_message_statuses (site_id, whatsapp_message_id, status, status_timestamp,"
    " recipient_id, conversation_meta_id, conversation_expires, conversation_origin, pricing,"
    " errors, event_id, recipient_user_id) VALUES ($1, $2, $3, to_timestamp($4), $5, $6,"
    " to_timestamp($7), $8, $9::jsonb, $10::jsonb, $11, $12) ON CONFLICT DO NOTHING RETURNING id";
constexpr const char* advance_status_sql =
    "UPDATE mod_chat_messages SET status = $3,"
    " error_code = CASE WHEN $3 = 'failed' THEN $4 ELSE error_code END,"
    " error_title = CASE WHEN $3 = 'failed' THEN $5 ELSE error_title END,"
    " error_details = CASE WHEN $3 = 'failed' THEN $6 ELSE error_details END"
    " WHERE site_id = $1 AND whatsapp_message_id = $2"
    // $7: the statuses $3 must not replace (domain::statuses_not_replaced_by), as a JSON array.
    " AND NOT (status = ANY(ARRAY(SELECT json_array_elements_text($7::json))))"
    " RETURNING id, conversation_id";
// A status naming our send (biz_opaque_callback_data = its id) whose wamid we never learned —
// Meta's answer was lost — resolves the doubt: the send takes the wamid and leaves the outbox
// (its body kept for a retry by hand), so it is not sent again. Only while it is still in the
// outbox, the wamid is nobody's, and it is not the wamid of an earlier attempt a retry replaced.
constexpr const char* adopt_send_sql =
    "WITH m AS (UPDATE mod_chat_messages SET whatsapp_message_id = $3,"
    "   status = CASE WHEN status = 'queued' THEN 'sent' ELSE status END,"
    "   sent_request = (SELECT o.request FROM wa_outbox o WHERE o.message_id = $2)"
    "  WHERE id = $2 AND site_id = $1 AND sender_type = 'agent' AND whatsapp_message_id IS NULL"
    "   AND superseded_wamid IS DISTINCT FROM $3"
    "   AND EXISTS (SELECT 1 FROM wa_outbox o WHERE o.message_id = $2)"
    "   AND NOT EXISTS (SELECT 1 FROM mod_chat_messages x WHERE x.site_id = $1 AND x.whatsapp_message_id = $3)"
    "  RETURNING id, conversation_id),"
    " gone AS (DELETE FROM wa_outbox WHERE message_id IN (SELECT id FROM m))"
    " SELECT id, conversation_id FROM m";
constexpr const char* close_window_sql =
    "UPDATE mod_chat_conversations c SET whatsapp_window_expires_at ="
    " least(c.whatsapp_window_expires_at, to_timestamp($2)), updated_at = now()"
    " WHERE c.id = (SELECT conversation_id FROM mod_chat_messages WHERE site_id = $1"
    "   AND whatsapp_message_id = $3)"
    " AND c.whatsapp_window_expires_at > to_timestamp($2)"
    " AND NOT EXISTS (SELECT 1 FROM mod_chat_messages m WHERE m.conversation_id = c.id"
    "   AND m.sender_type = 'visitor' AND m.whatsapp_timestamp > to_timestamp($2))"
    " RETURNING c.id";

// The writes of one unit, inside the caller's transaction (a savepoint of the writer's batch).
class unit_writer {
 public:
  unit_writer(pqxx::transaction_base& tx, std::int64_t event_id, bool closes_window,
              std::vector<pending_event>& events, domain::unit_outcome& outcome)
      : tx_(tx), event_id_(event_id), closes_window_(closes_window), events_(events), outcome_(outcome) {}

  void store(const std::string& site, const domain::inbound_unit& u) {
    if (u.what == domain::inbound_unit::kind::status) {
      return status(site, u.status);
    }
    if (u.what == domain::inbound_unit::kind::preference) {
      return preference(site, u.preference);
    }
    if (!u.message.reaction) {
      // Plain messages have one implementation, the set-based one (infra::store_units).
      throw std::logic_error("store_unit takes reactions and statuses only");
    }
    reaction(site, u.message);
  }

 private:
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

  // Meta says the customer stopped or resumed marketing messages; a customer we never met has
  // no visitor to mark (a later message creates one, opted in as Meta's default).
  void preference(const std::string& site, const domain::user_preference& p) {
    auto opt_out = domain::preference_opt_out(p);
    if (!opt_out) {
      return;
    }
    auto r = tx_.exec_params(
        "UPDATE mod_chat_visitors SET marketing_opt_out = $4 WHERE site_id = $1"
        " AND ((whatsapp_phone = $2 AND $2 <> '') OR (whatsapp_user_id = $3 AND $3 <> ''))"
        " AND marketing_opt_out IS DISTINCT FROM $4 RETURNING id",
        site, pg_text(p.wa_id), pg_text(p.user_id), *opt_out);
    if (!r.empty()) {
      log_info("marketing_preference", {{"site", site}, {"opt_out", *opt_out ? "true" : "false"}});
    }
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
        event_id_, non_empty(s.recipient_user_id));
    if (ins.empty()) {
      return;  // the same status, redelivered
    }
    outcome_.new_status = true;
    if (auto ours = parse_id(s.biz_opaque_callback_data)) {
      auto adopted = tx_.exec_params(adopt_send_sql, site, *ours, pg_text(s.wamid));
      if (!adopted.empty()) {
        log_info("send_adopted", {{"message_id", std::to_string(*ours)}, {"status", s.status}});
        events_.push_back({site, "message.updated", adopted[0][1].as<std::int64_t>(), *ours});
      }
    }
    std::optional<int> code;
    std::optional<std::string> title, details;
    if (!s.errors.empty()) {
      code = static_cast<int>(s.errors[0].code);
      title = non_empty(s.errors[0].title.empty() ? s.errors[0].message : s.errors[0].title);
      details = non_empty(s.errors[0].details);
    }
    const auto kept = domain::statuses_not_replaced_by(s.status);
    if (!kept.empty()) {  // an unknown status is kept in the history only
      auto upd = tx_.exec_params(advance_status_sql, site, pg_text(s.wamid), pg_text(s.status), code,
                                 title, details, pg_json(json(kept)));
      if (!upd.empty()) {
        events_.push_back({site, "message.updated", upd[0][1].as<std::int64_t>(),
                           upd[0][0].as<std::int64_t>()});
      }
    }
    if (closes_window_) {
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
  bool closes_window_;
  std::vector<pending_event>& events_;
  domain::unit_outcome& outcome_;
};

}  // namespace

domain::unit_outcome store_unit(pqxx::transaction_base& tx, const std::string& site,
                                std::int64_t event_id, const domain::inbound_unit& unit,
                                bool closes_window, std::vector<pending_event>& events) {
  domain::unit_outcome outcome;
  unit_writer{tx, event_id, closes_window, events, outcome}.store(site, unit);
  outcome.stored = true;
  return outcome;
}

}  // namespace wachat::infra

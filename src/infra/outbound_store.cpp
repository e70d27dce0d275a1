#include "infra/outbound_store.hpp"

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "domain/status_order.hpp"
#include "infra/cached_statement.hpp"
#include "infra/chat_views.hpp"
#include "infra/event_log.hpp"

namespace wachat::infra {

using nlohmann::json;

namespace {

std::string message_text(pqxx::transaction_base& tx, std::int64_t id) {
  auto m = load_message(tx, id);
  return m ? dump(*m) : std::string{};
}

std::string error_json(const domain::graph_error& e) {
  return json{{"code", e.code}, {"title", e.title}, {"details", e.details}, {"fbtrace_id", e.fbtrace_id}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

send_facts load_send_facts(pqxx::connection_base& conn, const std::string& site, std::int64_t conversation_id,
                           const std::optional<std::string>& client_message_id) {
  pqxx::nontransaction nt{conn};
  send_facts f;
  auto r = exec_cached(nt, "outbound_1", 
      "SELECT extract(epoch from c.whatsapp_window_expires_at)::bigint,"
      " (v.whatsapp_phone IS NOT NULL OR v.whatsapp_user_id IS NOT NULL), v.marketing_opt_out"
      " FROM mod_chat_conversations c JOIN mod_chat_visitors v ON v.id = c.visitor_id"
      " WHERE c.id = $1 AND c.site_id = $2",
      conversation_id, site);
  if (r.empty()) {
    return f;
  }
  f.found = true;
  f.window_expires_at = r[0][0].as<std::optional<std::int64_t>>();
  f.has_recipient = r[0][1].as<bool>();
  f.marketing_opt_out = r[0][2].as<bool>();
  if (client_message_id) {
    auto e = exec_cached(nt, "outbound_2", 
        "SELECT m.id, coalesce(m.request_fingerprint, '')"
        " FROM mod_chat_messages m WHERE m.conversation_id = $1 AND m.client_message_id = $2",
        conversation_id, *client_message_id);
    if (!e.empty()) {
      f.earlier_message_id = e[0][0].as<std::int64_t>();
      f.earlier_fingerprint = e[0][1].as<std::string>();
      f.earlier_message = message_text(nt, *f.earlier_message_id);
    }
  }
  return f;
}

send_enqueued enqueue_send(pqxx::connection_base& conn, const std::string& site, std::int64_t conversation_id,
                           const domain::outbound_request& request) {
  pqxx::work w{conn};
  send_enqueued out;
  // The conversation's row lock (taken by this UPDATE, first) orders its sends across
  // processes: ids commit in the order they are handed out, so "no earlier entry" in
  // begin_attempt sees every earlier send.
  if (exec_cached(w, "outbound_3",
                  "UPDATE mod_chat_conversations SET last_message_at = greatest(last_message_at, now()),"
                  " updated_at = now() WHERE id = $1 AND site_id = $2 RETURNING 1",
                  conversation_id, site)
          .empty()) {
    out.what = send_enqueued::kind::not_found;
    return out;
  }
  std::optional<std::int64_t> reply_id;
  std::optional<std::string> reply_wamid;
  if (request.reply_to) {
    auto r = exec_cached(w, "outbound_4", 
        "SELECT id, whatsapp_message_id FROM mod_chat_messages WHERE conversation_id = $1"
        " AND whatsapp_message_id IS NOT NULL AND (id::text = $2 OR whatsapp_message_id = $2) LIMIT 1",
        conversation_id, *request.reply_to);
    if (r.empty()) {
      out.what = send_enqueued::kind::unknown_reply;
      return out;
    }
    reply_id = r[0][0].as<std::int64_t>();
    reply_wamid = r[0][1].as<std::string>();
  }
  const bool media = request.kind == domain::outbound_kind::image || request.kind == domain::outbound_kind::document;
  // Meta's body without a recipient (begin_attempt adds the visitor's at each attempt); the
  // statement puts the new message's id in as biz_opaque_callback_data.
  auto body = domain::graph_send_body(request, domain::recipient{}, 0, reply_wamid);
  // An uploaded file is shown to agents as the stored file it is (signed at each read).
  const bool upload = media && request.upload.has_value();
  std::optional<std::string> file_url;
  if (upload) {
    file_url = "/media/" + request.media_id;
  } else if (media) {
    file_url = request.url;
  }
  std::optional<std::string> file_name;
  if (!request.filename.empty()) {
    file_name = request.filename;
  } else if (upload) {
    file_name = request.upload->file_name;
  }
  // The message and its outbox entry in one statement.
  auto ins = exec_cached(w, "outbound_5",
      "WITH m AS (INSERT INTO mod_chat_messages (conversation_id, site_id, sender_type, sender_id, sender_name,"
      "   content, content_type, file_url, file_name, status, reply_to, reply_to_wamid, client_message_id,"
      "   request_fingerprint, created_at, media_key, media_status, file_size, file_mime_type)"
      "  VALUES ($1, $2, 'agent', $3, $4, $5, $6, $7, $8, 'queued', $9, $10, $11, $12, clock_timestamp(),"
      "   $14, $15, $16, $17)"
      "  ON CONFLICT (conversation_id, client_message_id) WHERE client_message_id IS NOT NULL DO NOTHING"
      "  RETURNING id),"
      " o AS (INSERT INTO wa_outbox (message_id, site_id, conversation_id, request)"
      "  SELECT m.id, $2, $1, jsonb_set($13::jsonb, '{biz_opaque_callback_data}', to_jsonb(m.id::text)) FROM m)"
      " SELECT id FROM m",
      conversation_id, site, request.sender_id, request.sender_name, domain::stored_content(request),
      domain::stored_content_type(request), file_url, file_name, reply_id, reply_wamid,
      request.client_message_id, request.fingerprint, body.dump(-1, ' ', false, json::error_handler_t::replace),
      upload ? std::optional<std::string>{request.media_id} : std::nullopt, upload ? "stored" : "none",
      upload ? std::optional<std::int64_t>{request.upload->size} : std::nullopt,
      upload ? std::optional<std::string>{request.upload->mime_type} : std::nullopt);
  if (ins.empty()) {
    // Another request with this client_message_id committed first (we waited on its lock).
    auto e = exec_cached(w, "outbound_6", 
        "SELECT m.id, coalesce(m.request_fingerprint, '')"
        " FROM mod_chat_messages m WHERE m.conversation_id = $1 AND m.client_message_id = $2",
        conversation_id, request.client_message_id);
    out.what = send_enqueued::kind::duplicate;
    out.message_id = e[0][0].as<std::int64_t>();
    out.fingerprint = e[0][1].as<std::string>();
    out.message = message_text(w, out.message_id);
    return out;  // not committed: a replay does not move the conversation's last activity
  }
  out.message_id = ins[0][0].as<std::int64_t>();
  out.message = message_text(w, out.message_id);
  append_event(w, site, "message.created", conversation_id, out.message_id);
  w.commit();
  return out;
}

send_attempt begin_attempt(pqxx::connection_base& conn, std::int64_t message_id) {
  // One statement, so autocommit: the claim is committed (durably) before Meta is called,
  // without BEGIN and COMMIT round trips.
  pqxx::nontransaction w{conn};
  send_attempt a;
  auto r = exec_cached(w, "outbound_9", 
      "WITH claimed AS (UPDATE wa_outbox o SET state = 'sending', attempts = o.attempts + 1,"
      "   attempt_at = now()"
      "  WHERE o.message_id = $1 AND o.state = 'ready'"
      "   AND o.next_attempt_at <= now() + interval '100 milliseconds'"
      "   AND NOT EXISTS (SELECT 1 FROM wa_outbox e WHERE e.conversation_id = o.conversation_id"
      "                   AND e.message_id < o.message_id AND e.state <> 'failed')"
      "  RETURNING o.request::text, o.attempts, o.conversation_id)"
      " SELECT claimed.*, v.whatsapp_phone, v.whatsapp_user_id FROM claimed"
      " JOIN mod_chat_conversations c ON c.id = claimed.conversation_id"
      " JOIN mod_chat_visitors v ON v.id = c.visitor_id",
      message_id);
  if (r.empty()) {
    return a;
  }
  a.claimed = true;
  a.attempt = r[0][1].as<int>();
  a.conversation_id = r[0][2].as<std::int64_t>();
  auto body = json::parse(r[0][0].c_str());
  auto phone = r[0][3].as<std::optional<std::string>>();
  auto user_id = r[0][4].as<std::optional<std::string>>();
  if (phone) {
    body["to"] = *phone;
  } else if (user_id) {
    body["recipient"] = *user_id;
  } else {
    a.no_recipient = true;
  }
  a.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return a;
}

std::string record_sent(pqxx::connection_base& conn, std::int64_t message_id, const std::string& wamid) {
  pqxx::work w{conn};
  // One statement: the wamid and `sent` (a status webhook may have been faster than Meta's
  // answer and adopted the wamid: a status it moved on is kept), the entry gone (its body kept on
  // the message for a retry by hand), and the statuses Meta reported for it before its answer
  // reached us.
  auto r = exec_cached(w, "outbound_sent",
      "WITH gone AS (DELETE FROM wa_outbox WHERE message_id = $1 RETURNING request),"
      " m AS (UPDATE mod_chat_messages SET whatsapp_message_id = $2,"
      "   status = CASE WHEN status = 'queued' THEN 'sent' ELSE status END, error_code = NULL,"
      "   error_title = NULL, error_details = NULL, error_retryable = NULL,"
      "   sent_request = coalesce((SELECT request FROM gone), sent_request) WHERE id = $1"
      "   RETURNING site_id, conversation_id)"
      " SELECT m.site_id, m.conversation_id, coalesce((SELECT json_agg(s.status)::text FROM wa_message_statuses s"
      "   WHERE s.site_id = m.site_id AND s.whatsapp_message_id = $2), '[]') FROM m",
      message_id, wamid);
  if (r.empty()) {
    w.commit();
    return {};
  }
  auto site = r[0][0].as<std::string>();
  auto conversation = r[0][1].as<std::int64_t>();
  // The message takes the highest of the statuses already reported (domain::status_rank).
  std::string best = "sent";
  auto reported = json::parse(r[0][2].c_str(), nullptr, false);
  if (reported.is_array()) {
    for (const auto& status : reported) {
      if (status.is_string() && domain::status_may_advance(best, status.get<std::string>())) {
        best = status.get<std::string>();
      }
    }
  }
  if (best != "sent") {
    exec_cached(w, "outbound_sent_status", "UPDATE mod_chat_messages SET status = $2 WHERE id = $1", message_id, best);
  }
  auto text = message_text(w, message_id);
  append_event(w, site, "message.updated", conversation, message_id);
  w.commit();
  return text;
}

std::string record_failed(pqxx::connection_base& conn, std::int64_t message_id, const domain::graph_error& error,
                          bool retryable, std::optional<std::int64_t> window_closed_at) {
  pqxx::work w{conn};
  auto r = exec_cached(w, "outbound_14", 
      "UPDATE mod_chat_messages SET status = 'failed', error_code = $2, error_title = $3, error_details = $4,"
      " error_retryable = $5 WHERE id = $1 RETURNING site_id, conversation_id",
      message_id, error.code, error.title, error.details, retryable);
  // Kept for a retry by hand (its request body), out of everyone's way.
  exec_cached(w, "outbound_15", "UPDATE wa_outbox SET state = 'failed', last_error = $2::jsonb WHERE message_id = $1", message_id,
                error_json(error));
  if (r.empty()) {
    w.commit();
    return {};
  }
  auto text = message_text(w, message_id);
  const auto site = r[0][0].as<std::string>();
  const auto conversation = r[0][1].as<std::int64_t>();
  append_event(w, site, "message.updated", conversation, message_id);
  if (window_closed_at) {
    // The cross-process guard, as for a 131047 status: never later than it was, and not over a
    // customer message written after Meta's refusal.
    auto closed = exec_cached(w, "outbound_close_window",
        "UPDATE mod_chat_conversations c SET whatsapp_window_expires_at = to_timestamp($2), updated_at = now()"
        " WHERE c.id = $1 AND c.whatsapp_window_expires_at > to_timestamp($2)"
        " AND NOT EXISTS (SELECT 1 FROM mod_chat_messages m WHERE m.conversation_id = c.id"
        "   AND m.sender_type = 'visitor' AND m.whatsapp_timestamp > to_timestamp($2))"
        " RETURNING c.id",
        conversation, *window_closed_at);
    if (!closed.empty()) {
      append_event(w, site, "conversation.updated", conversation, std::nullopt);
    }
  }
  w.commit();
  return text;
}

void record_retry(pqxx::connection_base& conn, std::int64_t message_id, std::int64_t delay_ms,
                  const domain::graph_error& error) {
  pqxx::work w{conn};
  exec_cached(w, "outbound_16", 
      "UPDATE wa_outbox SET state = 'ready', next_attempt_at = now() + $2 * interval '1 millisecond',"
      " last_error = $3::jsonb WHERE message_id = $1",
      message_id, delay_ms, error_json(error));
  w.commit();
}

std::string load_message_text(pqxx::connection_base& conn, std::int64_t message_id) {
  pqxx::nontransaction nt{conn};
  return message_text(nt, message_id);
}

void set_marketing_opt_out(pqxx::connection_base& conn, const std::string& site, const std::string& key, bool opt_out) {
  pqxx::work w{conn};
  exec_cached(w, "outbound_17", 
      "UPDATE mod_chat_visitors SET marketing_opt_out = $3 WHERE site_id = $1"
      " AND (whatsapp_phone = $2 OR whatsapp_user_id = $2) AND marketing_opt_out IS DISTINCT FROM $3",
      site, key, opt_out);
  w.commit();
}

std::optional<reaction_target> find_reaction_target(pqxx::connection_base& conn, std::int64_t conversation_id,
                                                    const std::string& ref) {
  pqxx::nontransaction nt{conn};
  auto r = exec_cached(nt, "outbound_18", 
      "SELECT m.id, m.whatsapp_message_id, v.whatsapp_phone, v.whatsapp_user_id FROM mod_chat_messages m"
      " JOIN mod_chat_conversations c ON c.id = m.conversation_id JOIN mod_chat_visitors v ON v.id = c.visitor_id"
      " WHERE m.conversation_id = $1 AND m.whatsapp_message_id IS NOT NULL"
      " AND (m.id::text = $2 OR m.whatsapp_message_id = $2) LIMIT 1",
      conversation_id, ref);
  if (r.empty()) {
    return std::nullopt;
  }
  reaction_target t;
  t.message_id = r[0][0].as<std::int64_t>();
  t.wamid = r[0][1].as<std::string>();
  t.to.phone = r[0][2].as<std::optional<std::string>>();
  t.to.user_id = r[0][3].as<std::optional<std::string>>();
  return t;
}

std::string set_agent_reaction(pqxx::connection_base& conn, std::int64_t message_id, const std::string& emoji) {
  pqxx::work w{conn};
  auto r = exec_cached(w, "outbound_19", "SELECT reactions::text, site_id, conversation_id FROM mod_chat_messages WHERE id = $1 FOR UPDATE",
                         message_id);
  if (r.empty()) {
    return {};
  }
  json reactions = json::parse(r[0][0].c_str(), nullptr, false);
  json updated = json::array();
  if (reactions.is_array()) {
    for (const auto& x : reactions) {
      if (x.value("by", "") != "agent") {
        updated.push_back(x);
      }
    }
  }
  if (!emoji.empty()) {
    updated.push_back({{"emoji", emoji}, {"by", "agent"}});
  }
  exec_cached(w, "outbound_20", "UPDATE mod_chat_messages SET reactions = $2::jsonb WHERE id = $1", message_id,
                updated.dump(-1, ' ', false, json::error_handler_t::replace));
  auto text = message_text(w, message_id);
  append_event(w, r[0][1].as<std::string>(), "message.updated", r[0][2].as<std::int64_t>(), message_id);
  w.commit();
  return text;
}

resend_facts load_resend_facts(pqxx::connection_base& conn, const std::string& site, std::int64_t conversation_id,
                                std::int64_t message_id) {
  pqxx::nontransaction nt{conn};
  resend_facts f;
  auto r = exec_cached(nt, "outbound_21", 
      "SELECT extract(epoch from c.whatsapp_window_expires_at)::bigint,"
      " (v.whatsapp_phone IS NOT NULL OR v.whatsapp_user_id IS NOT NULL), m.id IS NOT NULL,"
      // Failed at the send (its entry kept) or reported failed by Meta afterwards (its body kept).
      " coalesce(m.status = 'failed' AND m.sender_type = 'agent'"
      "   AND (o.state = 'failed' OR (o.message_id IS NULL AND m.sent_request IS NOT NULL)), false),"
      " coalesce(coalesce(o.request, m.sent_request)->>'type' = 'template', false)"
      " FROM mod_chat_conversations c JOIN mod_chat_visitors v ON v.id = c.visitor_id"
      " LEFT JOIN mod_chat_messages m ON m.id = $3 AND m.conversation_id = c.id"
      " LEFT JOIN wa_outbox o ON o.message_id = m.id"
      " WHERE c.id = $1 AND c.site_id = $2",
      conversation_id, site, message_id);
  if (r.empty() || !r[0][2].as<bool>()) {
    return f;  // no such conversation, or no such message in it
  }
  f.found = true;
  f.window_expires_at = r[0][0].as<std::optional<std::int64_t>>();
  f.has_recipient = r[0][1].as<bool>();
  f.failed_send = r[0][3].as<bool>();
  f.is_template = r[0][4].as<bool>();
  f.message = message_text(nt, message_id);
  return f;
}

std::optional<std::string> requeue_failed(pqxx::connection_base& conn, std::int64_t message_id) {
  pqxx::work w{conn};
  // A message Meta reported failed after taking it has no entry any more: it gets one again,
  // from the body Meta took.
  exec_cached(w, "outbound_22a",
      "INSERT INTO wa_outbox (message_id, site_id, conversation_id, request, state)"
      " SELECT id, site_id, conversation_id, sent_request, 'failed' FROM mod_chat_messages"
      " WHERE id = $1 AND status = 'failed' AND sender_type = 'agent' AND sent_request IS NOT NULL"
      " ON CONFLICT (message_id) DO NOTHING",
      message_id);
  auto r = exec_cached(w, "outbound_22", 
      "UPDATE wa_outbox SET state = 'ready', attempts = 0, next_attempt_at = now(), attempt_at = NULL,"
      " last_error = NULL WHERE message_id = $1 AND state = 'failed' RETURNING site_id, conversation_id",
      message_id);
  if (r.empty()) {
    return std::nullopt;  // retried or removed meanwhile
  }
  exec_cached(w, "outbound_23", 
      "UPDATE mod_chat_messages SET status = 'queued', error_code = NULL, error_title = NULL,"
      " error_details = NULL, error_retryable = NULL,"
      " superseded_wamid = coalesce(whatsapp_message_id, superseded_wamid), whatsapp_message_id = NULL"
      " WHERE id = $1",
      message_id);
  auto text = message_text(w, message_id);
  append_event(w, r[0][0].as<std::string>(), "message.updated", r[0][1].as<std::int64_t>(), message_id);
  w.commit();
  return text;
}

std::vector<resumable_send> sweep_outbox(pqxx::connection_base& conn, std::int64_t doubt_ms, int limit) {
  pqxx::work w{conn};
  exec_cached(w, "outbound_24", 
      "UPDATE wa_outbox SET state = 'ready', next_attempt_at = now()"
      " WHERE state = 'sending' AND attempt_at < now() - $1 * interval '1 millisecond'",
      doubt_ms);
  // Overdue by a few seconds: a live actor would have taken it up by then. Only the first entry
  // of each conversation: the others follow it in order.
  auto rows = exec_cached(w, "outbound_25", 
      "SELECT o.message_id, o.site_id, coalesce(v.whatsapp_phone, v.whatsapp_user_id, 'conversation:' || c.id)"
      " FROM wa_outbox o JOIN mod_chat_conversations c ON c.id = o.conversation_id"
      " JOIN mod_chat_visitors v ON v.id = c.visitor_id"
      " WHERE o.state = 'ready' AND o.next_attempt_at < now() - interval '3 seconds'"
      "  AND NOT EXISTS (SELECT 1 FROM wa_outbox e WHERE e.conversation_id = o.conversation_id"
      "                  AND e.message_id < o.message_id AND e.state <> 'failed')"
      " ORDER BY o.next_attempt_at LIMIT $1",
      limit);
  w.commit();
  std::vector<resumable_send> out;
  for (const auto& r : rows) {
    out.push_back({r[0].as<std::int64_t>(), r[1].as<std::string>(), r[2].as<std::string>()});
  }
  return out;
}

}  // namespace wachat::infra

#include "infra/outbound_store.hpp"

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <set>
#include <stdexcept>

#include "domain/status_order.hpp"
#include "infra/cached_statement.hpp"
#include "infra/chat_views.hpp"
#include "infra/event_log.hpp"
#include "infra/inbound_values.hpp"
#include "infra/pg_columns.hpp"

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

// Meta's body for one attempt: the entry's stored request with the visitor's recipient now
// (the phone, else the BSUID; neither: no_recipient).
void fill_attempt_body(send_attempt& a, const char* request, std::optional<std::string> phone,
                       std::optional<std::string> user_id) {
  auto body = json::parse(request);
  if (phone) {
    body["to"] = *phone;
  } else if (user_id) {
    body["recipient"] = *user_id;
  } else {
    a.no_recipient = true;
  }
  a.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

std::vector<send_facts> load_send_facts(pqxx::connection_base& conn, const std::vector<facts_item>& items) {
  std::vector<send_facts> out(items.size());
  if (items.empty()) {
    return out;
  }
  pg_columns rows(4);
  for (std::size_t i = 0; i < items.size(); ++i) {
    rows.add(items[i].conversation_id, i, items[i].site, nullable(items[i].client_message_id));
  }
  // One round trip for the batch: each conversation's facts and the earlier send with the
  // request's client_message_id (none when it has none), rendered as the API's message. Each
  // object is a primary-key or unique-index probe (LATERAL ... LIMIT 1).
  static const std::string sql =
      "SELECT i.n::integer, extract(epoch from c.whatsapp_window_expires_at)::bigint,"
      " (v.whatsapp_phone IS NOT NULL OR v.whatsapp_user_id IS NOT NULL), v.marketing_opt_out, e.*"
      " FROM " + rows_from(1, 4) + " AS i(conversation_id, n, site, client_message_id)"
      " CROSS JOIN LATERAL (SELECT x.id, x.visitor_id, x.whatsapp_window_expires_at FROM mod_chat_conversations x"
      "   WHERE x.id = i.conversation_id::bigint AND x.site_id = i.site LIMIT 1) c"
      " CROSS JOIN LATERAL (SELECT y.whatsapp_phone, y.whatsapp_user_id, y.marketing_opt_out FROM mod_chat_visitors y"
      "   WHERE y.id = c.visitor_id LIMIT 1) v"
      " LEFT JOIN LATERAL (" + message_columns + ", coalesce(m.request_fingerprint, '')"
      "   FROM mod_chat_messages m WHERE m.conversation_id = c.id AND m.client_message_id = i.client_message_id"
      "   LIMIT 1) e ON true";
  pqxx::nontransaction nt{conn};
  auto r = exec_columns(nt, "outbound_facts_batch", sql, {&rows});
  for (const auto& row : r) {
    auto& f = out[row[0].as<std::size_t>()];
    f.found = true;
    f.window_expires_at = row[1].as<std::optional<std::int64_t>>();
    f.has_recipient = row[2].as<bool>();
    f.marketing_opt_out = row[3].as<bool>();
    auto earlier = row.slice(4, 4 + message_column_count);
    if (!earlier[0].is_null()) {
      f.earlier_message_id = earlier[0].as<std::int64_t>();
      f.earlier_fingerprint = row[4 + message_column_count].as<std::string>();
      f.earlier_message = dump(message_json(earlier));
    }
  }
  return out;
}

namespace {

// Runs one autocommit batch statement again when PostgreSQL broke a deadlock by rolling it
// back (nothing of it was written, so running it again is safe): a batch locks several rows,
// and other writers lock theirs in another order. Anything else is the caller's failure.
template <class F>
pqxx::result retry_deadlocked(F run) {
  for (int attempt = 1;; ++attempt) {
    try {
      return run();
    } catch (const pqxx::deadlock_detected&) {
      if (attempt == 3) {
        throw;
      }
    }
  }
}

}  // namespace

std::vector<send_enqueued> enqueue_sends(pqxx::connection_base& conn, const std::vector<enqueue_item>& items) {
  std::vector<send_enqueued> out(items.size());
  // One row per send, column by column; the first column, the conversations, is what is locked.
  pg_columns rows(24);
  std::set<std::int64_t> seen;
  pqxx::nontransaction nt{conn};
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto& request = *items[i].request;
    const auto conversation_id = items[i].conversation_id;
    const auto& site = items[i].site;
    if (!seen.insert(conversation_id).second) {
      // Two in one statement could not be told apart in its answer; the caller splits them.
      throw std::logic_error("enqueue_sends: a conversation twice in one batch");
    }
    std::optional<std::int64_t> reply_id;
    std::optional<std::string> reply_wamid;
    if (request.reply_to) {
      // Read first: a message's id and wamid never change once Meta gave one.
      auto r = exec_cached(nt, "outbound_reply",
          "SELECT id, whatsapp_message_id FROM mod_chat_messages WHERE conversation_id = $1 AND site_id = $3"
          " AND whatsapp_message_id IS NOT NULL AND (id::text = $2 OR whatsapp_message_id = $2) LIMIT 1",
          conversation_id, *request.reply_to, site);
      if (r.empty()) {
        out[i].what = send_enqueued::kind::unknown_reply;
        continue;
      }
      reply_id = r[0][0].as<std::int64_t>();
      reply_wamid = r[0][1].as<std::string>();
    }
    const bool media =
        request.kind == domain::outbound_kind::image || request.kind == domain::outbound_kind::document;
    // Meta's body without a recipient (begin_attempts adds the visitor's at each attempt); the
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
    rows.add(conversation_id, i, request.sender_id, request.sender_name, domain::stored_content(request),
             domain::stored_content_type(request), nullable(file_url), nullable(file_name), nullable(reply_id),
             nullable(reply_wamid), nullable(request.client_message_id), request.fingerprint, std::move(body),
             upload ? json(request.media_id) : json(nullptr), upload ? "stored" : "none",
             upload ? json(request.upload->size) : json(nullptr),
             upload ? json(request.upload->mime_type) : json(nullptr), items[i].claim_after_us.has_value(),
             items[i].claim_after_us.value_or(0), items[i].decided_on.has_value(),
             items[i].decided_on ? nullable(items[i].decided_on->window_expires_at) : json(nullptr),
             items[i].decided_on && items[i].decided_on->has_recipient,
             items[i].decided_on && items[i].decided_on->marketing_opt_out, site);
  }
  if (rows.empty()) {
    return out;
  }
  // Autocommit: the batch's one write is a single statement, so the sites' event locks it takes
  // are held inside the server only, never across a round trip to us. The conversations' row
  // locks (taken first, in id order, so that two batches never wait on each other in a cycle)
  // order each conversation's sends across processes: message ids commit in the order they are
  // handed out, so "no earlier entry" in begin_attempts sees every earlier send. Then the
  // messages, their outbox entries, the conversations' last activity and message.created under
  // each site's event lock (taken in key order, before any event id is drawn). A
  // client_message_id another request stored first inserts nothing and so moves nothing. One
  // statement serves every site of the batch: a busy deployment's sends span several numbers.
  // An entry to claim (enqueue_item::claim_after_us) is `sending` at once, its first attempt,
  // when its conversation has no other entry and its row is the version this statement's
  // snapshot sees: the locked row (FOR NO KEY UPDATE reads the newest version, after waiting)
  // and the snapshot's have the same xmin. Otherwise a send of another process queued after the
  // snapshot, and so invisible to NOT EXISTS, could be overtaken; that entry stays `ready`.
  static const std::string sql =
      "WITH input AS (SELECT t.conversation_id::bigint AS conversation_id, t.n::integer AS n, t.sender_id,"
      "   t.sender_name, t.content, t.content_type, t.file_url, t.file_name, t.reply_to::bigint AS reply_to,"
      "   t.reply_to_wamid, t.client_message_id, t.request_fingerprint, t.request::jsonb AS request, t.media_key,"
      "   t.media_status, t.file_size::bigint AS file_size, t.file_mime_type, t.claim::boolean AS claim,"
      "   t.claim_after_us::bigint AS claim_after_us, t.checked::boolean AS checked,"
      "   t.window_end::bigint AS window_end, t.has_recipient::boolean AS has_recipient,"
      "   t.opt_out::boolean AS opt_out, t.site"
      "  FROM " + rows_from(1, 24) + " AS t(conversation_id, n, sender_id, sender_name, content, content_type,"
      "   file_url, file_name, reply_to, reply_to_wamid, client_message_id, request_fingerprint, request,"
      "   media_key, media_status, file_size, file_mime_type, claim, claim_after_us, checked, window_end,"
      "   has_recipient, opt_out, site)),"
      // By the primary key alone: the sites' own index is no way in (it walked every version of
      // a site's conversations). A conversation of another site than the send's is locked but
      // not found (the join below).
      // NO KEY UPDATE, as the UPDATE below takes: other inserts' foreign-key checks go on.
      " locked_conv AS (SELECT id, site_id, visitor_id, xmin AS locked_version,"
      "   extract(epoch from whatsapp_window_expires_at)::bigint AS window_end FROM mod_chat_conversations"
      "  WHERE id = ANY(" + first_column_ids() + ") ORDER BY id FOR NO KEY UPDATE),"
      " conv AS (SELECT c.* FROM locked_conv c JOIN input i ON i.conversation_id = c.id AND i.site = c.site_id),"
      // The sends whose facts still hold (all but those decided on kept facts that changed).
      " ok AS (SELECT conv.id FROM conv JOIN input i ON i.conversation_id = conv.id"
      "  JOIN mod_chat_visitors v ON v.id = conv.visitor_id"
      "  WHERE NOT i.checked OR (conv.window_end IS NOT DISTINCT FROM i.window_end"
      "   AND (v.whatsapp_phone IS NOT NULL OR v.whatsapp_user_id IS NOT NULL) = i.has_recipient"
      "   AND v.marketing_opt_out = i.opt_out)),"
      " m AS (INSERT INTO mod_chat_messages (conversation_id, site_id, sender_type, sender_id, sender_name,"
      "   content, content_type, file_url, file_name, status, reply_to, reply_to_wamid, client_message_id,"
      "   request_fingerprint, created_at, media_key, media_status, file_size, file_mime_type)"
      "  SELECT i.conversation_id, i.site, 'agent', i.sender_id, i.sender_name, i.content, i.content_type,"
      "   i.file_url, i.file_name, 'queued', i.reply_to, i.reply_to_wamid, i.client_message_id,"
      "   i.request_fingerprint, clock_timestamp(), i.media_key, i.media_status, i.file_size, i.file_mime_type"
      "  FROM input i JOIN ok ON ok.id = i.conversation_id ORDER BY i.n"
      "  ON CONFLICT (conversation_id, client_message_id) WHERE client_message_id IS NOT NULL DO NOTHING"
      "  RETURNING *),"
      " o AS (INSERT INTO wa_outbox (message_id, site_id, conversation_id, request, state, attempts, attempt_at)"
      "  SELECT m.id, m.site_id, m.conversation_id,"
      "   jsonb_set(i.request, '{biz_opaque_callback_data}', to_jsonb(m.id::text)),"
      "   CASE WHEN k.claim THEN 'sending' ELSE 'ready' END, CASE WHEN k.claim THEN 1 ELSE 0 END,"
      "   CASE WHEN k.claim THEN now() + i.claim_after_us * interval '1 microsecond' END"
      "  FROM m JOIN input i ON i.conversation_id = m.conversation_id"
      "  JOIN conv ON conv.id = m.conversation_id"
      "  CROSS JOIN LATERAL (SELECT i.claim"
      "   AND conv.locked_version = (SELECT s.xmin FROM mod_chat_conversations s WHERE s.id = conv.id)"
      "   AND NOT EXISTS (SELECT 1 FROM wa_outbox e WHERE e.conversation_id = m.conversation_id"
      "                   AND e.state <> 'failed') AS claim) k"
      "  RETURNING conversation_id, state = 'sending' AS claimed, request::text AS request),"
      " touched AS (UPDATE mod_chat_conversations c SET last_message_at = greatest(c.last_message_at, now()),"
      "  updated_at = now() FROM m WHERE c.id = m.conversation_id AND c.id = ANY(" + first_column_ids() + ")),"
      // Each site's event lock, in the order of the locks' keys (two sites may share one), after
      // every message row is written.
      " locked AS MATERIALIZED (SELECT pg_advisory_xact_lock(s.k) AS l"
      "  FROM (SELECT DISTINCT " + events_lock_key_for("site_id") + " AS k FROM m ORDER BY 1) s),"
      " ev AS (INSERT INTO wa_events (site_id, type, conversation_id, message_id)"
      "  SELECT m.site_id, 'message.created', m.conversation_id, m.id FROM m"
      "  WHERE (SELECT count(*) FROM locked) > 0 ORDER BY m.id RETURNING site_id)"
      " SELECT i.n, conv.id IS NOT NULL, ok.id IS NOT NULL, coalesce(o.claimed, false), o.request,"
      "  v.whatsapp_phone, v.whatsapp_user_id, x.*,"
      "  (SELECT count(*) FROM (SELECT pg_notify($25, e.site_id) FROM (SELECT DISTINCT site_id FROM ev) e) n)"
      " FROM input i LEFT JOIN conv ON conv.id = i.conversation_id"
      " LEFT JOIN ok ON ok.id = i.conversation_id"
      " LEFT JOIN o ON o.conversation_id = i.conversation_id"
      " LEFT JOIN mod_chat_visitors v ON o.claimed AND v.id = conv.visitor_id"
      " LEFT JOIN LATERAL (" + message_columns + " FROM m WHERE m.conversation_id = i.conversation_id) x ON true";
  auto r = retry_deadlocked([&] {
    return exec_columns(nt, "outbound_enqueue_batch", sql, {&rows}, {events_channel});
  });
  for (const auto& row : r) {
    const auto n = row[0].as<std::size_t>();
    auto& e = out[n];
    auto message = row.slice(7, 7 + message_column_count);
    if (!message[0].is_null()) {
      e.message_id = message[0].as<std::int64_t>();
      e.message = dump(message_json(message));
      if (row[3].as<bool>()) {
        e.claim.claimed = true;
        e.claim.attempt = 1;
        e.claim.conversation_id = items[n].conversation_id;
        e.claim.site_id = items[n].site;
        fill_attempt_body(e.claim, row[4].c_str(), row[5].as<std::optional<std::string>>(),
                          row[6].as<std::optional<std::string>>());
      }
      continue;
    }
    if (!row[1].as<bool>()) {
      e.what = send_enqueued::kind::not_found;
      continue;
    }
    if (!row[2].as<bool>()) {
      e.what = send_enqueued::kind::stale;
      continue;
    }
    // Another request with this client_message_id committed first (we waited on its lock).
    const auto& request = *items[row[0].as<std::size_t>()].request;
    auto earlier = exec_cached(nt, "outbound_6",
        "SELECT m.id, coalesce(m.request_fingerprint, '')"
        " FROM mod_chat_messages m WHERE m.conversation_id = $1 AND m.client_message_id = $2",
        items[row[0].as<std::size_t>()].conversation_id, request.client_message_id);
    e.what = send_enqueued::kind::duplicate;
    e.message_id = earlier[0][0].as<std::int64_t>();
    e.fingerprint = earlier[0][1].as<std::string>();
    e.message = message_text(nt, e.message_id);
  }
  return out;
}

void release_claims(pqxx::connection_base& conn, const std::vector<held_claim>& claims) {
  if (claims.empty()) {
    return;
  }
  pg_columns rows(2);
  for (const auto& c : claims) {
    rows.add(c.message_id, c.attempt);
  }
  pqxx::nontransaction w{conn};
  // next_attempt_at now: not overdue for the sweep, which would hand it to another process.
  exec_columns(w, "outbound_release",
               "UPDATE wa_outbox o SET state = 'ready', attempts = o.attempts - 1, attempt_at = NULL,"
               " next_attempt_at = now()"
               " FROM " + rows_from(1, 2) + " AS t(id, attempt)"
               " WHERE o.message_id = ANY(" + first_column_ids() + ") AND o.message_id = t.id::bigint"
               " AND o.state = 'sending' AND o.attempts = t.attempt::integer",
               {&rows});
}

std::vector<std::int64_t> renew_claims(pqxx::connection_base& conn, const std::vector<held_claim>& claims) {
  std::vector<std::int64_t> held;
  if (claims.empty()) {
    return held;
  }
  pg_columns rows(2);
  for (const auto& c : claims) {
    rows.add(c.message_id, c.attempt);
  }
  pqxx::nontransaction w{conn};
  auto r = exec_columns(w, "outbound_renew",
                        "UPDATE wa_outbox o SET attempt_at = now()"
                        " FROM " + rows_from(1, 2) + " AS t(id, attempt)"
                        " WHERE o.message_id = ANY(" + first_column_ids() + ") AND o.message_id = t.id::bigint"
                        " AND o.state = 'sending' AND o.attempts = t.attempt::integer"
                        " RETURNING o.message_id",
                        {&rows});
  for (const auto& row : r) {
    held.push_back(row[0].as<std::int64_t>());
  }
  return held;
}

std::vector<send_attempt> begin_attempts(pqxx::connection_base& conn, const std::vector<std::int64_t>& message_ids) {
  // One statement, so autocommit: the claims are committed (durably) before Meta is called,
  // without BEGIN and COMMIT round trips, and a batch costs one round trip.
  pqxx::nontransaction w{conn};
  std::vector<send_attempt> out(message_ids.size());
  pg_columns ids(1);
  for (auto id : message_ids) {
    ids.add(id);
  }
  static const std::string sql =
      "WITH input AS (SELECT DISTINCT t.id::bigint AS id FROM " + rows_from(1, 1) + " AS t(id)),"
      " claimed AS (UPDATE wa_outbox o SET state = 'sending', attempts = o.attempts + 1, attempt_at = now()"
      "  FROM input i WHERE o.message_id = i.id AND o.message_id = ANY(" + first_column_ids() + ")"
      "   AND o.state = 'ready'"
      "   AND o.next_attempt_at <= now() + interval '100 milliseconds'"
      "   AND NOT EXISTS (SELECT 1 FROM wa_outbox e WHERE e.conversation_id = o.conversation_id"
      "                   AND e.message_id < o.message_id AND e.state <> 'failed')"
      "  RETURNING o.message_id, o.request::text, o.attempts, o.conversation_id, o.site_id)"
      " SELECT claimed.*, v.whatsapp_phone, v.whatsapp_user_id FROM claimed"
      " JOIN mod_chat_conversations c ON c.id = claimed.conversation_id"
      " JOIN mod_chat_visitors v ON v.id = c.visitor_id";
  auto r = exec_columns(w, "outbound_claim", sql, {&ids});
  for (const auto& row : r) {
    const auto id = row[0].as<std::int64_t>();
    for (std::size_t i = 0; i < message_ids.size(); ++i) {
      // One claim is one attempt: an id asked for twice is claimed for its first asker only.
      if (message_ids[i] != id || out[i].claimed) {
        continue;
      }
      auto& a = out[i];
      a.claimed = true;
      a.attempt = row[2].as<int>();
      a.conversation_id = row[3].as<std::int64_t>();
      a.site_id = row[4].as<std::string>();
      fill_attempt_body(a, row[1].c_str(), row[5].as<std::optional<std::string>>(),
                        row[6].as<std::optional<std::string>>());
      break;
    }
  }
  return out;
}

std::vector<std::string> record_sent(pqxx::connection_base& conn, const std::vector<sent_record>& sent) {
  std::vector<std::string> out(sent.size());
  if (sent.empty()) {
    return out;
  }
  // One autocommit statement for the batch, of any sites: each wamid and `sent` (a status
  // webhook may have been faster than Meta's answer and adopted the wamid: a status it moved on
  // is kept), the entries gone (their bodies kept on the messages for a retry by hand),
  // message.updated for each under its site's event lock (held inside the server only), and the
  // statuses Meta reported for each before its answer reached us.
  static const std::string sql =
      "WITH input AS (SELECT DISTINCT ON (t.id::bigint) t.id::bigint AS id, t.wamid, t.site"
      "  FROM " + rows_from(1, 3) + " AS t(id, wamid, site)),"
      // `= ANY(ids)` beside each join: a probe per id, never a walk of the table with the batch
      // as the inner side.
      " gone AS (DELETE FROM wa_outbox o USING input i WHERE o.message_id = i.id AND o.site_id = i.site"
      "  AND o.message_id = ANY(" + first_column_ids() + ") RETURNING o.message_id, o.request),"
      " m AS (UPDATE mod_chat_messages x SET whatsapp_message_id = i.wamid,"
      "   status = CASE WHEN x.status = 'queued' THEN 'sent' ELSE x.status END, error_code = NULL,"
      "   error_title = NULL, error_details = NULL, error_retryable = NULL,"
      "   sent_request = coalesce(g.request, x.sent_request)"
      "  FROM input i LEFT JOIN gone g ON g.message_id = i.id"
      "  WHERE x.id = i.id AND x.id = ANY(" + first_column_ids() + ") AND x.site_id = i.site"
      "  RETURNING x.*),"
      // After every row of m is written (DISTINCT reads them all): no message row is locked
      // while an event lock is held, as the inbound path locks them in the other order. Each
      // site's, in the order of the locks' keys (two sites may share one).
      " locked AS MATERIALIZED (SELECT pg_advisory_xact_lock(s.k) AS l"
      "  FROM (SELECT DISTINCT " + events_lock_key_for("site_id") + " AS k FROM m ORDER BY 1) s),"
      " ev AS (INSERT INTO wa_events (site_id, type, conversation_id, message_id)"
      "  SELECT m.site_id, 'message.updated', m.conversation_id, m.id FROM m"
      "  WHERE (SELECT count(*) FROM locked) > 0 ORDER BY m.id RETURNING site_id)"
      " SELECT x.*, coalesce((SELECT json_agg(s.status)::text FROM wa_message_statuses s"
      "   WHERE s.site_id = x.row_site AND s.whatsapp_message_id = x.whatsapp_message_id), '[]'),"
      "  (SELECT count(*) FROM (SELECT pg_notify($4, e.site_id) FROM (SELECT DISTINCT site_id FROM ev) e) n)"
      " FROM (" + message_columns + ", m.site_id AS row_site FROM m) x";
  pg_columns rows(3);
  for (const auto& s : sent) {
    rows.add(s.message_id, pg_text(s.wamid), s.site);  // Meta's text: NUL, which text cannot hold, dropped
  }
  pqxx::result r;
  {
    pqxx::nontransaction nt{conn};  // closed before a second write below may open its own
    r = retry_deadlocked([&] { return exec_columns(nt, "outbound_sent_batch", sql, {&rows}, {events_channel}); });
  }
  for (const auto& row : r) {
    auto message = row.slice(0, message_column_count);
    const auto id = message[0].as<std::int64_t>();
    std::string text = dump(message_json(message));
    // The message takes the highest of the statuses already reported (domain::status_rank):
    // rare (a status webhook before Meta's answer), so a second write with its own event.
    std::string best = "sent";
    const std::string site = row[message_column_count].c_str();
    auto reported = json::parse(row[message_column_count + 1].c_str(), nullptr, false);
    if (reported.is_array()) {
      for (const auto& status : reported) {
        if (status.is_string() && domain::status_may_advance(best, status.get<std::string>())) {
          best = status.get<std::string>();
        }
      }
    }
    if (best != "sent" && domain::status_may_advance(message[13].c_str(), best)) {
      // Only over the status just written: a status webhook that moved it since is later news.
      pqxx::work w{conn};
      auto moved = exec_cached(w, "outbound_sent_status",
                               "UPDATE mod_chat_messages SET status = $2 WHERE id = $1 AND status = $3 RETURNING 1", id,
                               best, std::string{message[13].c_str()});
      text = message_text(w, id);
      if (!moved.empty()) {
        append_event(w, site, "message.updated", message[1].as<std::int64_t>(), id);
      }
      w.commit();
    }
    for (std::size_t i = 0; i < sent.size(); ++i) {
      if (sent[i].message_id == id) {
        out[i] = text;
      }
    }
  }
  return out;
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

void set_marketing_opt_out_of_message(pqxx::connection_base& conn, std::int64_t message_id) {
  pqxx::work w{conn};
  exec_cached(w, "outbound_opt_out_of_message",
      "UPDATE mod_chat_visitors v SET marketing_opt_out = true FROM mod_chat_messages m"
      " JOIN mod_chat_conversations c ON c.id = m.conversation_id"
      " WHERE m.id = $1 AND v.id = c.visitor_id AND v.marketing_opt_out IS DISTINCT FROM true",
      message_id);
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
  // A new version of the conversation's row: an enqueue that claims as it queues (enqueue_sends)
  // and whose snapshot missed this entry sees the row changed, and leaves its own send `ready`
  // behind this one instead of claiming it ahead.
  exec_cached(w, "outbound_22b", "UPDATE mod_chat_conversations SET updated_at = now() WHERE id = $1",
              r[0][1].as<std::int64_t>());
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

#include "infra/event_log.hpp"

#include <map>
#include <stdexcept>
#include <pqxx/pqxx>

#include "infra/cached_statement.hpp"

namespace wachat::infra {

void append_event(pqxx::transaction_base& tx, const std::string& site_id, std::string_view type,
                  std::optional<std::int64_t> conversation_id,
                  std::optional<std::int64_t> message_id) {
  append_events(tx, {pending_event{site_id, std::string{type}, conversation_id, message_id}});
}

namespace {

// PostgreSQL array literals for unnest(). Only numbers and our own event type names (plain
// identifiers such as "message.created") go in, so no quoting is needed; checked anyway.
std::string bigint_array(const std::vector<const pending_event*>& list,
                         std::optional<std::int64_t> pending_event::*field) {
  std::string out = "{";
  for (const auto* e : list) {
    if (out.size() > 1) {
      out += ',';
    }
    out += (e->*field) ? std::to_string(*(e->*field)) : std::string{"NULL"};
  }
  return out + "}";
}

std::string type_array(const std::vector<const pending_event*>& list) {
  std::string out = "{";
  for (const auto* e : list) {
    for (char c : e->type) {
      if (!((c >= 'a' && c <= 'z') || c == '.' || c == '_')) {
        throw std::invalid_argument("event type must be a plain name: " + e->type);
      }
    }
    if (out.size() > 1) {
      out += ',';
    }
    out += e->type;
  }
  return out + "}";
}

}  // namespace

void append_events(pqxx::transaction_base& tx, const std::vector<pending_event>& events) {
  std::map<std::string, std::vector<const pending_event*>> by_site;
  for (const auto& e : events) {
    by_site[e.site_id].push_back(&e);
  }
  // Sites in a fixed order, so that two processes never wait on each other's locks in a cycle.
  for (const auto& [site, list] : by_site) {
    // One round trip for the site: the lock (every output row of the join needs it, so it is
    // taken before any id is drawn), all of the site's events (WITH ORDINALITY keeps their order
    // in the ids), and the notification, which PostgreSQL sends at commit.
    static const std::string sql =
        std::string{"WITH locked AS MATERIALIZED (SELECT pg_advisory_xact_lock("} +
        events_lock_key_sql + ") AS l),"
        " ins AS (INSERT INTO wa_events (site_id, type, conversation_id, message_id)"
        "   SELECT $1, t.type, t.conversation_id, t.message_id"
        "   FROM locked, unnest($2::text[], $3::bigint[], $4::bigint[]) WITH ORDINALITY"
        "     AS t(type, conversation_id, message_id, n) ORDER BY t.n RETURNING 1)"
        " SELECT pg_notify($5, $1) FROM (SELECT count(*) FROM ins) c";
    exec_cached(tx, "events_append", sql, site, type_array(list),
                bigint_array(list, &pending_event::conversation_id),
                bigint_array(list, &pending_event::message_id), std::string{events_channel});
  }
}

void append_notification_events(pqxx::transaction_base& tx, const std::string& site_id, std::int64_t conversation_id,
                                const std::vector<std::int64_t>& notification_ids) {
  if (notification_ids.empty()) {
    return;
  }
  std::string ids = "{";
  for (auto id : notification_ids) {
    ids += (ids.size() > 1 ? "," : "") + std::to_string(id);
  }
  ids += "}";
  static const std::string sql =
      std::string{"WITH locked AS MATERIALIZED (SELECT pg_advisory_xact_lock("} + events_lock_key_sql + ") AS l),"
      " ins AS (INSERT INTO wa_events (site_id, type, conversation_id, notification_id)"
      "   SELECT $1, 'notification', $2, t.id FROM locked, unnest($3::bigint[]) WITH ORDINALITY AS t(id, n)"
      "   ORDER BY t.n RETURNING 1)"
      " SELECT pg_notify($4, $1) FROM (SELECT count(*) FROM ins) c";
  exec_cached(tx, "events_append_notifications", sql, site_id, conversation_id, ids, std::string{events_channel});
}

}  // namespace wachat::infra

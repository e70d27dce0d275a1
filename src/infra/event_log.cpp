#include "infra/event_log.hpp"

#include <map>
#include <pqxx/pqxx>

namespace wachat::infra {

void append_event(pqxx::transaction_base& tx, const std::string& site_id, std::string_view type,
                  std::optional<std::int64_t> conversation_id,
                  std::optional<std::int64_t> message_id) {
  tx.exec_params("SELECT pg_advisory_xact_lock(hashtext('wachat_events:' || $1))", site_id);
  tx.exec_params(
      "INSERT INTO wa_events (site_id, type, conversation_id, message_id) VALUES ($1, $2, $3, $4)",
      site_id, std::string{type}, conversation_id, message_id);
  tx.exec_params("SELECT pg_notify($1, $2)", std::string{events_channel}, site_id);
}

void append_events(pqxx::transaction_base& tx, const std::vector<pending_event>& events) {
  std::map<std::string, std::vector<const pending_event*>> by_site;
  for (const auto& e : events) {
    by_site[e.site_id].push_back(&e);
  }
  // Sites in a fixed order, so that two processes never wait on each other's locks in a cycle.
  for (const auto& [site, list] : by_site) {
    tx.exec_params("SELECT pg_advisory_xact_lock(hashtext('wachat_events:' || $1))", site);
    for (const auto* e : list) {
      tx.exec_params(
          "INSERT INTO wa_events (site_id, type, conversation_id, message_id)"
          " VALUES ($1, $2, $3, $4)",
          e->site_id, e->type, e->conversation_id, e->message_id);
    }
    tx.exec_params("SELECT pg_notify($1, $2)", std::string{events_channel}, site);
  }
}

}  // namespace wachat::infra

#include "infra/conversation_writes.hpp"

#include <pqxx/pqxx>

#include "infra/event_log.hpp"

namespace wachat::infra {

std::optional<std::string> newest_inbound_wamid(pqxx::transaction_base& tx, std::int64_t conversation_id) {
  auto r = tx.exec_params(
      "SELECT whatsapp_message_id FROM mod_chat_messages WHERE conversation_id = $1 AND sender_type = 'visitor'"
      " AND whatsapp_message_id IS NOT NULL ORDER BY created_at DESC, id DESC LIMIT 1",
      conversation_id);
  if (r.empty()) {
    return std::nullopt;
  }
  return r[0][0].as<std::string>();
}

conversation_write apply_conversation_change(pqxx::connection_base& conn, const conversation_change& c) {
  pqxx::work w{conn};
  if (c.agent && w.exec_params("SELECT 1 FROM mod_chat_agents WHERE site_id = $1 AND id = $2", c.site, *c.agent)
                     .empty()) {
    return conversation_write::unknown_agent;
  }
  try {
    pqxx::subtransaction sub{w, "change"};
    auto r = sub.exec_params(
        "UPDATE mod_chat_conversations SET status = coalesce($3, status),"
        " assigned_agent_id = CASE WHEN $4 THEN $5 ELSE assigned_agent_id END,"
        " unread_count = CASE WHEN $6 THEN 0 ELSE unread_count END,"
        " updated_at = now() WHERE id = $1 AND site_id = $2",
        c.conversation_id, c.site, c.status, c.agent_given, c.agent, c.mark_read);
    if (r.affected_rows() == 0) {
      return conversation_write::not_found;
    }
    sub.commit();
  } catch (const pqxx::unique_violation&) {
    return conversation_write::conflict;
  }
  append_event(w, c.site, "conversation.updated", c.conversation_id, std::nullopt);
  w.commit();
  return conversation_write::done;
}

}  // namespace wachat::infra

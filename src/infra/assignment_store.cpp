#include "infra/assignment_store.hpp"

#include <pqxx/pqxx>
#include <vector>

#include "domain/assignment.hpp"
#include "infra/cached_statement.hpp"
#include "infra/event_log.hpp"

namespace wachat::infra {

bool run_assign_job(pqxx::connection_base& c, const crm_job& job, const std::string& worker, bool auto_assign) {
  pqxx::work w{c};
  if (!take_held_followup(w, job.id, worker)) {
    return false;
  }
  if (!job.conversation_id) {
    w.commit();
    return true;
  }
  const auto conversation = *job.conversation_id;
  // Every assignment of the site waits here, whichever process makes it: the counts read below
  // stay true until this commits.
  w.exec_params("SELECT pg_advisory_xact_lock(hashtext('wachat_assign:' || $1))", job.site_id);
  auto conv = w.exec_params(
      "SELECT status, assigned_agent_id FROM mod_chat_conversations WHERE id = $1 FOR UPDATE", conversation);
  if (conv.empty() || conv[0][0].as<std::string>() == "closed" || !conv[0][1].is_null()) {
    w.commit();  // gone, closed, or assigned by hand meanwhile: nobody to tell
    return true;
  }
  auto rows = w.exec_params(
      "SELECT a.id, a.status, a.max_chats, extract(epoch from a.last_assigned_at)::bigint,"
      " (SELECT count(*) FROM mod_chat_conversations c WHERE c.site_id = a.site_id AND c.assigned_agent_id = a.id"
      "   AND c.status <> 'closed')"
      " FROM mod_chat_agents a WHERE a.site_id = $1 ORDER BY a.id",
      job.site_id);
  std::vector<domain::agent_load> team;
  for (const auto& r : rows) {
    team.push_back({r[0].as<std::string>(), r[1].as<std::string>(), static_cast<int>(r[4].as<std::int64_t>()),
                    r[2].as<int>(), r[3].as<std::optional<std::int64_t>>()});
  }
  auto chosen = auto_assign ? domain::choose_agent(team) : std::nullopt;
  std::vector<std::int64_t> notifications;
  auto notify = [&](const std::string& agent, const char* type) {
    auto n = w.exec_params(
        "INSERT INTO mod_chat_notifications (site_id, agent_id, type, conversation_id) VALUES ($1, $2, $3, $4)"
        " RETURNING id",
        job.site_id, agent, type, conversation);
    notifications.push_back(n[0][0].as<std::int64_t>());
  };
  if (chosen) {
    w.exec_params("UPDATE mod_chat_conversations SET assigned_agent_id = $2 WHERE id = $1", conversation, *chosen);
    w.exec_params("UPDATE mod_chat_agents SET last_assigned_at = now() WHERE site_id = $1 AND id = $2", job.site_id,
                  *chosen);
    notify(*chosen, "conversation_assigned");
    append_event(w, job.site_id, "conversation.updated", conversation, std::nullopt);
  } else {
    for (const auto& a : team) {
      if (a.status == "online") {
        notify(a.id, "new_conversation");
      }
    }
  }
  append_notification_events(w, job.site_id, conversation, notifications);
  w.commit();
  return true;
}

}  // namespace wachat::infra

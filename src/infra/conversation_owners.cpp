#include "infra/conversation_owners.hpp"

#include <pqxx/pqxx>

#include "infra/cached_statement.hpp"

namespace wachat::infra {

std::optional<conversation_owner> find_conversation_owner(pqxx::connection_base& c, std::int64_t conversation_id) {
  pqxx::nontransaction nt{c};
  auto r = exec_cached(nt, "conversation_owner",
                       "SELECT c.site_id, coalesce(v.whatsapp_phone, v.whatsapp_user_id, 'conversation:' || c.id)"
                       " FROM mod_chat_conversations c JOIN mod_chat_visitors v ON v.id = c.visitor_id WHERE c.id = $1",
                       conversation_id);
  if (r.empty()) {
    return std::nullopt;
  }
  return conversation_owner{r[0][0].as<std::string>(), r[0][1].as<std::string>()};
}

}  // namespace wachat::infra

#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace pqxx {
class connection_base;
}

// The dashboard's writes to one conversation (PATCH /api/conversations/{id}, POST .../read),
// applied by the conversation writer on behalf of the conversation's actor.
namespace wachat::infra {

struct conversation_change {
  std::int64_t conversation_id = 0;
  std::string site;
  std::optional<std::string> status;  // pending | active | closed (checked by the caller)
  bool agent_given = false;           // assigned_agent_id was in the request (null unassigns)
  std::optional<std::string> agent;
  bool mark_read = false;             // unread_count back to 0
};

enum class conversation_write {
  done,
  not_found,      // no such conversation in that site
  unknown_agent,  // assigned_agent_id names no agent of the site
  conflict,       // reopening it would make a second open conversation for the visitor
};

// One transaction: the guarded UPDATE and its `conversation.updated` event, or nothing.
conversation_write apply_conversation_change(pqxx::connection_base& conn, const conversation_change& c);

}  // namespace wachat::infra

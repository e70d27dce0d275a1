#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace pqxx {
class connection_base;
class transaction_base;
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
  // For /read when the site's read_receipts is on_agent_view (set by the site actor): mark the
  // newest customer message read at Meta too, with a typing indicator if asked.
  std::optional<std::string> receipt_phone_number_id;
  std::string receipt_token;
  bool typing = false;
};

enum class conversation_write {
  done,
  not_found,      // no such conversation in that site
  unknown_agent,  // assigned_agent_id names no agent of the site
  conflict,       // reopening it would make a second open conversation for the visitor
};

// The customer's newest message with a wamid (not a reaction), for a read receipt.
std::optional<std::string> newest_inbound_wamid(pqxx::transaction_base& tx, std::int64_t conversation_id);

// One transaction: the guarded UPDATE and its `conversation.updated` event, or nothing.
conversation_write apply_conversation_change(pqxx::connection_base& conn, const conversation_change& c);

}  // namespace wachat::infra

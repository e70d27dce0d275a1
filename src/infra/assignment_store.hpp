#pragma once
#include <string>

#include "infra/crm_store.hpp"

namespace pqxx {
class connection_base;
}

namespace wachat::infra {

// An `assign` job of a new conversation (DESIGN.md §3 item 8), in one transaction: with
// `auto_assign`, the agent domain::choose_agent picks (under a per-site lock, so two processes
// never over-assign) gets it and a `conversation_assigned` notification; when nobody could take
// it (or auto_assign is off), every online agent gets a `new_conversation` one. Each
// notification is a mod_chat_notifications row and a `notification` event. False when `worker`
// no longer held the job. Throws on database errors.
bool run_assign_job(pqxx::connection_base& c, const crm_job& job, const std::string& worker, bool auto_assign);

}  // namespace wachat::infra

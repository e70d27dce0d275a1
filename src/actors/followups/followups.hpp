#pragma once
#include <caf/fwd.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "actors/supervision/job_pool.hpp"
#include "infra/metrics.hpp"

namespace wachat::infra {
struct config;
}

namespace wachat::actors {

struct followup_settings {
  std::string database_url;
  const infra::config* cfg = nullptr;  // for the sites' settings (crm_sync, their number)
  unsigned workers = 2;
  std::chrono::milliseconds retry_base{2000};
};

// The CRM sync (DESIGN.md §2, §3 item 9): a supervised job pool linking every WhatsApp visitor
// to a crm_contacts row (found by E.164 phone, BSUID or email, else created) and logging a
// conversation's start and close as crm_activities. Jobs are queued by triggers in the very
// transaction that opened or closed a conversation (migration 014), so a message is never held
// up by the CRM, and a CRM failure is retried (five tries, doubling waits), then kept `failed`
// with its reason. A worker that dies is restarted (`wachat_followup_worker_restarts_total`).
job_pool_actor spawn_followups(caf::actor_system& sys, followup_settings settings, std::shared_ptr<infra::metrics> metrics);

}  // namespace wachat::actors

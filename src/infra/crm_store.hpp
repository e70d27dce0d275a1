#pragma once
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace pqxx {
class connection_base;
class transaction_base;
}  // namespace pqxx

// The SQL of CRM linking (migration 014): jobs claimed under a lease like media jobs, and the
// contact found or created for a WhatsApp visitor.
namespace wachat::infra {

struct crm_job {
  std::int64_t id = 0;
  std::string site_id;
  std::string kind;  // link | closed
  std::int64_t visitor_id = 0;
  std::optional<std::int64_t> conversation_id;
  int attempts = 0;
  std::string last_error;
};

std::optional<crm_job> claim_crm_job(pqxx::connection_base& c, const std::string& worker, std::chrono::seconds lease);
int release_crm_jobs(pqxx::connection_base& c, const std::string& worker, const std::string& why);
bool record_crm_retry(pqxx::connection_base& c, std::int64_t job, const std::string& worker,
                      std::chrono::milliseconds delay, const std::string& why);
// Given up: kept as `failed` with its reason, for whoever looks into it.
bool record_crm_failed(pqxx::connection_base& c, std::int64_t job, const std::string& worker, const std::string& why);

// Removes `job` from wa_conversation_jobs in `tx` if `worker` still holds it (its lease did not
// lapse to another worker); false when it does not. Every follow-up kind starts with it.
bool take_held_followup(pqxx::transaction_base& tx, std::int64_t job, const std::string& worker);

// Does `job` in one transaction and removes it; false when `worker` no longer held it.
// `region`: where the CRM's numbers without a country code are read (ISO 3166; may be empty).
// `enabled`: the site's crm_sync; when off the job is simply removed. Throws on database errors.
bool run_crm_job(pqxx::connection_base& c, const crm_job& job, const std::string& worker, const std::string& region,
                 bool enabled);

// The contact linked to the conversation's visitor: {"id","name","phone","email","created_by_chat"}.
std::optional<nlohmann::json> conversation_contact(pqxx::transaction_base& tx, std::int64_t conversation_id);

}  // namespace wachat::infra

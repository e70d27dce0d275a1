#pragma once
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "actors/site/site_answer.hpp"
#include "http/auth.hpp"
#include "http/types.hpp"
#include "infra/config.hpp"
#include "infra/site_settings.hpp"

namespace pqxx {
class connection_base;
class transaction_base;
}  // namespace pqxx

namespace wachat::http {

// GET /api/sites/{site}/whatsapp/status body.
nlohmann::json site_status_json(const infra::site_settings& s, const infra::config& cfg);

// Meta's error as the API shows it (`code`, `title`, `details`, `fbtrace_id`).
nlohmann::json graph_error_json(const domain::graph_error& e);

// A site actor's refusal as the API's error shape (with Meta's error under `graph`).
response site_answer_error(const actors::site_answer& a);

bool site_exists(pqxx::transaction_base& tx, const std::string& site_id);
// Throws api_error 404 unless the site exists and `who` may see it (another site's answers 404
// exactly as a missing one, API.md §3).
void require_site(pqxx::connection_base& conn, const principal& who, const std::string& site_id);

// The conversation's site and its customer's key (their phone, else their BSUID: the key the
// inbound side uses), if the caller may see it; throws api_error 404 otherwise.
struct conversation_owner {
  std::int64_t id = 0;
  std::string site;
  std::string key;
};
conversation_owner owner_of(pqxx::connection_base& c, const std::string& id_text, const principal& who);

}  // namespace wachat::http

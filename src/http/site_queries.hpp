#pragma once
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

#include "infra/config.hpp"

namespace pqxx {
class connection_base;
class transaction_base;
}  // namespace pqxx

namespace wachat::http {

// A site's WhatsApp settings as stored, with the access token opened (never logged or returned).
struct site_settings {
  std::string site_id;
  bool enabled = false;
  std::optional<std::string> phone_number;
  std::optional<std::string> phone_number_id;
  std::optional<std::string> business_account_id;
  std::optional<std::string> site_access_token;  // decrypted, when the site has its own
  bool has_site_token = false;                    // even if it cannot be opened
  std::optional<std::string> welcome_template;
  std::string verify_token;
  std::string read_receipts = "on_receipt";
  bool auto_assign = false;
  bool crm_sync = true;
  std::optional<std::int64_t> last_check_at;
  std::optional<bool> last_check_ok;
  std::optional<std::string> last_check_error;

  // The token to call Graph with: the site's own, else WHATSAPP_ACCESS_TOKEN.
  std::optional<std::string> effective_token(const infra::config& cfg) const;
  std::optional<std::string> effective_phone_number_id(const infra::config& cfg) const;
  std::string credential_source(const infra::config& cfg) const;
};

// nullopt when the site does not exist.
std::optional<site_settings> load_site_settings(pqxx::transaction_base& tx,
                                                const infra::config& cfg,
                                                const std::string& site_id);

// GET /api/sites/{site}/whatsapp/status body.
nlohmann::json site_status_json(const site_settings& s, const infra::config& cfg);

bool site_exists(pqxx::transaction_base& tx, const std::string& site_id);

}  // namespace wachat::http

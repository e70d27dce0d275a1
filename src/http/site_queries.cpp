#include "http/site_queries.hpp"

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "domain/masking.hpp"
#include "http/api_common.hpp"
#include "http/webhook_handler.hpp"
#include "infra/crypto.hpp"

namespace wachat::http {

std::optional<std::string> site_settings::effective_token(const infra::config& cfg) const {
  if (has_site_token) {
    return site_access_token;
  }
  return cfg.access_token;
}

std::optional<std::string> site_settings::effective_phone_number_id(
    const infra::config& cfg) const {
  if (phone_number_id) {
    return phone_number_id;
  }
  return has_site_token ? std::nullopt : cfg.phone_number_id;
}

std::string site_settings::credential_source(const infra::config& cfg) const {
  if (has_site_token) {
    return "site";
  }
  return cfg.access_token ? "env" : "none";
}

bool site_exists(pqxx::transaction_base& tx, const std::string& site_id) {
  return !tx.exec_params("SELECT 1 FROM sites WHERE id = $1", site_id).empty();
}

std::optional<site_settings> load_site_settings(pqxx::transaction_base& tx,
                                                const infra::config& cfg,
                                                const std::string& site_id) {
  auto r = tx.exec_params(
      "SELECT s.whatsapp_enabled, s.whatsapp_phone_number, s.whatsapp_phone_number_id,"
      " s.whatsapp_business_account_id, s.whatsapp_access_token_encrypted,"
      " s.whatsapp_welcome_template, s.whatsapp_verify_token, s.read_receipts, s.auto_assign,"
      " s.crm_sync, extract(epoch from s.last_check_at)::bigint, s.last_check_ok,"
      " s.last_check_error"
      " FROM mod_chat_widget_settings s WHERE s.site_id = $1",
      site_id);
  if (r.empty()) {
    return std::nullopt;
  }
  const auto& row = r[0];
  site_settings s;
  s.site_id = site_id;
  s.enabled = row[0].as<bool>();
  s.phone_number = row[1].as<std::optional<std::string>>();
  s.phone_number_id = row[2].as<std::optional<std::string>>();
  s.business_account_id = row[3].as<std::optional<std::string>>();
  if (!row[4].is_null()) {
    s.has_site_token = true;
    pqxx::binarystring blob{row[4]};
    if (cfg.master_key) {
      s.site_access_token = infra::unseal(*cfg.master_key, std::string_view{blob.get(), blob.size()}, "site:" + site_id);
    }
  }
  s.welcome_template = row[5].as<std::optional<std::string>>();
  s.verify_token = row[6].as<std::string>();
  s.read_receipts = row[7].as<std::string>();
  s.auto_assign = row[8].as<bool>();
  s.crm_sync = row[9].as<bool>();
  s.last_check_at = row[10].as<std::optional<std::int64_t>>();
  s.last_check_ok = row[11].as<std::optional<bool>>();
  s.last_check_error = row[12].as<std::optional<std::string>>();
  return s;
}

nlohmann::json site_status_json(const site_settings& s, const infra::config& cfg) {
  using nlohmann::json;
  auto opt = [](const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); };
  auto token = s.effective_token(cfg);
  json masked = nullptr;
  if (s.has_site_token) {
    masked = s.site_access_token ? domain::mask_token(*s.site_access_token) : "****";
  } else if (token) {
    masked = domain::mask_token(*token);
  }
  auto source = s.credential_source(cfg);
  auto phone_id = s.effective_phone_number_id(cfg);
  json j = {
      {"configured", phone_id.has_value() && source != "none"},
      {"enabled", s.enabled},
      {"credential_source", source},
      {"phone_number", opt(s.phone_number)},
      {"phone_number_id", opt(phone_id)},
      {"business_account_id",
       opt(s.business_account_id ? s.business_account_id
                                 : (s.has_site_token ? std::nullopt : cfg.business_account_id))},
      {"access_token", masked},
      {"webhook_url", cfg.public_url + webhook_path},
      {"verify_token", s.verify_token},
      {"welcome_template", opt(s.welcome_template)},
      {"read_receipts", s.read_receipts},
      {"auto_assign", s.auto_assign},
      {"crm_sync", s.crm_sync},
      {"last_check", nullptr},
  };
  if (s.last_check_at) {
    j["last_check"] = {{"at", rfc3339(*s.last_check_at)},
                       {"ok", s.last_check_ok.value_or(false)},
                       {"error", opt(s.last_check_error)}};
  }
  return j;
}

}  // namespace wachat::http

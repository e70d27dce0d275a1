#include "infra/site_settings.hpp"

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "infra/crypto.hpp"

namespace wachat::infra {
namespace {

constexpr const char* settings_channel = "wachat_site_settings";

std::string token_context(const std::string& site_id) { return "site:" + site_id; }

std::vector<std::string> json_strings(const char* text) {
  std::vector<std::string> out;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_array()) {
    for (const auto& v : j) {
      if (v.is_string()) out.push_back(v.get<std::string>());
    }
  }
  return out;
}

std::optional<std::string> json_text(const std::optional<std::vector<std::string>>& v) {
  if (!v) return std::nullopt;
  return nlohmann::json(*v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::optional<std::string> site_settings::effective_token(const config& cfg) const {
  if (has_site_token) {
    return site_access_token;
  }
  return cfg.access_token;
}

std::optional<std::string> site_settings::effective_phone_number_id(const config& cfg) const {
  if (phone_number_id) {
    return phone_number_id;
  }
  return has_site_token ? std::nullopt : cfg.phone_number_id;
}

std::string site_settings::credential_source(const config& cfg) const {
  if (has_site_token) {
    return "site";
  }
  return cfg.access_token ? "env" : "none";
}

std::optional<site_settings> site_settings_store::load(const std::string& site_id) {
  pqxx::nontransaction tx{conn_};
  auto r = tx.exec_params(
      "SELECT s.whatsapp_enabled, s.whatsapp_phone_number, s.whatsapp_phone_number_id,"
      " s.whatsapp_business_account_id, s.whatsapp_access_token_encrypted,"
      " s.whatsapp_welcome_template, s.whatsapp_verify_token, s.read_receipts, s.auto_assign,"
      " s.crm_sync, extract(epoch from s.last_check_at)::bigint, s.last_check_ok,"
      " s.last_check_error, s.messages_per_second, array_to_json(s.opt_out_keywords)::text,"
      " array_to_json(s.opt_in_keywords)::text"
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
    if (cfg_.master_key) {
      s.site_access_token = unseal(*cfg_.master_key, std::string_view{blob.get(), blob.size()},
                                   token_context(site_id));
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
  s.messages_per_second = row[13].as<int>();
  s.opt_out_keywords = json_strings(row[14].c_str());
  s.opt_in_keywords = json_strings(row[15].c_str());
  return s;
}

std::vector<std::string> site_settings_store::sites_for_waba(const std::string& waba_id) {
  pqxx::nontransaction nt{conn_};
  std::vector<std::string> out;
  for (const auto& r :
       nt.exec_params("SELECT site_id FROM mod_chat_widget_settings WHERE whatsapp_business_account_id = $1", waba_id)) {
    out.push_back(r[0].as<std::string>());
  }
  return out;
}

std::optional<std::string> site_settings_store::site_for_phone(const std::string& phone_number_id) {
  pqxx::nontransaction nt{conn_};
  auto r = nt.exec_params(
      "SELECT site_id FROM mod_chat_widget_settings WHERE whatsapp_phone_number_id = $1",
      phone_number_id);
  if (r.empty()) {
    return std::nullopt;
  }
  return r[0][0].as<std::string>();
}

settings_write site_settings_store::save(const std::string& site_id, const site_settings_update& u) {
  // Sealed bytes travel as hex text (decoded by PostgreSQL) so NULL can mean "keep the stored one".
  std::optional<std::string> sealed_hex;
  if (u.new_token) {
    auto sealed = seal(cfg_.master_key.value(), *u.new_token, token_context(site_id));
    sealed_hex = hex_encode(reinterpret_cast<const unsigned char*>(sealed.data()), sealed.size());
  }
  pqxx::work w{conn_};
  try {
    // Without a phone_number the stored one stays; a site that has none takes Meta's display number.
    auto r = w.exec_params(
        "UPDATE mod_chat_widget_settings SET whatsapp_phone_number_id = $2,"
        " whatsapp_phone_number = COALESCE($3, whatsapp_phone_number, $11),"
        " whatsapp_business_account_id = COALESCE($4, whatsapp_business_account_id),"
        " whatsapp_access_token_encrypted = COALESCE(decode($5, 'hex'), whatsapp_access_token_encrypted),"
        " whatsapp_welcome_template = COALESCE($6, whatsapp_welcome_template),"
        " read_receipts = COALESCE($7, read_receipts), auto_assign = COALESCE($8, auto_assign),"
        " crm_sync = COALESCE($9, crm_sync), whatsapp_enabled = $10,"
        " messages_per_second = COALESCE($12, messages_per_second),"
        // ARRAY(...) of a NULL list is empty, not NULL: keep the stored list explicitly.
        " opt_out_keywords = CASE WHEN $13::json IS NULL THEN opt_out_keywords"
        "   ELSE ARRAY(SELECT json_array_elements_text($13::json)) END,"
        " opt_in_keywords = CASE WHEN $14::json IS NULL THEN opt_in_keywords"
        "   ELSE ARRAY(SELECT json_array_elements_text($14::json)) END,"
        " last_check_at = now(), last_check_ok = true, last_check_error = NULL, updated_at = now()"
        " WHERE site_id = $1",
        site_id, u.phone_number_id.value(), u.phone_number, u.business_account_id, sealed_hex,
        u.welcome_template, u.read_receipts, u.auto_assign, u.crm_sync, u.enabled,
        u.display_phone_number, u.messages_per_second, json_text(u.opt_out_keywords),
        json_text(u.opt_in_keywords));
    if (r.affected_rows() == 0) {
      return settings_write::not_found;
    }
  } catch (const pqxx::unique_violation&) {
    return settings_write::phone_number_in_use;
  }
  w.commit();
  return settings_write::done;
}

settings_write site_settings_store::clear(const std::string& site_id) {
  pqxx::work w{conn_};
  auto r = w.exec_params(
      "UPDATE mod_chat_widget_settings SET whatsapp_enabled = false,"
      " whatsapp_access_token_encrypted = NULL,"
      " whatsapp_phone_number_id = NULL, whatsapp_phone_number = NULL,"
      " whatsapp_business_account_id = NULL, last_check_at = NULL,"
      " last_check_ok = NULL, last_check_error = NULL,"
      " updated_at = now() WHERE site_id = $1",
      site_id);
  w.commit();
  return r.affected_rows() == 0 ? settings_write::not_found : settings_write::done;
}

void site_settings_store::record_check(const std::string& site_id, bool ok,
                                       const std::optional<std::string>& error) {
  pqxx::work w{conn_};
  w.exec_params(
      "UPDATE mod_chat_widget_settings SET last_check_at = now(), last_check_ok = $2,"
      " last_check_error = $3 WHERE site_id = $1",
      site_id, ok, error);
  w.commit();
}

bool site_settings_store::verify_token_known(const std::string& token) {
  pqxx::nontransaction nt{conn_};
  return !nt.exec_params("SELECT 1 FROM mod_chat_widget_settings WHERE whatsapp_verify_token = $1", token)
              .empty();
}

namespace {

class collector final : public pqxx::notification_receiver {
 public:
  collector(pqxx::connection_base& c, std::vector<std::string>& out)
      : pqxx::notification_receiver(c, settings_channel), out_(out) {}
  void operator()(const std::string& payload, int) override { out_.push_back(payload); }

 private:
  std::vector<std::string>& out_;
};

}  // namespace

struct site_settings_listener::impl {
  std::vector<std::string> heard;  // declared before the receiver that fills it
  pqxx::connection conn;
  collector receiver;
  explicit impl(const std::string& url) : conn(url), receiver(conn, heard) {}
};

site_settings_listener::site_settings_listener(std::string database_url)
    : url_(std::move(database_url)) {}

site_settings_listener::~site_settings_listener() = default;

site_settings_listener::changes site_settings_listener::poll() {
  changes out;
  if (!impl_ || !impl_->conn.is_open()) {
    impl_.reset();
    impl_ = std::make_unique<impl>(url_);
    // LISTEN is issued on the first use of the receiver's connection.
    impl_->conn.get_notifs();
    out.everything = true;
    return out;
  }
  try {
    impl_->conn.get_notifs();
  } catch (...) {
    impl_.reset();
    throw;
  }
  out.sites.swap(impl_->heard);
  return out;
}

}  // namespace wachat::infra

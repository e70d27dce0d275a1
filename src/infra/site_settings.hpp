#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "infra/config.hpp"

namespace pqxx {
class connection_base;
}  // namespace pqxx

namespace wachat::infra {

// A site's WhatsApp settings as stored, with the access token opened. The token never leaves
// the process: not logged, not returned (the API shows it masked).
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
  int messages_per_second = 80;
  std::vector<std::string> opt_out_keywords{"STOP", "UNSUBSCRIBE"};
  std::vector<std::string> opt_in_keywords{"START"};
  std::optional<std::int64_t> last_check_at;
  std::optional<bool> last_check_ok;
  std::optional<std::string> last_check_error;

  // The token to call Graph with: the site's own, else WHATSAPP_ACCESS_TOKEN.
  std::optional<std::string> effective_token(const config& cfg) const;
  std::optional<std::string> effective_phone_number_id(const config& cfg) const;
  std::string credential_source(const config& cfg) const;
};

// What PUT .../whatsapp/settings writes once Graph has accepted the credentials. Absent fields
// keep what is stored.
struct site_settings_update {
  std::optional<std::string> phone_number_id;  // required unless the site has one already
  std::optional<std::string> phone_number;
  std::optional<std::string> business_account_id;
  std::optional<std::string> new_token;  // sealed before it is stored
  std::optional<std::string> welcome_template;
  std::optional<std::string> read_receipts;
  std::optional<bool> auto_assign;
  std::optional<bool> crm_sync;
  std::optional<int> messages_per_second;
  std::optional<std::vector<std::string>> opt_out_keywords;
  std::optional<std::vector<std::string>> opt_in_keywords;
  bool enabled = true;
  // Meta's display number, taken when neither the request nor the site names one.
  std::optional<std::string> display_phone_number;
};

enum class settings_write { done, not_found, phone_number_in_use };

// The SQL of site settings (mod_chat_widget_settings). Tokens are sealed with the master key
// and the site as context, so a blob moved to another site's row does not open.
class site_settings_store {
 public:
  site_settings_store(pqxx::connection_base& conn, const config& cfg) : conn_(conn), cfg_(cfg) {}

  std::optional<site_settings> load(const std::string& site_id);
  // The site whose settings name this phone number id, if any.
  std::optional<std::string> site_for_phone(const std::string& phone_number_id);
  // `u.phone_number_id` must be set.
  settings_write save(const std::string& site_id, const site_settings_update& u);
  // Disables WhatsApp for the site and forgets its credentials and number.
  settings_write clear(const std::string& site_id);
  void record_check(const std::string& site_id, bool ok, const std::optional<std::string>& error);
  // The sites whose settings name this WhatsApp Business Account.
  std::vector<std::string> sites_for_waba(const std::string& waba_id);
  // Whether some site's webhook verify token is this one (GET verification, API.md §2).
  bool verify_token_known(const std::string& token);

 private:
  pqxx::connection_base& conn_;
  const config& cfg_;
};

// Hears about settings changes made by any process (a trigger notifies on every change of a
// settings row, migration 007). poll() never waits.
class site_settings_listener {
 public:
  explicit site_settings_listener(std::string database_url);
  ~site_settings_listener();
  site_settings_listener(const site_settings_listener&) = delete;
  site_settings_listener& operator=(const site_settings_listener&) = delete;

  struct changes {
    // True when the listening connection was (re)made: changes may have been missed, so all
    // that was loaded before must be read again.
    bool everything = false;
    std::vector<std::string> sites;
  };
  // Throws when the database cannot be reached; the next call connects again.
  changes poll();

 private:
  struct impl;
  std::string url_;
  std::unique_ptr<impl> impl_;
};

}  // namespace wachat::infra

#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>

namespace wachat::infra {

// Everything wachatd can be told, from the environment or the config file (API.md §1).
struct config {
  std::string database_url;
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 8080;
  std::string public_url;  // defaults to http://<listen>
  std::optional<std::string> admin_token;
  std::optional<std::array<unsigned char, 32>> master_key;
  std::string media_dir = "./var/media";
  std::string graph_base_url = "https://graph.facebook.com";
  std::string graph_version = "v24.0";
  std::optional<std::string> graph_ca_file;
  std::size_t webhook_max_bytes = 4194304;
  std::uint32_t send_wait_ms = 10000;
  std::uint32_t send_doubt_ms = 120000;
  std::uint32_t media_url_ttl = 86400;
  std::optional<std::string> phone_number_id;
  std::optional<std::string> business_account_id;
  std::optional<std::string> access_token;
  std::optional<std::string> verify_token;
  std::optional<std::string> app_secret;
  // Operational knobs beyond API.md (documented in config/wachat.example.conf).
  std::uint32_t request_timeout_ms = 30000;  // headers + body must arrive within this
  std::uint32_t commit_timeout_ms = 5000;    // webhook answered 503 if not committed by then
  std::uint32_t http_threads = 2;
  std::uint32_t intake_writers = 2;
  std::uint32_t intake_batch_max = 1000;
  std::uint32_t inbound_writers = 2;
  std::uint32_t conversation_idle_ms = 60000;
  std::uint32_t inbox_lease_ms = 60000;
  std::size_t api_max_body_bytes = 1048576;
  std::uint32_t media_workers = 4;
  std::uint32_t media_retry_ms = 2000;
  std::uint32_t media_stall_ms = 30000;
  std::uint32_t media_yield_ms = 1000;  // domain::yield_settings::max_wait of the media pool
  std::uint32_t crm_retry_ms = 2000;
};

using settings_map = std::map<std::string, std::string>;

// Every key wachatd understands, with a one-line description (for --help and validation).
struct setting_doc {
  const char* key;
  const char* description;
  const char* default_value;
};
const std::map<std::string, setting_doc>& known_settings();

// Reads `KEY=value` lines (`#` comments, blank lines, optional quotes around the value).
// Returns the settings or a one-line error naming the offending line.
std::variant<settings_map, std::string> parse_config_file(const std::string& text);

// Merges file settings under environment settings (environment wins) and validates.
// Returns the configuration or one clear line saying what is unusable.
std::variant<config, std::string> build_config(const settings_map& file_settings,
                                               const settings_map& env_settings);

// The WACHAT_* and WHATSAPP_* variables of the current process environment.
settings_map read_environment();

std::string help_text();

}  // namespace wachat::infra

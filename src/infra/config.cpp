#include "infra/config.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cstdlib>
#include <string_view>

#include "infra/crypto.hpp"

extern char** environ;

namespace wachat::infra {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

template <typename T>
std::optional<T> parse_unsigned(std::string_view s, T min, T max) {
  T value{};
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || ptr != s.data() + s.size() || value < min || value > max) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

const std::map<std::string, setting_doc>& known_settings() {
  static const std::map<std::string, setting_doc> docs = {
      {"WACHAT_DATABASE_URL", {"WACHAT_DATABASE_URL", "libpq URI of PostgreSQL", "(required)"}},
      {"WACHAT_LISTEN", {"WACHAT_LISTEN", "host:port to serve HTTP on", "127.0.0.1:8080"}},
      {"WACHAT_PUBLIC_URL",
       {"WACHAT_PUBLIC_URL", "base URL shown as the webhook URL to register at Meta",
        "http://<listen>"}},
      {"WACHAT_ADMIN_TOKEN",
       {"WACHAT_ADMIN_TOKEN", "bearer token with admin scope", "(none: admin API answers 401)"}},
      {"WACHAT_MASTER_KEY",
       {"WACHAT_MASTER_KEY", "32 bytes, base64: encrypts stored access tokens",
        "(none: saving a per-site access token answers 503)"}},
      {"WACHAT_MEDIA_DIR", {"WACHAT_MEDIA_DIR", "where downloaded media is kept", "./var/media"}},
      {"WACHAT_GRAPH_BASE_URL",
       {"WACHAT_GRAPH_BASE_URL", "Graph API base, http:// or https://",
        "https://graph.facebook.com"}},
      {"WACHAT_GRAPH_VERSION", {"WACHAT_GRAPH_VERSION", "Graph API version segment", "v24.0"}},
      {"WACHAT_GRAPH_CA_FILE",
       {"WACHAT_GRAPH_CA_FILE", "extra CA bundle trusted for the Graph base URL",
        "(system store only)"}},
      {"WACHAT_WEBHOOK_MAX_BYTES",
       {"WACHAT_WEBHOOK_MAX_BYTES", "largest webhook body accepted", "4194304"}},
      {"WACHAT_SEND_WAIT_MS",
       {"WACHAT_SEND_WAIT_MS", "how long a send waits for Meta before answering 202", "10000"}},
      {"WACHAT_SEND_DOUBT_MS",
       {"WACHAT_SEND_DOUBT_MS",
        "how long a send whose answer from Meta was lost waits before it is sent again", "120000"}},
      {"WACHAT_MEDIA_URL_TTL",
       {"WACHAT_MEDIA_URL_TTL", "lifetime of signed media URLs, seconds", "86400"}},
      {"WHATSAPP_PHONE_NUMBER_ID",
       {"WHATSAPP_PHONE_NUMBER_ID", "global phone number id (fallback)", "(none)"}},
      {"WHATSAPP_BUSINESS_ACCOUNT_ID",
       {"WHATSAPP_BUSINESS_ACCOUNT_ID", "global WABA id (fallback)", "(none)"}},
      {"WHATSAPP_ACCESS_TOKEN",
       {"WHATSAPP_ACCESS_TOKEN", "global system-user token (fallback)", "(none)"}},
      {"WHATSAPP_VERIFY_TOKEN",
       {"WHATSAPP_VERIFY_TOKEN", "webhook verify token", "(none: GET verification answers 403)"}},
      {"WHATSAPP_APP_SECRET",
       {"WHATSAPP_APP_SECRET", "app secret for X-Hub-Signature-256",
        "(none: every webhook POST answers 401)"}},
      {"WACHAT_REQUEST_TIMEOUT_MS",
       {"WACHAT_REQUEST_TIMEOUT_MS", "a request's headers and body must arrive within this",
        "30000"}},
      {"WACHAT_COMMIT_TIMEOUT_MS",
       {"WACHAT_COMMIT_TIMEOUT_MS", "a webhook not committed within this answers 503", "5000"}},
      {"WACHAT_HTTP_THREADS", {"WACHAT_HTTP_THREADS", "threads serving HTTP", "2"}},
      {"WACHAT_INBOUND_WRITERS",
       {"WACHAT_INBOUND_WRITERS", "database connections storing inbound messages", "2"}},
      {"WACHAT_CONVERSATION_IDLE_MS",
       {"WACHAT_CONVERSATION_IDLE_MS", "an idle conversation actor stops between this and twice this after its last request", "60000"}},
      {"WACHAT_INBOX_LEASE_MS",
       {"WACHAT_INBOX_LEASE_MS",
        "inbox rows claimed but not finished within this are given back and done again", "60000"}},
      {"WACHAT_INTAKE_WRITERS",
       {"WACHAT_INTAKE_WRITERS", "database connections committing webhooks in batches", "2"}},
      {"WACHAT_INTAKE_BATCH_MAX",
       {"WACHAT_INTAKE_BATCH_MAX", "most webhooks committed in one transaction", "1000"}},
      {"WACHAT_API_MAX_BODY_BYTES",
       {"WACHAT_API_MAX_BODY_BYTES", "largest dashboard API request body", "1048576"}},
      {"WACHAT_MEDIA_WORKERS",
       {"WACHAT_MEDIA_WORKERS", "media downloads done at once by this process", "4"}},
      {"WACHAT_MEDIA_RETRY_MS",
       {"WACHAT_MEDIA_RETRY_MS", "first wait before a failed media download is tried again (doubling)", "2000"}},
      {"WACHAT_CRM_RETRY_MS",
       {"WACHAT_CRM_RETRY_MS", "first wait before a failed CRM link is tried again (doubling, five tries)", "2000"}},
      {"WACHAT_MEDIA_STALL_MS",
       {"WACHAT_MEDIA_STALL_MS", "a media download that sends nothing for this long is dropped and retried",
        "30000"}},
      {"WACHAT_MEDIA_YIELD_MS",
       {"WACHAT_MEDIA_YIELD_MS",
        "while customers' messages are arriving, media downloads start at most one per this long (0: no holding back)",
        "1000"}},
  };
  return docs;
}

std::variant<settings_map, std::string> parse_config_file(const std::string& text) {
  settings_map out;
  std::string_view rest{text};
  int line_no = 0;
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    auto line = trim(rest.substr(0, nl));
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    ++line_no;
    if (line.empty() || line.front() == '#') {
      continue;
    }
    auto eq = line.find('=');
    if (eq == std::string_view::npos) {
      return fmt::format("config file line {}: expected KEY=value", line_no);
    }
    auto key = std::string{trim(line.substr(0, eq))};
    auto value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    if (!known_settings().contains(key)) {
      return fmt::format("config file line {}: unknown key {}", line_no, key);
    }
    out[key] = std::string{value};
  }
  return out;
}

settings_map read_environment() {
  settings_map out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv{*e};
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) {
      continue;
    }
    std::string key{kv.substr(0, eq)};
    if (known_settings().contains(key)) {
      out[key] = std::string{kv.substr(eq + 1)};
    }
  }
  return out;
}

std::variant<config, std::string> build_config(const settings_map& file_settings,
                                               const settings_map& env_settings) {
  settings_map s = file_settings;
  for (const auto& [k, v] : env_settings) {
    s[k] = v;
  }
  auto get = [&](const char* key) -> std::optional<std::string> {
    auto it = s.find(key);
    if (it == s.end() || it->second.empty()) {
      return std::nullopt;
    }
    return it->second;
  };
  config c;
  if (auto v = get("WACHAT_DATABASE_URL")) {
    c.database_url = *v;
  } else {
    return std::string{"WACHAT_DATABASE_URL is required (a libpq URI such as postgresql://user@host:5432/db)"};
  }
  if (auto v = get("WACHAT_LISTEN")) {
    auto colon = v->rfind(':');
    if (colon == std::string::npos || colon == 0) {
      return fmt::format("WACHAT_LISTEN must be host:port, got '{}'", *v);
    }
    auto port = parse_unsigned<unsigned>(std::string_view{*v}.substr(colon + 1), 0, 65535);
    if (!port) {
      return fmt::format("WACHAT_LISTEN has an invalid port in '{}'", *v);
    }
    c.listen_host = v->substr(0, colon);
    if (c.listen_host.size() > 2 && c.listen_host.front() == '[' && c.listen_host.back() == ']') {
      c.listen_host = c.listen_host.substr(1, c.listen_host.size() - 2);
    }
    c.listen_port = static_cast<std::uint16_t>(*port);
  }
  c.public_url = get("WACHAT_PUBLIC_URL").value_or("");
  while (!c.public_url.empty() && c.public_url.back() == '/') {
    c.public_url.pop_back();
  }
  if (!c.public_url.empty() && !c.public_url.starts_with("http://") &&
      !c.public_url.starts_with("https://")) {
    return std::string{"WACHAT_PUBLIC_URL must start with http:// or https://"};
  }
  c.admin_token = get("WACHAT_ADMIN_TOKEN");
  if (c.admin_token && c.admin_token->size() < 16) {
    return std::string{"WACHAT_ADMIN_TOKEN must be at least 16 characters"};
  }
  if (auto v = get("WACHAT_MASTER_KEY")) {
    auto key = base64_decode(*v);
    if (!key || key->size() != 32) {
      return std::string{"WACHAT_MASTER_KEY must be 32 bytes encoded as base64 (44 characters)"};
    }
    std::array<unsigned char, 32> k{};
    std::copy(key->begin(), key->end(), k.begin());
    c.master_key = k;
  }
  if (auto v = get("WACHAT_MEDIA_DIR")) {
    c.media_dir = *v;
  }
  if (auto v = get("WACHAT_GRAPH_BASE_URL")) {
    if (!v->starts_with("http://") && !v->starts_with("https://")) {
      return std::string{"WACHAT_GRAPH_BASE_URL must start with http:// or https://"};
    }
    c.graph_base_url = *v;
    while (!c.graph_base_url.empty() && c.graph_base_url.back() == '/') {
      c.graph_base_url.pop_back();
    }
  }
  if (auto v = get("WACHAT_GRAPH_VERSION")) {
    c.graph_version = *v;
  }
  c.graph_ca_file = get("WACHAT_GRAPH_CA_FILE");

  struct number_setting {
    const char* key;
    std::uint64_t min;
    std::uint64_t max;
    std::uint64_t* target;
  };
  std::uint64_t webhook_max = c.webhook_max_bytes, send_wait = c.send_wait_ms, send_doubt = c.send_doubt_ms,
                ttl = c.media_url_ttl, req_to = c.request_timeout_ms,
                commit_to = c.commit_timeout_ms, threads = c.http_threads,
                writers = c.intake_writers, batch = c.intake_batch_max,
                api_max = c.api_max_body_bytes, inbound_writers = c.inbound_writers,
                conversation_idle = c.conversation_idle_ms, inbox_lease = c.inbox_lease_ms,
                media_workers = c.media_workers, media_retry = c.media_retry_ms, media_stall = c.media_stall_ms,
                media_yield = c.media_yield_ms, crm_retry = c.crm_retry_ms;
  const number_setting numbers[] = {
      {"WACHAT_WEBHOOK_MAX_BYTES", 1024, 1ULL << 30, &webhook_max},
      {"WACHAT_SEND_WAIT_MS", 0, 600000, &send_wait},
      {"WACHAT_SEND_DOUBT_MS", 1000, 86400000, &send_doubt},
      {"WACHAT_MEDIA_URL_TTL", 1, 31536000, &ttl},
      {"WACHAT_REQUEST_TIMEOUT_MS", 100, 3600000, &req_to},
      {"WACHAT_COMMIT_TIMEOUT_MS", 100, 600000, &commit_to},
      {"WACHAT_HTTP_THREADS", 1, 256, &threads},
      {"WACHAT_INTAKE_WRITERS", 1, 64, &writers},
      {"WACHAT_INTAKE_BATCH_MAX", 1, 100000, &batch},
      {"WACHAT_API_MAX_BODY_BYTES", 1024, 1ULL << 30, &api_max},
      {"WACHAT_INBOUND_WRITERS", 1, 64, &inbound_writers},
      {"WACHAT_CONVERSATION_IDLE_MS", 10, 86400000, &conversation_idle},
      {"WACHAT_INBOX_LEASE_MS", 100, 86400000, &inbox_lease},
      {"WACHAT_MEDIA_WORKERS", 1, 256, &media_workers},
      {"WACHAT_MEDIA_RETRY_MS", 10, 3600000, &media_retry},
      {"WACHAT_MEDIA_STALL_MS", 100, 600000, &media_stall},
      {"WACHAT_MEDIA_YIELD_MS", 0, 60000, &media_yield},
      {"WACHAT_CRM_RETRY_MS", 10, 3600000, &crm_retry},
  };
  for (const auto& n : numbers) {
    if (auto v = get(n.key)) {
      auto parsed = parse_unsigned<std::uint64_t>(*v, n.min, n.max);
      if (!parsed) {
        return fmt::format("{} must be a whole number from {} to {}, got '{}'", n.key, n.min,
                           n.max, *v);
      }
      *n.target = *parsed;
    }
  }
  c.webhook_max_bytes = webhook_max;
  c.send_wait_ms = static_cast<std::uint32_t>(send_wait);
  c.send_doubt_ms = static_cast<std::uint32_t>(send_doubt);
  c.media_url_ttl = static_cast<std::uint32_t>(ttl);
  c.request_timeout_ms = static_cast<std::uint32_t>(req_to);
  c.commit_timeout_ms = static_cast<std::uint32_t>(commit_to);
  c.http_threads = static_cast<std::uint32_t>(threads);
  c.intake_writers = static_cast<std::uint32_t>(writers);
  c.intake_batch_max = static_cast<std::uint32_t>(batch);
  c.api_max_body_bytes = api_max;
  c.inbound_writers = static_cast<std::uint32_t>(inbound_writers);
  c.conversation_idle_ms = static_cast<std::uint32_t>(conversation_idle);
  c.inbox_lease_ms = static_cast<std::uint32_t>(inbox_lease);
  c.media_workers = static_cast<std::uint32_t>(media_workers);
  c.media_retry_ms = static_cast<std::uint32_t>(media_retry);
  c.media_stall_ms = static_cast<std::uint32_t>(media_stall);
  c.media_yield_ms = static_cast<std::uint32_t>(media_yield);
  c.crm_retry_ms = static_cast<std::uint32_t>(crm_retry);

  c.phone_number_id = get("WHATSAPP_PHONE_NUMBER_ID");
  c.business_account_id = get("WHATSAPP_BUSINESS_ACCOUNT_ID");
  c.access_token = get("WHATSAPP_ACCESS_TOKEN");
  c.verify_token = get("WHATSAPP_VERIFY_TOKEN");
  c.app_secret = get("WHATSAPP_APP_SECRET");
  if (c.public_url.empty()) {
    auto host = c.listen_host.find(':') != std::string::npos ? "[" + c.listen_host + "]"
                                                              : c.listen_host;
    c.public_url = fmt::format("http://{}:{}", host, c.listen_port);
  }
  return c;
}

std::string help_text() {
  std::string out =
      "Usage: wachatd [--config FILE] [--help] [--version]\n\n"
      "wachat: WhatsApp Business Cloud API <-> live-chat dashboard server.\n\n"
      "Options:\n"
      "  --config FILE   read KEY=value settings from FILE (the environment wins)\n"
      "  --help          show this help and exit\n"
      "  --version       print the version and exit\n\n"
      "Settings (environment variables or config file keys):\n";
  for (const auto& [key, doc] : known_settings()) {
    out += fmt::format("  {:<30} {} [default: {}]\n", key, doc.description, doc.default_value);
  }
  return out;
}

}  // namespace wachat::infra

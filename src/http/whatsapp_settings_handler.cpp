#include "http/whatsapp_settings_handler.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "infra/graph_client.hpp"
#include "http/site_queries.hpp"
#include "infra/url.hpp"
#include "infra/crypto.hpp"
#include "infra/log.hpp"

namespace wachat::http {
namespace {

using nlohmann::json;

constexpr std::size_t max_id_chars = 64;
constexpr std::size_t max_token_chars = 2048;

response json_ok(const json& j) {
  return json_body(bhttp::status::ok, j.dump(-1, ' ', false, json::error_handler_t::replace));
}

json graph_error_json(const infra::graph_error& e) {
  return {{"code", e.code},
          {"title", e.title},
          {"details", e.details},
          {"fbtrace_id", e.fbtrace_id.empty() ? json(nullptr) : json(e.fbtrace_id)}};
}

response graph_failure(bhttp::status status, std::string_view code, std::string_view message,
                       const infra::graph_error& e) {
  json j = {{"error", {{"code", code}, {"message", message}, {"graph", graph_error_json(e)}}}};
  return json_body(status, j.dump(-1, ' ', false, json::error_handler_t::replace));
}

// Meta's answer to GET /{phone_number_id}?fields=... as the `phone` object we hand back.
json phone_fields(const std::string& body) {
  auto j = json::parse(body, nullptr, false);
  json out = json::object();
  if (!j.is_object()) {
    return out;
  }
  for (const char* key : {"id", "display_phone_number", "verified_name", "quality_rating"}) {
    if (j.contains(key) && j[key].is_string()) {
      out[key] = j[key];
    }
  }
  return out;
}

// Ids are opaque (API.md §3): bounded and printable, then percent-encoded into the Graph path.
std::optional<std::string> checked_id(const simdjson::dom::object& o, std::string_view key) {
  auto v = opt_string(o, key);
  if (!v) {
    return v;
  }
  bool printable = std::all_of(v->begin(), v->end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; });
  if (v->empty() || v->size() > max_id_chars || !printable) {
    fail(bhttp::status::unprocessable_entity, "invalid_field",
         fmt::format("Field '{}' must be 1 to {} printable ASCII characters.", key, max_id_chars));
  }
  return v;
}

infra::graph_request phone_check(const std::string& phone_number_id, std::string token) {
  infra::graph_request req;
  req.path = "/" + infra::percent_encode(phone_number_id);
  req.query = {{"fields", "display_phone_number,verified_name,quality_rating"}};
  req.access_token = std::move(token);
  return req;
}

// What PUT settings will write once Graph has accepted the credentials.
struct settings_update {
  std::string site;
  std::string phone_number_id;
  std::optional<std::string> phone_number;
  std::optional<std::string> business_account_id;
  std::optional<std::string> new_token;  // to seal and store; absent keeps the stored one
  std::optional<std::string> welcome_template;
  std::optional<std::string> read_receipts;
  std::optional<bool> auto_assign;
  std::optional<bool> crm_sync;
  bool enabled = true;
};

settings_update parse_update(const std::string& site, const std::string& body,
                             const site_settings& current, const infra::config& cfg) {
  auto doc = parse_json_object(body);
  const auto& o = doc->object;
  settings_update u;
  u.site = site;
  auto id = checked_id(o, "phone_number_id");
  if (!id) {
    id = current.phone_number_id;
  }
  if (!id) {
    fail(bhttp::status::unprocessable_entity, "invalid_field", "Field 'phone_number_id' is required.");
  }
  u.phone_number_id = *id;
  u.business_account_id = checked_id(o, "business_account_id");
  u.phone_number = opt_string(o, "phone_number");
  if (u.phone_number && (u.phone_number->empty() || u.phone_number->size() > 32)) {
    fail(bhttp::status::unprocessable_entity, "invalid_field",
         "Field 'phone_number' must be 1 to 32 characters.");
  }
  u.new_token = opt_string(o, "access_token");
  if (u.new_token) {
    bool printable = std::all_of(u.new_token->begin(), u.new_token->end(),
                                 [](unsigned char c) { return c > 0x20 && c < 0x7f; });
    if (u.new_token->empty() || u.new_token->size() > max_token_chars || !printable) {
      fail(bhttp::status::unprocessable_entity, "invalid_field",
           "Field 'access_token' must be 1 to 2048 printable ASCII characters.");
    }
    if (!cfg.master_key) {
      fail(bhttp::status::service_unavailable, "unavailable",
           "WACHAT_MASTER_KEY is not set: a per-site access token cannot be stored encrypted.");
    }
  }
  u.welcome_template = opt_string(o, "welcome_template");
  if (u.welcome_template && (u.welcome_template->empty() || u.welcome_template->size() > 512)) {
    fail(bhttp::status::unprocessable_entity, "invalid_field",
         "Field 'welcome_template' must be 1 to 512 characters.");
  }
  u.read_receipts = opt_string(o, "read_receipts");
  if (u.read_receipts && *u.read_receipts != "on_receipt" && *u.read_receipts != "on_agent_view" &&
      *u.read_receipts != "off") {
    fail(bhttp::status::unprocessable_entity, "invalid_field",
         "Field 'read_receipts' must be on_receipt, on_agent_view or off.");
  }
  u.auto_assign = opt_bool(o, "auto_assign");
  u.crm_sync = opt_bool(o, "crm_sync");
  u.enabled = opt_bool(o, "enabled").value_or(true);
  return u;
}

// The token PUT validates with: the one given, else the site's stored one, else the env one.
std::string validation_token(const settings_update& u, const site_settings& current,
                             const infra::config& cfg) {
  if (u.new_token) {
    return *u.new_token;
  }
  if (current.has_site_token) {
    if (!current.site_access_token) {
      fail(bhttp::status::unprocessable_entity, "invalid_field",
           "The stored access token cannot be opened with the current WACHAT_MASTER_KEY; "
           "send 'access_token' again.");
    }
    return *current.site_access_token;
  }
  if (cfg.access_token) {
    return *cfg.access_token;
  }
  fail(bhttp::status::unprocessable_entity, "invalid_field",
       "Field 'access_token' is required: the site has none and WHATSAPP_ACCESS_TOKEN is not set.");
}

response save_settings(pqxx::connection_base& c, const infra::config& cfg,
                       const settings_update& u, const json& phone) {
  // Sealed bytes travel as hex text (decoded by PostgreSQL) so NULL can mean "keep the stored one".
  std::optional<std::string> sealed_hex;
  if (u.new_token) {
    auto sealed = infra::seal(*cfg.master_key, *u.new_token, "site:" + u.site);
    sealed_hex = infra::hex_encode(reinterpret_cast<const unsigned char*>(sealed.data()), sealed.size());
  }
  // Without a phone_number the stored one stays; a site that has none takes Meta's display number.
  std::optional<std::string> display;
  if (phone.contains("display_phone_number")) {
    display = phone["display_phone_number"].get<std::string>();
  }
  pqxx::work w{c};
  try {
    auto r = w.exec_params(
        "UPDATE mod_chat_widget_settings SET whatsapp_phone_number_id = $2,"
        " whatsapp_phone_number = COALESCE($3, whatsapp_phone_number, $11),"
        " whatsapp_business_account_id = COALESCE($4, whatsapp_business_account_id),"
        " whatsapp_access_token_encrypted = COALESCE(decode($5, 'hex'), whatsapp_access_token_encrypted),"
        " whatsapp_welcome_template = COALESCE($6, whatsapp_welcome_template),"
        " read_receipts = COALESCE($7, read_receipts), auto_assign = COALESCE($8, auto_assign),"
        " crm_sync = COALESCE($9, crm_sync), whatsapp_enabled = $10,"
        " last_check_at = now(), last_check_ok = true, last_check_error = NULL, updated_at = now()"
        " WHERE site_id = $1",
        u.site, u.phone_number_id, u.phone_number, u.business_account_id, sealed_hex,
        u.welcome_template, u.read_receipts, u.auto_assign, u.crm_sync, u.enabled, display);
    if (r.affected_rows() == 0) {
      not_found();
    }
  } catch (const pqxx::unique_violation&) {
    fail(bhttp::status::conflict, "phone_number_in_use",
         "Another site uses this phone_number_id already.");
  }
  w.commit();
  infra::log_info("site_settings_saved", {{"site", u.site}, {"token_changed", u.new_token ? "yes" : "no"}});
  return json_ok({{"success", true}, {"phone", phone}});
}

void record_check(pqxx::connection_base& c, const std::string& site, bool ok,
                  const std::optional<std::string>& error) {
  pqxx::work w{c};
  w.exec_params(
      "UPDATE mod_chat_widget_settings SET last_check_at = now(), last_check_ok = $2,"
      " last_check_error = $3 WHERE site_id = $1",
      site, ok, error);
  w.commit();
}

site_settings load_visible(pqxx::connection_base& c, const infra::config& cfg,
                           const principal& who, const std::string& site) {
  if (!who.may_see(site)) {
    not_found();
  }
  pqxx::nontransaction nt{c};
  auto s = load_site_settings(nt, cfg, site);
  if (!s) {
    not_found();
  }
  return *s;
}

void put_settings(api_context& api, request_context& rc, responder respond) {
  auto site = rc.params["site"];
  auto body = rc.req.body();
  run_authenticated_deferred(
      api, rc, std::move(respond), access::any_principal,
      [&api, site, body](pqxx::connection_base& c, const principal& who, responder done) {
        auto current = load_visible(c, *api.cfg, who, site);
        auto update = parse_update(site, body, current, *api.cfg);
        auto token = validation_token(update, current, *api.cfg);
        api.graph->request(
            phone_check(update.phone_number_id, std::move(token)),
            [&api, update, done](infra::graph_response res) {
              if (!res.ok()) {
                auto action = domain::classify_graph_error(*res.error);
                // Meta answered and said no: the credentials (or the id) are wrong. Nothing saved.
                bool refused = !res.error->transport && res.status >= 400 && res.status < 500 &&
                               !domain::is_retryable(action);
                infra::log_info("site_settings_rejected",
                                {{"site", update.site}, {"graph_code", std::to_string(res.error->code)}});
                return done(refused ? graph_failure(bhttp::status::unprocessable_entity,
                                                    "graph_rejected_credentials",
                                                    "The Graph API refused these credentials; nothing was saved.",
                                                    *res.error)
                                    : graph_failure(bhttp::status::bad_gateway, "graph_error",
                                                    "The Graph API could not be reached to check "
                                                    "the credentials; nothing was saved.",
                                                    *res.error));
              }
              auto phone = phone_fields(res.body);
              run_db(api, done, [&api, update, phone](pqxx::connection_base& c2) {
                auto answer = save_settings(c2, *api.cfg, update, phone);
                // Events that waited for this phone number id can be routed now.
                if (api.wake_dispatcher) {
                  api.wake_dispatcher();
                }
                return answer;
              });
            });
      });
}

void post_test(api_context& api, request_context& rc, responder respond) {
  auto site = rc.params["site"];
  run_authenticated_deferred(
      api, rc, std::move(respond), access::any_principal,
      [&api, site](pqxx::connection_base& c, const principal& who, responder done) {
        auto current = load_visible(c, *api.cfg, who, site);
        auto token = current.effective_token(*api.cfg);
        auto phone_id = current.effective_phone_number_id(*api.cfg);
        if (!token || !phone_id) {
          std::string why = current.has_site_token && !token
                                ? "The stored access token cannot be opened with the current "
                                  "WACHAT_MASTER_KEY."
                                : "No credentials: save settings or set the WHATSAPP_* variables.";
          record_check(c, site, false, why);
          return done(json_ok({{"ok", false},
                               {"phone", nullptr},
                               {"error", {{"code", 0}, {"title", why}, {"details", ""}, {"fbtrace_id", nullptr}}}}));
        }
        api.graph->request(phone_check(*phone_id, *token), [&api, site, done](infra::graph_response res) {
          run_db(api, done, [site, res](pqxx::connection_base& c2) {
            if (!res.ok()) {
              record_check(c2, site, false, res.error->title);
              return json_ok({{"ok", false}, {"phone", nullptr}, {"error", graph_error_json(*res.error)}});
            }
            record_check(c2, site, true, std::nullopt);
            return json_ok({{"ok", true}, {"phone", phone_fields(res.body)}, {"error", nullptr}});
          });
        });
      });
}

}  // namespace

void add_whatsapp_settings_routes(router& r, api_context& api) {
  r.add(bhttp::verb::put, "/api/sites/{site}/whatsapp/settings", api.cfg->api_max_body_bytes,
        [&api](request_context& rc, responder respond) { put_settings(api, rc, std::move(respond)); });
  r.add(bhttp::verb::post, "/api/sites/{site}/whatsapp/test", api.cfg->api_max_body_bytes,
        [&api](request_context& rc, responder respond) { post_test(api, rc, std::move(respond)); });
}

}  // namespace wachat::http

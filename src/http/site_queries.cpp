#include "http/site_queries.hpp"

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "infra/cached_statement.hpp"
#include "domain/masking.hpp"
#include "http/api_common.hpp"
#include "http/webhook_handler.hpp"
#include "http/responses.hpp"
#include "infra/conversation_owners.hpp"

namespace wachat::http {

bool site_exists(pqxx::transaction_base& tx, const std::string& site_id) {
  return !infra::exec_cached(tx, "site_exists", "SELECT 1 FROM sites WHERE id = $1", site_id).empty();
}

void require_site(pqxx::connection_base& conn, const principal& who, const std::string& site_id) {
  if (!who.may_see(site_id)) {
    not_found();
  }
  pqxx::read_transaction t{conn};
  if (!site_exists(t, site_id)) {
    not_found();
  }
}

nlohmann::json site_status_json(const infra::site_settings& s, const infra::config& cfg) {
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

nlohmann::json graph_error_json(const domain::graph_error& e) {
  using nlohmann::json;
  return {{"code", e.code},
          {"title", e.title},
          {"details", e.details},
          {"fbtrace_id", e.fbtrace_id.empty() ? json(nullptr) : json(e.fbtrace_id)}};
}

response site_answer_error(const actors::site_answer& a) {
  using nlohmann::json;
  using kind = actors::site_answer::kind;
  auto graph_failure = [&](bhttp::status status, std::string_view code) {
    json j = {{"error", {{"code", code}, {"message", a.message}, {"graph", graph_error_json(*a.graph)}}}};
    return json_body(status, j.dump(-1, ' ', false, json::error_handler_t::replace));
  };
  switch (a.what) {
    case kind::not_found:
      return json_error(bhttp::status::not_found, "not_found", "No such resource.");
    case kind::invalid:
      return json_error(bhttp::status::unprocessable_entity, "invalid_field", a.message);
    case kind::conflict:
      return json_error(bhttp::status::conflict, "phone_number_in_use", a.message);
    case kind::template_invalid:
      return json_error(bhttp::status::unprocessable_entity, "template_invalid", a.message);
    case kind::graph_refused:
      if (a.graph) {
        return graph_failure(bhttp::status::unprocessable_entity, "graph_rejected_credentials");
      }
      break;
    case kind::graph_unreachable:
      if (a.graph) {
        return graph_failure(bhttp::status::bad_gateway, "graph_error");
      }
      break;
    case kind::ok:
    case kind::unavailable:
      break;
  }
  return json_error(bhttp::status::service_unavailable, "unavailable", a.message);
}

conversation_owner owner_of(pqxx::connection_base& c, const std::string& id_text, const principal& who) {
  auto id = parse_id(id_text);
  if (!id) {
    not_found();
  }
  auto owner = infra::find_conversation_owner(c, *id);
  if (!owner || !who.may_see(owner->site)) {
    not_found();
  }
  return {*id, std::move(owner->site), std::move(owner->key)};
}


}  // namespace wachat::http

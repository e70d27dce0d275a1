#include "http/whatsapp_settings_handler.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "actors/site/site_client.hpp"
#include "domain/outbound.hpp"
#include "http/site_queries.hpp"
#include "infra/url.hpp"

namespace wachat::http {
namespace {

using nlohmann::json;

constexpr std::size_t max_id_chars = 64;
constexpr std::size_t max_token_chars = 2048;

response json_ok(const json& j) {
  return json_body(bhttp::status::ok, j.dump(-1, ' ', false, json::error_handler_t::replace));
}

json phone_object(const std::string& text) {
  auto j = json::parse(text, nullptr, false);
  return j.is_object() ? j : json::object();
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

// A keyword list: up to 50 strings of 1 to 64 characters (matched trimmed, in any case).
std::optional<std::vector<std::string>> keyword_list(const simdjson::dom::object& o, std::string_view key) {
  simdjson::dom::element el;
  if (o.at_key(key).get(el) != simdjson::SUCCESS || el.is_null()) {
    return std::nullopt;
  }
  simdjson::dom::array arr;
  auto bad = [key] {
    fail(bhttp::status::unprocessable_entity, "invalid_field",
         fmt::format("Field '{}' must be a list of up to 50 words of 1 to 64 characters.", key));
  };
  if (el.get_array().get(arr) != simdjson::SUCCESS || arr.size() > 50) {
    bad();
  }
  std::vector<std::string> out;
  for (auto item : arr) {
    std::string_view word;
    if (item.get_string().get(word) != simdjson::SUCCESS || word.empty() || word.size() > 64) {
      bad();
    }
    out.emplace_back(word);
  }
  return out;
}

// The request's fields, checked; what they mean for the site is the site actor's to decide.
infra::site_settings_update parse_update(const std::string& body, const infra::config& cfg) {
  auto doc = parse_json_object(body);
  const auto& o = doc->object;
  infra::site_settings_update u;
  u.phone_number_id = checked_id(o, "phone_number_id");
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
  if (auto rate = opt_int(o, "messages_per_second")) {
    if (*rate < 1 || *rate > 1000) {
      fail(bhttp::status::unprocessable_entity, "invalid_field",
           "Field 'messages_per_second' must be a whole number from 1 to 1000.");
    }
    u.messages_per_second = static_cast<int>(*rate);
  }
  u.opt_out_keywords = keyword_list(o, "opt_out_keywords");
  u.opt_in_keywords = keyword_list(o, "opt_in_keywords");
  u.crm_sync = opt_bool(o, "crm_sync");
  u.enabled = opt_bool(o, "enabled").value_or(true);
  return u;
}

void put_settings(api_context& api, const principal& who, const api_call& call, responder done) {
        const auto& site = call.params.at("site");
        if (!who.may_see(site)) {
          not_found();
        }
        api.sites->change(site, parse_update(call.body, *api.cfg), [&api, done](actors::site_answer a) {
          if (a.what != actors::site_answer::kind::ok) {
            return done(site_answer_error(a));
          }
          // Events that waited for this phone number id can be routed now.
          if (api.wake_dispatcher) {
            api.wake_dispatcher();
          }
          done(json_ok({{"success", true}, {"phone", phone_object(a.phone_json)}}));
        });
}

void post_test(api_context& api, const principal& who, const api_call& call, responder done) {
        const auto& site = call.params.at("site");
        if (!who.may_see(site)) {
          not_found();
        }
        api.sites->check(site, [done](actors::site_answer a) {
          if (a.what != actors::site_answer::kind::ok) {
            return done(site_answer_error(a));
          }
          if (a.check_ok) {
            return done(json_ok({{"ok", true}, {"phone", phone_object(a.phone_json)}, {"error", nullptr}}));
          }
          json error = a.graph ? graph_error_json(*a.graph)
                               : json{{"code", 0}, {"title", a.message}, {"details", ""}, {"fbtrace_id", nullptr}};
          done(json_ok({{"ok", false}, {"phone", nullptr}, {"error", error}}));
        });
}


// 502 graph_error for a Graph call made on the site's behalf, with Meta's error when it answered.
response graph_call_failed(const actors::site_answer& a, const std::string& message) {
  json e{{"code", "graph_error"}, {"message", message}};
  if (a.graph && !a.graph->transport) {
    e["graph"] = graph_error_json(*a.graph);
  }
  return json_body(bhttp::status::bad_gateway, dump(json{{"error", e}}));
}

// Why a site actor could not carry a call out: no credentials or WABA (409), or as for settings.
response not_done(const actors::site_answer& a) {
  if (a.what == actors::site_answer::kind::invalid) {
    return json_error(bhttp::status::conflict, "whatsapp_disabled", a.message);
  }
  return site_answer_error(a);
}

// GET .../whatsapp/templates[?refresh=true]: the site actor's cache, fetched if stale.
void get_templates(api_context& api, const principal& who, const api_call& call, responder done) {
  const auto& site = call.params.at("site");
  if (!who.may_see(site)) {
    not_found();
  }
  auto refresh = infra::query_value(call.query, "refresh");
  if (refresh && *refresh != "true" && *refresh != "false") {
    fail(bhttp::status::unprocessable_entity, "invalid_field", "refresh must be true or false.");
  }
  api.sites->templates(site, refresh == "true", [done](actors::site_answer a) {
    using K = actors::site_answer::kind;
    if (a.what == K::ok) {
      return done(json_body(bhttp::status::ok, a.templates_json));
    }
    if (a.what == K::graph_refused || a.what == K::graph_unreachable) {
      return done(graph_call_failed(a, "WhatsApp did not list the templates: " + a.message));
    }
    done(not_done(a));
  });
}

// POST .../whatsapp/test-message {"to", "text"} or {"to", "template"}: Meta's wamid, or 502.
void post_test_message(api_context& api, const principal& who, const api_call& call, responder done) {
  const auto& site = call.params.at("site");
  if (!who.may_see(site)) {
    not_found();
  }
  auto doc = json::parse(call.body, nullptr, false);
  if (!doc.is_object()) {
    fail(bhttp::status::bad_request, "invalid_json", "Request body must be a JSON object.");
  }
  std::string to;
  if (doc.contains("to") && doc["to"].is_string()) {
    for (char c : doc["to"].get<std::string>()) {
      if (c >= '0' && c <= '9') {
        to.push_back(c);
      } else if (c != '+' && c != ' ' && c != '-' && c != '(' && c != ')') {
        to.clear();
        break;
      }
    }
  }
  if (to.size() < 6 || to.size() > 20) {
    fail(bhttp::status::unprocessable_entity, "invalid_field",
         "Field 'to' must be a phone number in international format, e.g. +260971234567.");
  }
  // The content is checked as a send's (domain::parse_outbound).
  json request{{"sender_id", "test"}, {"sender_name", "test"}};
  if (doc.contains("template")) {
    request["type"] = "template";
    request["template"] = doc["template"];
  } else {
    request["type"] = "text";
    request["text"] = doc.contains("text") ? doc["text"] : json(nullptr);
  }
  auto parsed = domain::parse_outbound(request.dump());
  if (auto* p = std::get_if<domain::request_problem>(&parsed)) {
    fail(bhttp::status::unprocessable_entity, "invalid_field", p->message);
  }
  api.sites->test_message(site, to, std::get<domain::outbound_request>(std::move(parsed)), [done](actors::site_answer a) {
    using K = actors::site_answer::kind;
    if (a.what == K::ok && !a.whatsapp_message_id.empty()) {
      return done(json_ok({{"whatsapp_message_id", a.whatsapp_message_id}}));
    }
    if (a.what == K::ok || a.what == K::graph_refused || a.what == K::graph_unreachable) {
      return done(graph_call_failed(a, "WhatsApp did not take the test message."));
    }
    done(not_done(a));
  });
}

}  // namespace

void add_whatsapp_settings_routes(router& r, api_context& api) {
  add_deferred_api_route(r, api, bhttp::verb::post, "/api/sites/{site}/whatsapp/test-message",
                         api.cfg->api_max_body_bytes, access::any_principal,
                         [&api](pqxx::connection_base&, const principal& who, const api_call& call,
                                responder done) { post_test_message(api, who, call, std::move(done)); },
                         std::chrono::seconds(45));
  add_deferred_api_route(r, api, bhttp::verb::get, "/api/sites/{site}/whatsapp/templates", 0,
                         access::any_principal,
                         [&api](pqxx::connection_base&, const principal& who, const api_call& call,
                                responder done) { get_templates(api, who, call, std::move(done)); },
                         std::chrono::seconds(45));
  add_deferred_api_route(r, api, bhttp::verb::put, "/api/sites/{site}/whatsapp/settings",
                         api.cfg->api_max_body_bytes, access::any_principal,
                         [&api](pqxx::connection_base&, const principal& who, const api_call& call,
                                responder done) { put_settings(api, who, call, std::move(done)); });
  add_deferred_api_route(r, api, bhttp::verb::post, "/api/sites/{site}/whatsapp/test",
                         api.cfg->api_max_body_bytes, access::any_principal,
                         [&api](pqxx::connection_base&, const principal& who, const api_call& call,
                                responder done) { post_test(api, who, call, std::move(done)); });
}

}  // namespace wachat::http

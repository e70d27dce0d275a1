#include "http/messages_handler.hpp"

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "actors/site/site_client.hpp"
#include "domain/outbound.hpp"
#include "http/site_queries.hpp"

namespace wachat::http {
namespace {

using nlohmann::json;
using actors::send_reply;

response with_message(bhttp::status status, const std::string& message_text) {
  json m = json::parse(message_text, nullptr, false);
  return json_body(status, dump(json{{"message", m.is_discarded() ? json(nullptr) : m}}));
}

response graph_failure(const std::string& message_text, const std::optional<domain::graph_error>& graph) {
  json m = json::parse(message_text, nullptr, false);
  json g = nullptr;
  if (graph) {
    g = graph_error_json(*graph);
  } else if (m.is_object() && m["error"].is_object()) {
    // A replay of a send that failed: Meta's error as stored with the message.
    g = {{"code", m["error"]["code"]}, {"title", m["error"]["title"]}, {"details", m["error"]["details"]},
         {"fbtrace_id", nullptr}};
  }
  json body{{"error", {{"code", "graph_error"}, {"message", "WhatsApp refused the message."}, {"graph", g}}},
            {"message", m.is_discarded() ? json(nullptr) : m}};
  return json_body(bhttp::status::bad_gateway, dump(body));
}

// The first outcome of a send, read from its message as it is now.
response replayed(const std::string& message_text) {
  json m = json::parse(message_text, nullptr, false);
  auto status = m.is_object() && m["status"].is_string() ? m["status"].get<std::string>() : "";
  if (status == "failed") {
    return graph_failure(message_text, std::nullopt);
  }
  return with_message(status == "queued" ? bhttp::status::accepted : bhttp::status::created, message_text);
}

response answer_of(const send_reply& r) {
  using K = send_reply::kind;
  switch (r.what) {
    case K::sent: return with_message(bhttp::status::created, r.message);
    case K::queued: return with_message(bhttp::status::accepted, r.message);
    case K::failed: return graph_failure(r.message, r.graph);
    case K::replayed: return replayed(r.message);
    case K::window_closed:
      return json_error(bhttp::status::conflict, "window_closed", "24-hour window expired. Use template message.");
    case K::recipient_opted_out:
      return json_error(bhttp::status::conflict, "recipient_opted_out",
                        "The customer stopped marketing messages; a MARKETING template is not sent.");
    case K::idempotency_conflict:
      return json_error(bhttp::status::conflict, "idempotency_conflict",
                        "client_message_id was used before for a different message.");
    case K::unknown_reply:
      return json_error(bhttp::status::unprocessable_entity, "invalid_field",
                        "reply_to names no message of this conversation that WhatsApp knows.");
    case K::reacted: return with_message(bhttp::status::ok, r.message);
    case K::unknown_target:
      return json_error(bhttp::status::unprocessable_entity, "invalid_field",
                        "message_id names no message of this conversation that WhatsApp knows.");
    case K::refused: {
      json e{{"code", "graph_error"}, {"message", "WhatsApp refused the reaction."}};
      if (r.graph) {
        e["graph"] = graph_error_json(*r.graph);
      }
      return json_body(bhttp::status::bad_gateway, dump(json{{"error", e}}));
    }
    case K::template_invalid:
      return json_error(bhttp::status::unprocessable_entity, "template_invalid", r.error);
    case K::templates_unavailable: {
      json g = r.graph ? graph_error_json(*r.graph) : json(nullptr);
      json e{{"code", "graph_error"},
             {"message", "The site's templates could not be fetched from WhatsApp" +
                             (r.graph ? ": " + r.graph->title : std::string{}) + "."}};
      if (!g.is_null() && (r.graph->code != 0 || r.graph->http_status != 0)) {
        e["graph"] = g;
      }
      return json_body(bhttp::status::bad_gateway, dump(json{{"error", e}}));
    }
    case K::no_recipient:
      return json_error(bhttp::status::conflict, "invalid_state",
                        "The visitor has neither a phone number nor a WhatsApp user id to send to.");
    case K::not_found: return json_error(bhttp::status::not_found, "not_found", "No such resource.");
    case K::invalid_state:
      return json_error(bhttp::status::conflict, "invalid_state",
                        "Only an agent's message whose send failed can be sent again.");
    case K::disabled:
      return json_error(bhttp::status::conflict, "whatsapp_disabled", "WhatsApp is disabled for this site.");
    case K::credentials_refused:
      return json_error(bhttp::status::conflict, "whatsapp_disabled",
                        r.error + ". Save working credentials (PUT .../whatsapp/settings) or pass a test first.");
    case K::not_configured:
      return json_error(bhttp::status::conflict, "whatsapp_disabled",
                        "WhatsApp is not configured for this site (no phone number id or access token).");
    case K::unavailable: break;
  }
  return json_error(bhttp::status::service_unavailable, "unavailable", "The message could not be taken now; try again.");
}

// A `media_id` must name a file uploaded to this conversation's site, of the message's type.
void attach_upload(pqxx::connection_base& c, const std::string& site, domain::outbound_request& request) {
  pqxx::read_transaction t{c};
  auto r = t.exec_params("SELECT kind, file_name, mime_type, file_size FROM wa_uploads WHERE key = $1 AND site_id = $2",
                         request.media_id, site);
  const auto kind = request.kind == domain::outbound_kind::image ? "image" : "document";
  if (r.empty() || r[0][0].as<std::string>() != kind) {
    fail(bhttp::status::unprocessable_entity, "invalid_field",
         std::string{"media_id names no "} + kind + " uploaded to this site (POST /api/sites/{site}/media).");
  }
  request.upload = domain::outbound_request::uploaded_file{r[0][1].as<std::string>(), r[0][2].as<std::string>(),
                                                           r[0][3].as<std::int64_t>()};
  if (request.kind == domain::outbound_kind::document && request.filename.empty()) {
    request.filename = request.upload->file_name;
  }
}

// Hands a send or retry to the site actors, for the caller's site only (any, for the admin),
// and answers it with its outcome.
void ask_send(api_context& api, std::chrono::milliseconds within, const principal& who, actors::outbound_send s,
              const responder& done) {
  api.sites->send(who.admin ? std::string{} : who.site_id, std::move(s), within,
                  [done](send_reply reply) { done(answer_of(reply)); });
}

// A send needs the database only for an uploaded file's facts (`media_id`); the conversation's
// site and customer are the directory's to find.
bool send_message(api_context& api, std::chrono::milliseconds within, pqxx::connection_base* c,
                  const principal& who, const api_call& call, const responder& done) {
  auto id = parse_id(call.params.at("id"));
  if (!id) {
    not_found();
  }
  auto parsed = domain::parse_outbound(call.body);
  if (auto* p = std::get_if<domain::request_problem>(&parsed)) {
    fail(p->code == "invalid_json" ? bhttp::status::bad_request : bhttp::status::unprocessable_entity, p->code,
         p->message);
  }
  auto& request = std::get<domain::outbound_request>(parsed);
  if (!request.media_id.empty()) {
    if (c == nullptr) {
      return false;
    }
    attach_upload(*c, owner_of(*c, call.params.at("id"), who).site, request);
  }
  actors::outbound_send s;
  s.conversation_id = *id;
  s.request = std::move(request);
  ask_send(api, within, who, std::move(s), done);
  return true;
}

}  // namespace

void add_message_routes(router& r, api_context& api) {
  const auto wait = std::chrono::milliseconds(api.cfg->send_wait_ms);
  // The send waits for Meta up to the send wait; the database steps around it get 10 s more.
  const auto within = wait + std::chrono::seconds(10);
  add_actor_api_route(
      r, api, bhttp::verb::post, "/api/conversations/{id}/messages", api.cfg->api_max_body_bytes,
      access::any_principal,
      [&api, within](pqxx::connection_base* c, const principal& who, const api_call& call, const responder& done) {
        return send_message(api, within, c, who, call, done);
      },
      within + std::chrono::seconds(5));

  // The same row again, with the same outcomes as a send (API.md §3.4).
  add_actor_api_route(
      r, api, bhttp::verb::post, "/api/conversations/{id}/messages/{message_id}/retry", api.cfg->api_max_body_bytes,
      access::any_principal,
      [&api, within](pqxx::connection_base*, const principal& who, const api_call& call, const responder& done) {
        auto conversation = parse_id(call.params.at("id"));
        auto message = parse_id(call.params.at("message_id"));
        if (!conversation || !message) {
          not_found();
        }
        actors::outbound_send s;
        s.conversation_id = *conversation;
        s.resend_message_id = *message;
        ask_send(api, within, who, std::move(s), done);
        return true;
      },
      within + std::chrono::seconds(5));
}

}  // namespace wachat::http

#include "http/conversations_handler.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "actors/site/site_client.hpp"
#include "infra/chat_views.hpp"
#include "http/site_queries.hpp"
#include "infra/url.hpp"
#include "infra/crypto.hpp"

namespace wachat::http {

using infra::conversation_json;
using infra::conversation_select;
using infra::load_conversation;
using infra::message_json;
using infra::message_select;
namespace {

using nlohmann::json;

response ok(const json& j) { return json_body(bhttp::status::ok, dump(j)); }

std::optional<std::string> scope_of(const principal& who) {
  return who.admin ? std::nullopt : std::optional<std::string>{who.site_id};
}

// Opaque keyset cursor: "<microseconds since epoch>.<id>" in base64.
std::string make_cursor(std::int64_t micros, std::int64_t id) {
  auto text = fmt::format("{}.{}", micros, id);
  return infra::base64_encode(reinterpret_cast<const unsigned char*>(text.data()), text.size());
}

std::pair<std::int64_t, std::int64_t> read_cursor(const std::string& cursor) {
  auto bytes = infra::base64_decode(cursor);
  auto bad = [] { fail(bhttp::status::bad_request, "invalid_request", "Invalid cursor."); };
  if (!bytes || bytes->empty() || bytes->size() > 64) {
    bad();
  }
  std::string text(bytes->begin(), bytes->end());
  auto dot = text.find('.');
  if (dot == std::string::npos) {
    bad();
  }
  auto micros = parse_id(text.substr(0, dot));
  auto id = parse_id(text.substr(dot + 1));
  if (!micros || !id) {
    bad();
  }
  return {*micros, *id};
}

int read_limit(const api_call& call) {
  auto v = infra::query_value(call.query, "limit");
  if (!v) {
    return 50;
  }
  auto n = parse_id(*v);
  if (!n || *n > 200) {
    fail(bhttp::status::unprocessable_entity, "invalid_field",
         "limit must be a whole number from 1 to 200.");
  }
  return static_cast<int>(*n);
}

json agent_json(const pqxx::row& row) {
  return {{"id", row[0].c_str()},          {"site_id", row[1].c_str()},
          {"name", row[2].c_str()},        {"status", row[3].c_str()},
          {"max_chats", row[4].as<int>()}, {"active_chats", row[5].as<int>()}};
}

const char* const agent_select =
    "SELECT a.id, a.site_id, a.name, a.status, a.max_chats,"
    " (SELECT count(*) FROM mod_chat_conversations c WHERE c.site_id = a.site_id"
    "   AND c.assigned_agent_id = a.id AND c.status <> 'closed')::int"
    " FROM mod_chat_agents a ";

// The conversation's id if the caller may see it; 404 otherwise.
std::int64_t visible_conversation(pqxx::transaction_base& tx, const api_call& call,
                                  const principal& who) {
  auto id = parse_id(call.params.at("id"));
  if (!id) {
    not_found();
  }
  auto r = tx.exec_params("SELECT site_id FROM mod_chat_conversations WHERE id = $1", *id);
  if (r.empty() || !who.may_see(r[0][0].as<std::string>())) {
    not_found();
  }
  return *id;
}

// Hands `change` to the conversation's actor and answers with the conversation after it.
void write_through_actor(api_context& api, pqxx::connection_base& c, const principal& who,
                         const std::string& id_text, infra::conversation_change change, responder done) {
  auto owner = owner_of(c, id_text, who);
  change.conversation_id = owner.id;
  change.site = owner.site;
  api.sites->patch(owner.site, owner.key, std::move(change), [done](actors::conversation_reply r) {
    if (r.failed) {
      return done(json_error(bhttp::status::service_unavailable, "unavailable",
                             "The change could not be written now; try again."));
    }
    switch (r.result) {
      case infra::conversation_write::not_found:
        return done(json_error(bhttp::status::not_found, "not_found", "No such resource."));
      case infra::conversation_write::unknown_agent:
        return done(json_error(bhttp::status::unprocessable_entity, "invalid_field",
                               "assigned_agent_id names no agent of this site."));
      case infra::conversation_write::conflict:
        return done(json_error(bhttp::status::conflict, "conversation_conflict",
                               "The visitor has another open WhatsApp conversation."));
      case infra::conversation_write::done:
        break;
    }
    if (r.conversation.empty()) {  // deleted in between
      return done(json_error(bhttp::status::not_found, "not_found", "No such resource."));
    }
    done(json_body(bhttp::status::ok, std::move(r.conversation)));
  });
}

}  // namespace

void add_conversation_routes(router& r, api_context& api) {
  const auto max_body = api.cfg->api_max_body_bytes;

  add_api_route(r, api, bhttp::verb::put, "/api/sites/{site}/agents/{agent}", max_body, access::any_principal,
                            [](pqxx::connection_base& c, const principal& who, const api_call& call) {
                              const auto& site = call.params.at("site");
                              const auto& agent = call.params.at("agent");
                              if (!who.may_see(site)) {
                                not_found();
                              }
                              auto doc = parse_json_object(call.body);
                              auto name = req_string(doc->object, "name");
                              auto status = opt_string(doc->object, "status").value_or("offline");
                              auto max_chats = opt_int(doc->object, "max_chats").value_or(5);
                              if (agent.empty() || agent.size() > 200) {
                                fail(bhttp::status::unprocessable_entity, "invalid_field",
                                     "Agent id must be 1 to 200 characters.");
                              }
                              if (status != "online" && status != "away" && status != "offline") {
                                fail(bhttp::status::unprocessable_entity, "invalid_field",
                                     "status must be online, away or offline.");
                              }
                              if (max_chats < 0 || max_chats > 10000) {
                                fail(bhttp::status::unprocessable_entity, "invalid_field",
                                     "max_chats must be from 0 to 10000.");
                              }
                              if (name.empty() || name.size() > 200) {
                                fail(bhttp::status::unprocessable_entity, "invalid_field",
                                     "name must be 1 to 200 characters.");
                              }
                              pqxx::work w{c};
                              if (!site_exists(w, site)) {
                                not_found();
                              }
                              w.exec_params(
                                  "INSERT INTO mod_chat_agents (site_id, id, name, status, max_chats)"
                                  " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (site_id, id) DO UPDATE"
                                  " SET name = excluded.name, status = excluded.status,"
                                  " max_chats = excluded.max_chats, updated_at = now()",
                                  site, agent, name, status, max_chats);
                              auto row = w.exec_params(std::string{agent_select} +
                                                           "WHERE a.site_id = $1 AND a.id = $2",
                                                       site, agent);
                              w.commit();
                              return ok(agent_json(row[0]));
                            });

  add_api_route(r, api, bhttp::verb::get, "/api/sites/{site}/agents", 0, access::any_principal,
                            [](pqxx::connection_base& c, const principal& who, const api_call& call) {
                              const auto& site = call.params.at("site");
                              require_site(c, who, site);
                              pqxx::nontransaction nt{c};
                              json agents = json::array();
                              for (const auto& row : nt.exec_params(
                                       std::string{agent_select} +
                                           "WHERE a.site_id = $1 ORDER BY a.id",
                                       site)) {
                                agents.push_back(agent_json(row));
                              }
                              return ok({{"agents", agents}});
                            });

  add_api_route(r, api, bhttp::verb::get, "/api/sites/{site}/conversations", 0, access::any_principal,
              [](pqxx::connection_base& c, const principal& who, const api_call& call) {
                const auto& site = call.params.at("site");
                auto channel = infra::query_value(call.query, "channel");
                auto status = infra::query_value(call.query, "status");
                auto cursor = infra::query_value(call.query, "cursor");
                if (!who.may_see(site)) {
                  not_found();
                }
                int limit = read_limit(call);
                if (status && *status != "pending" && *status != "active" && *status != "closed") {
                  fail(bhttp::status::unprocessable_entity, "invalid_field",
                       "status must be pending, active or closed.");
                }
                std::int64_t cur_micros = INT64_MAX, cur_id = INT64_MAX;
                if (cursor) {
                  std::tie(cur_micros, cur_id) = read_cursor(*cursor);
                }
                pqxx::nontransaction nt{c};
                if (!site_exists(nt, site)) {
                  not_found();
                }
                auto rows = nt.exec_params(
                    conversation_select +
                        "WHERE c.site_id = $1 AND ($2::text IS NULL OR c.channel = $2)"
                        " AND ($3::text IS NULL OR c.status = $3)"
                        " AND (c.last_message_at, c.id) < (timestamptz 'epoch' + $4 *"
                        " interval '1 microsecond', $5)"
                        " ORDER BY c.last_message_at DESC, c.id DESC LIMIT $6",
                    site, channel, status, cur_micros == INT64_MAX ? INT64_MAX / 4 : cur_micros,
                    cur_id, limit + 1);
                json list = json::array();
                json next = nullptr;
                for (std::size_t i = 0; i < rows.size() && i < static_cast<std::size_t>(limit);
                     ++i) {
                  list.push_back(conversation_json(rows[i]));
                }
                if (rows.size() > static_cast<std::size_t>(limit)) {
                  auto last_id = rows[limit - 1][0].as<std::int64_t>();
                  auto k = nt.exec_params(
                      "SELECT (extract(epoch from last_message_at) * 1000000)::bigint"
                      " FROM mod_chat_conversations WHERE id = $1",
                      last_id);
                  next = make_cursor(k[0][0].as<std::int64_t>(), last_id);
                }
                return ok({{"conversations", list}, {"next_cursor", next}});
              });

  // The conversation, or just its window (the countdown the dashboard polls).
  for (const auto& [pattern, window_only] :
       {std::pair{"/api/conversations/{id}", false}, std::pair{"/api/conversations/{id}/window", true}}) {
    add_api_route(r, api, bhttp::verb::get, pattern, 0, access::any_principal,
                        [window_only](pqxx::connection_base& c, const principal& who, const api_call& call) {
                          auto id = parse_id(call.params.at("id"));
                          pqxx::nontransaction nt{c};
                          auto conv = id ? load_conversation(nt, *id, scope_of(who)) : std::nullopt;
                          if (!conv) {
                            not_found();
                          }
                          return ok(window_only ? (*conv)["window"] : *conv);
                        });
  }

  // Dashboard writes go to the conversation's actor (through its site's), which takes them in
  // turn with the customer's messages; the answer is the conversation as stored after it.
  add_deferred_api_route(r, api, bhttp::verb::patch, "/api/conversations/{id}", max_body, access::any_principal,
              [&api](pqxx::connection_base& c, const principal& who, const api_call& call, responder done) {
                auto doc = parse_json_object(call.body);
                infra::conversation_change change;
                change.status = opt_string(doc->object, "status");
                simdjson::dom::element agent_el;
                change.agent_given = doc->object.at_key("assigned_agent_id").get(agent_el) == simdjson::SUCCESS;
                if (change.agent_given && !agent_el.is_null()) {
                  change.agent = opt_string(doc->object, "assigned_agent_id");
                }
                if (change.status && *change.status != "pending" && *change.status != "active" &&
                    *change.status != "closed") {
                  fail(bhttp::status::unprocessable_entity, "invalid_field",
                       "status must be pending, active or closed.");
                }
                write_through_actor(api, c, who, call.params.at("id"), std::move(change), std::move(done));
              });

  add_api_route(r, api, bhttp::verb::get, "/api/conversations/{id}/messages", 0, access::any_principal,
              [](pqxx::connection_base& c, const principal& who, const api_call& call) {
                pqxx::nontransaction nt{c};
                auto id = visible_conversation(nt, call, who);
                int limit = read_limit(call);
                std::int64_t cur_micros = INT64_MAX / 4, cur_id = INT64_MAX;
                if (auto cursor = infra::query_value(call.query, "cursor")) {
                  std::tie(cur_micros, cur_id) = read_cursor(*cursor);
                }
                // Newest first from the cursor back, then reversed: oldest first within a page.
                auto rows = nt.exec_params(
                    message_select +
                        " WHERE m.conversation_id = $1 AND (m.created_at, m.id) <"
                        " (timestamptz 'epoch' + $2 * interval '1 microsecond', $3)"
                        " ORDER BY m.created_at DESC, m.id DESC LIMIT $4",
                    id, cur_micros, cur_id, limit + 1);
                json list = json::array();
                auto n = std::min<std::size_t>(rows.size(), static_cast<std::size_t>(limit));
                for (std::size_t i = n; i-- > 0;) {
                  list.push_back(message_json(rows[i]));
                }
                json next = nullptr;
                if (rows.size() > static_cast<std::size_t>(limit)) {
                  const auto& oldest = rows[n - 1];
                  next = make_cursor(oldest[22].as<std::int64_t>(), oldest[0].as<std::int64_t>());
                }
                return ok({{"messages", list}, {"next_cursor", next}});
              });

  add_deferred_api_route(r, api, bhttp::verb::post, "/api/conversations/{id}/read", max_body, access::any_principal,
              [&api](pqxx::connection_base& c, const principal& who, const api_call& call, responder done) {
                infra::conversation_change change;
                change.mark_read = true;
                // Optional {"typing": true}: with on_agent_view, show the customer a typing
                // indicator with the read receipt (the agent is answering).
                if (!call.body.empty()) {
                  auto doc = parse_json_object(call.body);
                  change.typing = opt_bool(doc->object, "typing").value_or(false);
                }
                write_through_actor(api, c, who, call.params.at("id"), std::move(change), std::move(done));
              });
}

}  // namespace wachat::http

#include "http/sites_handler.hpp"

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "domain/masking.hpp"
#include "http/site_queries.hpp"
#include "actors/site/site_client.hpp"
#include "infra/crypto.hpp"

namespace wachat::http {
namespace {

using nlohmann::json;

response json_ok(bhttp::status status, const json& j) {
  return json_body(status, j.dump(-1, ' ', false, json::error_handler_t::replace));
}

json site_json(const pqxx::row& row) {
  return {{"id", row[0].as<std::string>()},
          {"name", row[1].as<std::string>()},
          {"created_at", rfc3339(row[2].as<std::int64_t>())}};
}

}  // namespace

void add_site_routes(router& r, api_context& api) {
  const auto max_body = api.cfg->api_max_body_bytes;

  add_api_route(r, api, bhttp::verb::post, "/api/sites", max_body, access::admin_only,
                [](pqxx::connection_base& c, const principal&, const api_call& call) {
                        auto doc = parse_json_object(call.body);
                        auto id = req_string(doc->object, "id");
                        auto name = opt_string(doc->object, "name").value_or(id);
                        if (!domain::valid_site_id(id)) {
                          fail(bhttp::status::unprocessable_entity, "invalid_field",
                               "Field 'id' must match [a-z0-9][a-z0-9-]{0,62}.");
                        }
                        if (name.empty() || name.size() > 200) {
                          fail(bhttp::status::unprocessable_entity, "invalid_field",
                               "Field 'name' must be 1 to 200 characters.");
                        }
                        pqxx::work w{c};
                        auto ins = w.exec_params(
                            "INSERT INTO sites (id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING"
                            " RETURNING id, name, extract(epoch from created_at)::bigint",
                            id, name);
                        if (ins.empty()) {
                          fail(bhttp::status::conflict, "site_exists",
                               "A site with this id exists already.");
                        }
                        w.exec_params(
                            "INSERT INTO mod_chat_widget_settings (site_id, whatsapp_verify_token)"
                            " VALUES ($1, $2)",
                            id, infra::random_hex(16));
                        w.commit();
                        return json_ok(bhttp::status::created, site_json(ins[0]));
                });

  add_api_route(r, api, bhttp::verb::get, "/api/sites", 0, access::admin_only,
                [](pqxx::connection_base& c, const principal&, const api_call&) {
                        pqxx::nontransaction nt{c};
                        json sites = json::array();
                        for (const auto& row : nt.exec(
                                 "SELECT id, name, extract(epoch from created_at)::bigint"
                                 " FROM sites ORDER BY id")) {
                          sites.push_back(site_json(row));
                        }
                        return json_ok(bhttp::status::ok, {{"sites", sites}});
                });

  add_api_route(r, api, bhttp::verb::post, "/api/sites/{site}/tokens", max_body, access::admin_only,
                            [](pqxx::connection_base& c, const principal&, const api_call& call) {
                              const auto& site = call.params.at("site");
                              {
                                pqxx::nontransaction nt{c};
                                if (!site_exists(nt, site)) {
                                  not_found();
                                }
                              }
                              auto t = issue_site_token(c, site);
                              return json_ok(bhttp::status::created,
                                             {{"id", t.id}, {"token", t.token}, {"site_id", site}});
                            });

  add_api_route(r, api, bhttp::verb::delete_, "/api/tokens/{id}", 0, access::admin_only,
                            [](pqxx::connection_base& c, const principal&, const api_call& call) {
                              const auto& id = call.params.at("id");
                              pqxx::work w{c};
                              auto r = w.exec_params("DELETE FROM api_tokens WHERE id = $1", id);
                              w.commit();
                              if (r.affected_rows() == 0) {
                                not_found();
                              }
                              response res{bhttp::status::no_content, 11};
                              return res;
                            });

  // The settings as the site's actor holds them (refreshed on every change, in any process).
  add_deferred_api_route(
      r, api, bhttp::verb::get, "/api/sites/{site}/whatsapp/status", 0, access::any_principal,
              [&api](pqxx::connection_base&, const principal& who, const api_call& call, responder done) {
                const auto& site = call.params.at("site");
                if (!who.may_see(site)) {
                  not_found();
                }
                api.sites->read(site, [&api, done](actors::site_answer a) {
                  if (a.what != actors::site_answer::kind::ok || !a.settings) {
                    return done(site_answer_error(a));
                  }
                  done(json_ok(bhttp::status::ok, site_status_json(*a.settings, *api.cfg)));
                });
              });

  add_deferred_api_route(
      r, api, bhttp::verb::delete_, "/api/sites/{site}/whatsapp", 0, access::any_principal,
              [&api](pqxx::connection_base&, const principal& who, const api_call& call, responder done) {
                const auto& site = call.params.at("site");
                if (!who.may_see(site)) {
                  not_found();
                }
                api.sites->remove(site, [&api, done](actors::site_answer a) {
                  if (a.what != actors::site_answer::kind::ok) {
                    return done(site_answer_error(a));
                  }
                  // Rows waiting on other numbers are looked at again; this one routes nowhere now.
                  if (api.wake_dispatcher) {
                    api.wake_dispatcher();
                  }
                  done(response{bhttp::status::no_content, 11});
                });
              });
}

}  // namespace wachat::http

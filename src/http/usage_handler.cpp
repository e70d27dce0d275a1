#include "http/usage_handler.hpp"

#include <ctime>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "domain/usage.hpp"
#include "http/site_queries.hpp"
#include "infra/url.hpp"

namespace wachat::http {

void add_usage_routes(router& r, api_context& api) {
  add_api_route(
      r, api, bhttp::verb::get, "/api/sites/{site}/whatsapp/usage", 0, access::any_principal,
      [](pqxx::connection_base& c, const principal& who, const api_call& call) {
        const auto& site = call.params.at("site");
        if (!who.may_see(site)) {
          not_found();
        }
        auto period = domain::read_usage_period(infra::query_value(call.query, "from"),
                                                infra::query_value(call.query, "to"),
                                                static_cast<std::int64_t>(std::time(nullptr)));
        if (auto* why = std::get_if<std::string>(&period)) {
          fail(bhttp::status::unprocessable_entity, "invalid_field", *why);
        }
        auto p = std::get<domain::usage_period>(period);
        pqxx::read_transaction t{c};
        if (!site_exists(t, site)) {
          not_found();
        }
        // A message counts once, by the first of its statuses that carried pricing (Meta sends
        // it on `sent` and again on `delivered`, and may deliver a webhook twice); the period
        // holds it when that status does.
        auto rows = t.exec_params(
            "SELECT category, pricing_type, billable, count(*) FROM ("
            "   SELECT DISTINCT ON (whatsapp_message_id) coalesce(pricing->>'category', '') AS category,"
            "     coalesce(nullif(pricing->>'type', ''), nullif(pricing->>'pricing_model', ''), '') AS pricing_type,"
            "     coalesce((pricing->>'billable')::boolean, false) AS billable,"
            "     coalesce(status_timestamp, received_at) AS at"
            "   FROM wa_message_statuses WHERE site_id = $1 AND pricing IS NOT NULL"
            "   ORDER BY whatsapp_message_id, coalesce(status_timestamp, received_at), id) first_priced"
            " WHERE at >= to_timestamp($2) AND at < to_timestamp($3)"
            " GROUP BY category, pricing_type, billable ORDER BY category, pricing_type, billable",
            site, p.from, p.to);
        nlohmann::json list = nlohmann::json::array();
        for (const auto& row : rows) {
          list.push_back({{"category", row[0].as<std::string>()},
                          {"pricing_type", row[1].as<std::string>()},
                          {"billable", row[2].as<bool>()},
                          {"messages", row[3].as<std::int64_t>()}});
        }
        return json_body(bhttp::status::ok,
                         dump(nlohmann::json{{"from", rfc3339(p.from)}, {"to", rfc3339(p.to)}, {"by_category", list}}));
      });
}

}  // namespace wachat::http

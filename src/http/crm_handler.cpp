#include "http/crm_handler.hpp"

#include <pqxx/pqxx>

#include "http/site_queries.hpp"
#include "infra/crm_store.hpp"

namespace wachat::http {

void add_crm_routes(router& r, api_context& api) {
  add_api_route(r, api, bhttp::verb::get, "/api/conversations/{id}/contact", 0, access::any_principal,
                [](pqxx::connection_base& c, const principal& who, const api_call& call) {
                  auto owner = owner_of(c, call.params.at("id"), who);
                  pqxx::read_transaction t{c};
                  auto contact = infra::conversation_contact(t, owner.id);
                  if (!contact) {
                    fail(bhttp::status::not_found, "not_found", "No CRM contact is linked to this conversation.");
                  }
                  return json_body(bhttp::status::ok, dump(*contact));
                });
}

}  // namespace wachat::http

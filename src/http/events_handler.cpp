#include "http/events_handler.hpp"

#include <pqxx/pqxx>

#include "http/chat_views.hpp"
#include "http/event_hub.hpp"
#include "http/site_queries.hpp"
#include "http/url.hpp"

namespace wachat::http {

void add_event_routes(router& r, api_context& api) {
  r.add(bhttp::verb::get, "/api/sites/{site}/events", 0,
        [&api](request_context& rc, responder respond) {
          auto site = rc.params["site"];
          std::optional<std::int64_t> last;
          auto header = std::string{rc.req["Last-Event-ID"]};
          if (header.empty()) {
            header = query_value(rc.query, "last_event_id").value_or("");
          }
          if (!header.empty()) {
            last = parse_id(header);
            if (!last && header != "0") {
              return respond(json_error(bhttp::status::bad_request, "invalid_request",
                                        "Last-Event-ID must be an event id."));
            }
            if (!last) {
              last = 0;
            }
          }
          auto open_stream = rc.open_stream;
          auto* hub = api.events;
          run_authenticated(api, rc, respond, access::any_principal,
                            [=](pqxx::connection_base& c, const principal& who) -> response {
                              if (!who.may_see(site)) {
                                not_found();
                              }
                              {
                                pqxx::nontransaction nt{c};
                                if (!site_exists(nt, site)) {
                                  not_found();
                                }
                              }
                              hub->subscribe(site, last, open_stream("text/event-stream"));
                              // The responder is not used: the stream answered instead.
                              return response{};
                            });
        });
}

}  // namespace wachat::http

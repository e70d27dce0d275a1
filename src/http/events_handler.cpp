#include "http/events_handler.hpp"

#include <pqxx/pqxx>

#include "infra/chat_views.hpp"
#include "actors/events/event_hub.hpp"
#include "http/site_queries.hpp"
#include "infra/url.hpp"

namespace wachat::http {

using infra::conversation_json;
using infra::conversation_select;
using infra::load_conversation;
using infra::message_json;
using infra::message_select;

void add_event_routes(router& r, api_context& api) {
  r.add(bhttp::verb::get, "/api/sites/{site}/events", 0,
        [&api](request_context& rc, responder respond) {
          auto site = rc.params["site"];
          std::optional<std::int64_t> last;
          auto header = std::string{rc.req["Last-Event-ID"]};
          if (header.empty()) {
            header = infra::query_value(rc.query, "last_event_id").value_or("");
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
                              auto from = last;
                              {
                                pqxx::nontransaction nt{c};
                                if (!site_exists(nt, site)) {
                                  not_found();
                                }
                                // A new stream starts after the newest event committed before
                                // its 200, not when the hub gets to it: whatever commits in
                                // between is replayed, not lost (ids commit in order per site).
                                if (!from) {
                                  from = nt.exec_params("SELECT coalesce(max(id), 0) FROM wa_events"
                                                        " WHERE site_id = $1",
                                                        site)[0][0]
                                             .as<std::int64_t>();
                                }
                              }
                              hub->subscribe(site, *from, open_stream("text/event-stream"));
                              // The responder is not used: the stream answered instead.
                              return response{};
                            });
        });
}

}  // namespace wachat::http

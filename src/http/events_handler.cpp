#include "http/events_handler.hpp"

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "actors/events/event_hub.hpp"
#include "http/site_queries.hpp"
#include "infra/stream_tickets.hpp"
#include "infra/url.hpp"

namespace wachat::http {

namespace {

// A browser's EventSource cannot send a bearer header: it trades its token for a ticket here and
// opens the stream with `?ticket=` (docs/design.md "The console"). A minute is enough to open a
// stream; a reconnect asks for a new ticket.
constexpr std::chrono::seconds stream_ticket_ttl{60};

}  // namespace

void add_event_routes(router& r, api_context& api) {
  add_api_route(r, api, bhttp::verb::post, "/api/sites/{site}/events/tickets", api.cfg->api_max_body_bytes,
                access::any_principal, [](pqxx::connection_base& c, const principal& who, const api_call& call) {
                  const auto& site = call.params.at("site");
                  require_site(c, who, site);
                  auto t = infra::issue_stream_ticket(c, site, who.token_id, stream_ticket_ttl);
                  nlohmann::json body = {{"ticket", t.ticket},
                                         {"expires_at", rfc3339(t.expires_at)},
                                         {"expires_in", stream_ticket_ttl.count()}};
                  return json_body(bhttp::status::created, dump(body));
                });
  // Through the gateway: who may see the site, and where the stream starts. The answer is the
  // id to start after, as text; the route then opens the stream.
  auto op = api.calls->add(access::stream_reader, [](pqxx::connection_base& c, const principal& who,
                                                      const api_call& call, responder done) {
    const auto& site = call.params.at("site");
    require_site(c, who, site);
    pqxx::nontransaction nt{c};
    std::int64_t from = 0;
    if (auto given = call.params.find("last_event_id"); given != call.params.end()) {
      from = parse_id(given->second).value_or(0);
    } else {
      // A new stream starts after the newest event committed before its 200, not when the hub
      // gets to it: whatever commits in between is replayed, not lost (ids commit in order per
      // site).
      from = nt.exec_params("SELECT coalesce(max(id), 0) FROM wa_events WHERE site_id = $1", site)[0][0]
                 .as<std::int64_t>();
    }
    done(text_body(bhttp::status::ok, std::to_string(from), "text/plain"));
  });

  auto calls = api.calls;
  auto* hub = api.events;
  r.add(bhttp::verb::get, "/api/sites/{site}/events", 0,
        [calls, hub, op](request_context& rc, responder respond) {
          std::map<std::string, std::string> extra;
          auto header = std::string{rc.req["Last-Event-ID"]};
          if (header.empty()) {
            header = infra::query_value(rc.query, "last_event_id").value_or("");
          }
          if (!header.empty()) {
            if (!parse_id(header) && header != "0") {
              return respond(json_error(bhttp::status::bad_request, "invalid_request",
                                        "Last-Event-ID must be an event id."));
            }
            extra["last_event_id"] = header;
          }
          auto site = rc.params["site"];
          auto open_stream = rc.open_stream;
          // An error is answered as it is; the start id opens the stream instead of a response.
          responder start{[=](response res) {
            if (res.result() != bhttp::status::ok) {
              return respond(std::move(res));
            }
            hub->subscribe(site, parse_id(res.body()).value_or(0), open_stream("text/event-stream"));
          }};
          calls->submit(rc, op, std::move(start), std::move(extra));
        });
}

}  // namespace wachat::http

#include "http/webhook_waiters.hpp"

#include "http/responses.hpp"

namespace wachat::http {

std::uint64_t webhook_waiters::add(responder respond) { return waiting_.add(std::move(respond)); }

void webhook_waiters::settled(std::uint64_t ticket, actors::intake_outcome outcome) {
  if (auto respond = waiting_.take(ticket)) {
    if (outcome.stored) {
      (*respond)(text_body(bhttp::status::ok, "EVENT_RECEIVED", "text/plain"));
    } else {
      (*respond)(json_error(bhttp::status::service_unavailable, "unavailable",
                            "Webhook store is unavailable; deliver again."));
    }
  }
}

void webhook_waiters::expire(std::uint64_t ticket) {
  if (auto respond = waiting_.take(ticket)) {
    (*respond)(json_error(bhttp::status::service_unavailable, "unavailable",
                          "Webhook could not be stored in time; deliver again."));
  }
}

}  // namespace wachat::http

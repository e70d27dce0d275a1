#include "http/webhook_waiters.hpp"

#include "http/responses.hpp"

namespace wachat::http {

std::uint64_t webhook_waiters::add(responder respond) {
  auto ticket = next_.fetch_add(1, std::memory_order_relaxed);
  auto& s = shards_[ticket % shards_.size()];
  std::lock_guard lock{s.mutex};
  s.waiting.emplace(ticket, std::move(respond));
  return ticket;
}

std::optional<responder> webhook_waiters::take(std::uint64_t ticket) {
  auto& s = shards_[ticket % shards_.size()];
  std::lock_guard lock{s.mutex};
  auto it = s.waiting.find(ticket);
  if (it == s.waiting.end()) {
    return std::nullopt;
  }
  auto r = std::move(it->second);
  s.waiting.erase(it);
  return r;
}

void webhook_waiters::settled(std::uint64_t ticket, actors::intake_outcome outcome) {
  if (auto respond = take(ticket)) {
    if (outcome.stored) {
      (*respond)(text_body(bhttp::status::ok, "EVENT_RECEIVED", "text/plain"));
    } else {
      (*respond)(json_error(bhttp::status::service_unavailable, "unavailable",
                            "Webhook store is unavailable; deliver again."));
    }
  }
}

void webhook_waiters::expire(std::uint64_t ticket) {
  if (auto respond = take(ticket)) {
    (*respond)(json_error(bhttp::status::service_unavailable, "unavailable",
                          "Webhook could not be stored in time; deliver again."));
  }
}

}  // namespace wachat::http

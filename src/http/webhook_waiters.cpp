#include "http/webhook_waiters.hpp"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <optional>
#include <vector>

#include "http/responses.hpp"

namespace wachat::http {
namespace {

void sweep_after(std::shared_ptr<boost::asio::steady_timer> timer, std::weak_ptr<webhook_waiters> w,
                 std::chrono::milliseconds every) {
  timer->expires_after(every);
  timer->async_wait([timer, w, every](boost::system::error_code ec) {
    auto self = w.lock();
    if (ec || !self) {
      return;
    }
    self->expire_due(webhook_waiters::clock::now());
    sweep_after(timer, w, every);
  });
}

}  // namespace

webhook_waiters::webhook_waiters(std::chrono::milliseconds commit_timeout) : timeout_(commit_timeout) {}

std::uint64_t webhook_waiters::add(responder respond) {
  auto ticket = next_.fetch_add(1, std::memory_order_relaxed);
  auto& s = shards_[ticket % shards_.size()];
  waiter w{std::move(respond), clock::now() + timeout_};
  std::lock_guard lock{s.mutex};
  s.waiting.emplace_hint(s.waiting.end(), ticket, std::move(w));
  return ticket;
}

void webhook_waiters::settled(std::uint64_t ticket, actors::intake_outcome outcome) {
  std::optional<responder> respond;
  {
    auto& s = shards_[ticket % shards_.size()];
    std::lock_guard lock{s.mutex};
    auto it = s.waiting.find(ticket);
    if (it == s.waiting.end()) {
      return;  // answered already: the commit timeout came first
    }
    respond = std::move(it->second.respond);
    s.waiting.erase(it);
  }
  if (outcome.stored) {
    (*respond)(text_body(bhttp::status::ok, "EVENT_RECEIVED", "text/plain"));
  } else {
    (*respond)(json_error(bhttp::status::service_unavailable, "unavailable",
                          "Webhook store is unavailable; deliver again."));
  }
}

void webhook_waiters::expire_due(clock::time_point now) {
  std::vector<responder> due;
  for (auto& s : shards_) {
    std::lock_guard lock{s.mutex};
    auto it = s.waiting.begin();
    // Deadlines follow ticket order within a few microseconds (two threads may draw tickets and
    // read the clock in opposite order): a ticket passed over now is answered by the next sweep.
    while (it != s.waiting.end() && it->second.deadline <= now) {
      due.push_back(std::move(it->second.respond));
      it = s.waiting.erase(it);
    }
  }
  for (auto& respond : due) {
    respond(json_error(bhttp::status::service_unavailable, "unavailable",
                       "Webhook could not be stored in time; deliver again."));
  }
}

void webhook_waiters::start_expiry(boost::asio::io_context& ioc) {
  auto every = std::clamp(timeout_ / 10, std::chrono::milliseconds{5}, std::chrono::milliseconds{100});
  auto timer = std::make_shared<boost::asio::steady_timer>(ioc);
  // The waiters belong to main and outlive the HTTP threads; the weak pointer only keeps the
  // sweep from holding them.
  sweep_after(std::move(timer), weak_from_this(), every);
}

}  // namespace wachat::http

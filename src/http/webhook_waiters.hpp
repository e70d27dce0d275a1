#pragma once
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "actors/inbound/intake.hpp"
#include "http/types.hpp"

namespace boost::asio {
class io_context;
}

namespace wachat::http {

// Webhook POSTs waiting for their commit. The handler files each one under a ticket and hands
// the body to intake; intake settles the ticket (from a writer's thread) and it is answered: 200
// once stored, 503 otherwise. A ticket still waiting when the commit timeout has passed is
// answered 503 by the expiry sweep and forgotten, so a late settlement finds nothing.
//
// One sweep for all tickets rather than a timer per webhook: a timer cost each webhook an
// allocation, two turns of the reactor's timer queue and a second hand-off to its HTTP thread
// (to cancel it). Tickets are drawn in order and all wait as long, so each shard's oldest
// tickets are the first due and the sweep stops at the first that is not.
class webhook_waiters final : public actors::intake_listener,
                              public std::enable_shared_from_this<webhook_waiters> {
 public:
  using clock = std::chrono::steady_clock;

  explicit webhook_waiters(std::chrono::milliseconds commit_timeout);
  std::uint64_t add(responder respond);
  void settled(std::uint64_t ticket, actors::intake_outcome outcome) override;
  // Answers 503 to every ticket whose commit timeout has passed by `now`.
  void expire_due(clock::time_point now);
  // Runs expire_due on `ioc` at a tenth of the commit timeout (5 to 100 ms) until `ioc` stops.
  void start_expiry(boost::asio::io_context& ioc);

 private:
  struct waiter {
    responder respond;
    clock::time_point deadline;
  };
  struct shard {
    std::mutex mutex;
    std::map<std::uint64_t, waiter> waiting;  // by ticket: oldest (first due) first
  };
  std::chrono::milliseconds timeout_;
  std::array<shard, 16> shards_;
  std::atomic<std::uint64_t> next_{1};
};

}  // namespace wachat::http

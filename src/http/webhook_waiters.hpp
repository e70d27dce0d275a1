#pragma once
#include <cstdint>

#include "actors/inbound/intake.hpp"
#include "http/ticket_map.hpp"
#include "http/types.hpp"

namespace wachat::http {

// Webhook POSTs waiting for their commit. The handler files each one under a ticket and hands
// the body to intake; intake settles the ticket (from a writer's thread) and it is answered: 200
// once stored, 503 otherwise. A ticket the commit timeout reached first is answered 503 and
// forgotten, so a late settlement finds nothing.
class webhook_waiters final : public actors::intake_listener {
 public:
  std::uint64_t add(responder respond);
  void settled(std::uint64_t ticket, actors::intake_outcome outcome) override;
  // The commit timeout: answers 503 if the ticket is still waiting.
  void expire(std::uint64_t ticket);

 private:
  ticket_map<responder> waiting_;
};

}  // namespace wachat::http

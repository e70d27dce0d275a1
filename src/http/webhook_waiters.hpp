#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "actors/inbound/intake.hpp"
#include "http/types.hpp"

namespace wachat::http {

// Webhook POSTs waiting for their commit. The handler files each one under a ticket and hands
// the body to intake; intake settles the ticket (from a writer's thread) and it is answered: 200
// once stored, 503 otherwise. A ticket the commit timeout reached first is answered 503 and
// forgotten, so a late settlement finds nothing. Sharded: every webhook passes through here.
class webhook_waiters final : public actors::intake_listener {
 public:
  std::uint64_t add(responder respond);
  void settled(std::uint64_t ticket, actors::intake_outcome outcome) override;
  // The commit timeout: answers 503 if the ticket is still waiting.
  void expire(std::uint64_t ticket);

 private:
  struct shard {
    std::mutex mutex;
    std::unordered_map<std::uint64_t, responder> waiting;
  };
  std::optional<responder> take(std::uint64_t ticket);
  std::array<shard, 16> shards_;
  std::atomic<std::uint64_t> next_{1};
};

}  // namespace wachat::http

#pragma once
#include <caf/fwd.hpp>
#include <memory>
#include <string>

#include "infra/metrics.hpp"

namespace wachat::actors {

// Takes committed webhooks from the inbox and processes them (DESIGN.md §2, inbox dispatcher):
// woken by intake after each commit, by settings changes (unroutable rows), and every second
// (rows committed by another process, retries). On start it recovers rows left pending.
class inbox_dispatcher {
 public:
  inbox_dispatcher(caf::actor_system& sys, std::string database_url,
                   std::shared_ptr<infra::metrics> metrics);
  ~inbox_dispatcher();
  inbox_dispatcher(const inbox_dispatcher&) = delete;
  inbox_dispatcher& operator=(const inbox_dispatcher&) = delete;

  // Thread-safe and cheap: many wakes while busy collapse into one more pass.
  void wake();
  // Also re-examines rows waiting for a site (call after a site's phone number id changed).
  void wake_routing();
  void shutdown();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace wachat::actors

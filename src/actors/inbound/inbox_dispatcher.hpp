#pragma once
#include <atomic>
#include <caf/fwd.hpp>
#include <cstdint>
#include <chrono>
#include <memory>
#include <string>

#include "actors/site/site_interfaces.hpp"
#include "infra/metrics.hpp"

namespace wachat::actors {

struct inbox_dispatcher_settings {
  std::string database_url;
  // A claim open longer than this gives back the rows it has not finished: a unit that never
  // answers must not hold its rows, a connection and one of the claim slots for good.
  std::chrono::milliseconds claim_lease{std::chrono::seconds(60)};
};

// Takes committed webhooks from the inbox and processes them (DESIGN.md §2, inbox dispatcher):
// woken by intake after each commit, by settings changes (unroutable rows), and every second
// (rows committed by another process, retries). It claims rows, parses each once, asks the site
// directory which site has each phone number id (keeping the answers until it says `forget`),
// and sends every message and status to that site's actor, which hands it to the customer's
// conversation actor; a row is marked done when all of its units are stored. Claimed rows stay
// locked in an open transaction until then, so a dead process's rows are free again at once. On start it
// requeues rows that failed (and rows an older version left 'processing').
class inbox_dispatcher {
 public:
  inbox_dispatcher(caf::actor_system& sys, inbox_dispatcher_settings settings,
                   std::shared_ptr<infra::metrics> metrics, site_directory_actor sites);
  ~inbox_dispatcher();
  inbox_dispatcher(const inbox_dispatcher&) = delete;
  inbox_dispatcher& operator=(const inbox_dispatcher&) = delete;

  // Also re-examines rows waiting for a site (call after a site's phone number id changed).
  void wake_routing();
  // The dispatcher's actor (an inbox_dispatcher_actor), for actors that wake it themselves.
  caf::actor handle() const;
  // The key of the advisory lock the dispatcher holds for as long as it runs (taken on its own
  // connection when it is made; 0 if the database could not be reached then). Intake commits
  // pending rows with it and hands them over from memory; when the dispatcher stops or dies, the
  // lock goes with its connection and any process may claim what is left (migrations 019, 020).
  // A cell, read at every commit: the dispatcher replaces the key when a commit's answer was
  // lost (intake sends it `doubt`).
  std::shared_ptr<const std::atomic<std::int64_t>> owner_key() const;
  void shutdown();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace wachat::actors

#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "infra/event_log.hpp"

namespace pqxx {
class connection_base;
}

namespace wachat::infra {

struct inbox_batch_result {
  std::size_t events = 0;      // inbox rows handled
  std::size_t messages = 0;    // new messages stored
  std::size_t statuses = 0;    // new statuses recorded
  std::size_t unroutable = 0;  // rows waiting for a site
  std::size_t failed = 0;      // rows whose processing failed
};

// Turns committed webhook bodies into visitors, conversations, messages and statuses
// (DESIGN.md §3 items 1–5 and 10). Every step is idempotent, so a row processed twice (a
// crash between work and bookkeeping, a redelivery, a second process) changes nothing more.
// Rows are claimed with FOR UPDATE SKIP LOCKED, so several processes share the work.
class inbox_processor {
 public:
  explicit inbox_processor(pqxx::connection_base& conn) : conn_(conn) {}

  // Processes up to `limit` pending rows in one transaction; returns what it did.
  inbox_batch_result process_pending(std::size_t limit);

  // Puts back to pending the unroutable rows that name a phone number id some site now has.
  std::size_t requeue_routable();

  // At start: failed rows get another chance (bounded by attempts).
  std::size_t requeue_failed(int max_attempts);

 private:
  pqxx::connection_base& conn_;
};

}  // namespace wachat::infra

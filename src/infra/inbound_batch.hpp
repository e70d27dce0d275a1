#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "domain/inbound_units.hpp"
#include "infra/event_log.hpp"

namespace pqxx {
class transaction_base;
}

namespace wachat::infra {

struct batch_unit {
  const std::string* site;
  std::int64_t event_id;
  const domain::inbound_unit* unit;
  // What the conversation actor decided (unit_job): the store applies these values and only
  // guards them across processes (greatest(), the later-message check); it decides no rule.
  std::int64_t window_expiry = 0;  // a customer message: the window's end it makes (unix s)
  bool closes_window = false;      // a status with Meta's 131047
};

// Stores many units in the caller's transaction with the same effects as store_unit on each,
// in order, but with a few set-based statements for all plain messages together (visitors,
// conversations, messages, conversation counters: one round trip each) instead of five per
// message. Reactions and statuses go through store_unit after the messages. Rows are locked in
// a fixed order (visitors by phone, conversations and messages by key) so that two processes
// storing the same customers wait for each other instead of deadlocking. Throws on any database
// error; the caller then knows nothing of the batch is stored.
std::vector<domain::unit_outcome> store_units(pqxx::transaction_base& tx,
                                              const std::vector<batch_unit>& units,
                                              std::vector<pending_event>& events);

}  // namespace wachat::infra

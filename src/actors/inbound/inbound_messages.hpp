#pragma once
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>
#include <string>

#include "domain/inbound_units.hpp"

namespace wachat::actors {

// Where to mark a customer's message read at Meta (API.md §3.2 read_receipts): the site's number
// and opened token.
struct read_receipt_target {
  std::string phone_number_id;
  std::string access_token;
};

// What the site's settings say about a customer's new message, for its conversation actor:
// whether to mark it read at Meta (read_receipts on_receipt), and the opt-out/opt-in keywords.
// Shared by all of a site's units while its settings stay the same: a pointer copy per unit.
struct unit_context {
  std::optional<read_receipt_target> receipt;
  std::vector<std::string> opt_out_keywords;
  std::vector<std::string> opt_in_keywords;
  bool welcome = false;  // the site has a welcome_template: a new conversation gets it
};

// One unit on its way from the dispatcher through its site and conversation actors to a writer.
struct unit_job {
  std::int64_t event_id = 0;
  std::string site;
  std::shared_ptr<const domain::inbound_unit> unit;  // shared: copied across actors for free
  // Decided by the conversation actor (the store only guards them across processes):
  std::int64_t window_expiry = 0;  // a customer message: the window's end it makes (unix s)
  bool closes_window = false;      // a status with Meta's 131047: the window shuts at its time
  // Set by the site for customers' messages (see unit_context).
  std::shared_ptr<const unit_context> context{};
};

using store_atom = caf::atom_constant<caf::atom("store")>;
using write_atom = caf::atom_constant<caf::atom("write")>;
using idle_atom = caf::atom_constant<caf::atom("idle")>;

}  // namespace wachat::actors

// Local messages only: never serialized.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::actors::unit_job)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::domain::unit_outcome)

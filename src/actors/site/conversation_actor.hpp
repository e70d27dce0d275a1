#pragma once
#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>

#include "actors/inbound/inbound_interfaces.hpp"
#include "actors/outbound/outbound_interfaces.hpp"
#include "actors/site/site_interfaces.hpp"

namespace wachat::actors {

// Whom a conversation actor hands its decisions to, and its timings.
struct conversation_links {
  inbound_writer_actor writer;        // customers' messages and statuses
  conversation_writer_actor changes;  // the dashboard's changes
  cloud_sender_actor sender;          // agents' sends
  std::chrono::milliseconds idle{std::chrono::seconds(60)};
  std::chrono::milliseconds send_wait{10000};    // WACHAT_SEND_WAIT_MS
  std::chrono::milliseconds send_doubt{120000};  // WACHAT_SEND_DOUBT_MS
  std::string site_id;  // set by the site actor for its own conversations
};

// A send of this conversation waiting for Meta: its outbox entry, and how to reach Meta.
struct queued_send {
  std::int64_t message_id = 0;
  std::string phone_number_id;
  std::string access_token;
};

// An API request still waiting for its send's outcome (until send_wait).
struct send_waiter {
  caf::typed_response_promise<send_reply> answer;
  std::string message;  // the message as enqueued (`queued`), answered if the wait ends first
  std::chrono::steady_clock::time_point deadline;  // when it is answered `queued`
};

// The state a conversation actor owns (DESIGN.md §2): plain data, decided on by the pure rules
// of src/domain.
struct conversation_state {
  std::size_t in_flight = 0;   // units, changes and sends taken and not finished
  std::uint64_t received = 0;  // requests taken, so the site can tell whether its idle ask is stale
  std::uint64_t received_at_check = 0;  // `received` at the previous idle check
  bool idle_asked = false;              // asked the site to retire it; no check is scheduled
  std::chrono::milliseconds idle{60000};  // WACHAT_CONVERSATION_IDLE_MS
  // The window's end as this actor last decided it (unix s; 0: not known). Another process may
  // have moved it further: the store keeps the greater of the two.
  std::int64_t window_expiry = 0;
  // The facts the last send was decided on, as read then (none: read them for the next send).
  // Forgotten whenever something here may change them (a unit stored, Meta's 131047 or 131050);
  // what changes them elsewhere the enqueue's check catches (infra::enqueue_item::decided_on).
  std::optional<infra::decided_facts> known_facts;
  // Agents' sends in message order; the front one is attempted, one at a time, so Meta gets
  // them in the order they were written.
  std::deque<queued_send> sends;
  bool attempting = false;  // the front send has an attempt (or its retry timer) running
  std::int64_t depart_by_us = 0;  // the front send's slot plus the lateness allowed (attempt_job)
  std::unordered_map<std::int64_t, send_waiter> waiting;
  bool wait_check_pending = false;  // a `wait` turn is scheduled for the earliest deadline
  cloud_sender_actor sender;
  site_actor site;
  std::string site_id;
  std::string key;  // the customer's phone, else BSUID
  std::chrono::milliseconds send_wait{10000};
  std::chrono::milliseconds send_doubt{120000};
  static inline const char* name = "conversation";
};

// Applies the conversation's rules to one unit before it is stored (DESIGN.md §3.4, API.md
// §3.4): a customer message moves the window (domain::window_expiry_after; reactions do not),
// a failed status with Meta's 131047 shuts it (domain::closes_window). The decided values go
// with the unit to the store. `now` is the time of receipt, for implausible timestamps.
void decide(conversation_state& st, unit_job& job, std::int64_t now);

// The single writer of one customer's conversation within this process: units are decided on,
// then stored one after another in the order they arrived, each waiting for the previous one's
// commit. Other processes are kept in line by row locks and ON CONFLICT (DESIGN.md §4.4). After
// `idle` with nothing in flight it asks `site` to retire it (the site decides, see site_actor).
// The dashboard's changes (`patch`) are taken in the same turn order: one waits for the unit
// before it, and the next unit waits for it. An agent's send (`send`) is decided in that order
// too (domain::decide_send: idempotency, recipient, window) and committed with its outbox
// entry; its attempts then run one at a time, in message order, beside the turns, retried or
// given up by domain::decide_failed_attempt.
// Its own turns, which others never send: a send's wait may have ended (`wait`: the waiting
// requests whose deadline passed are answered `queued`; one such turn is scheduled at a time,
// for the earliest deadline, not one per send), the
// front send may be tried again (`retry`), its slot in the number's send rate has come (`go`),
// time to see whether it has been idle (`idlecheck`, every `idle`: with nothing in flight and
// no request since the previous check, it asks the site to retire it, so an idle actor goes
// between one and two `idle` periods after its last request). Not a receive timeout
// (`caf::after`): CAF 0.17 re-arms that after every message, a push to the clock thread and a
// wake-up of it each time, about 40 us of CPU per agent's send (bench/RESULTS.md).
using wait_atom = caf::atom_constant<caf::atom("wait")>;
using retry_atom = caf::atom_constant<caf::atom("retry")>;
// The front send's slot has come (true: its entry was claimed as it was queued).
using go_atom = caf::atom_constant<caf::atom("go")>;
using idlecheck_atom = caf::atom_constant<caf::atom("idlecheck")>;
using conversation_impl =
    conversation_actor::extend<caf::reacts_to<wait_atom, std::int64_t>, caf::reacts_to<retry_atom>,
                               caf::reacts_to<go_atom, bool>, caf::reacts_to<idlecheck_atom>>;

conversation_impl::behavior_type conversation(conversation_impl::stateful_pointer<conversation_state> self,
                                              conversation_links links, site_actor site, std::string key);

}  // namespace wachat::actors

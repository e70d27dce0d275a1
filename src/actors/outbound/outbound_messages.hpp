#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "domain/graph_error_policy.hpp"
#include "domain/outbound.hpp"
#include "infra/outbound_store.hpp"

// The plain data of agents' sends as they travel HTTP → site → conversation actor → cloud
// sender. No CAF here: the HTTP layer reads send_reply.
namespace wachat::actors {

// One send request, checked (domain::parse_outbound), on its way to its conversation's actor.
// The site actor fills in its number and token.
struct outbound_send {
  std::int64_t conversation_id = 0;
  std::string site;
  domain::outbound_request request;
  std::string phone_number_id;
  std::string access_token;  // opened; never logged, never answered
  // Set: not a new message but a retry by hand of this given-up send (`request` is unused).
  std::int64_t resend_message_id = 0;
  // Set by the conversation actor: this send will be its front one and its slot in the number's
  // rate is this many microseconds away (at most a second), so its entry is claimed for the
  // first attempt as it is queued.
  std::optional<std::int64_t> claim_after_us;
  // Set by the conversation actor: decided on facts it kept from an earlier send, which the
  // enqueue checks still hold (infra::enqueue_item::decided_on).
  std::optional<infra::decided_facts> decided_on;
};

// How a send request ended, as far as the API answers it (API.md §3.4).
struct send_reply {
  enum class kind {
    sent,                  // 201: Meta took it
    reacted,               // 200: Meta took the reaction; `message` is its target now
    failed,                // 502: Meta refused it for good (`graph`)
    queued,                // 202: still being tried when the wait ended
    replayed,              // the same client_message_id and body: the first outcome again
    window_closed,         // 409
    recipient_opted_out,   // 409: a MARKETING template to a customer who stopped them
    idempotency_conflict,  // 409: the same client_message_id with another body
    unknown_reply,         // 422: reply_to names no message of this conversation
    template_invalid,      // 422: `error` says what is wrong with the template send
    templates_unavailable, // 502: the site's templates could not be fetched (`graph`)
    unknown_target,        // 422: a reaction's message_id names no message of this conversation
    refused,               // 502: Meta refused a reaction (`graph`); nothing stored
    no_recipient,          // 422: the visitor has neither phone nor BSUID
    not_found,             // 404
    invalid_state,         // 409: a retry of a message that is not a given-up send
    disabled,              // 409 whatsapp_disabled
    credentials_refused,   // 409 whatsapp_disabled: Meta refused the site's token (190) lately
    not_configured,        // 409 whatsapp_disabled: no number or token
    unavailable,           // 503
  };
  kind what = kind::unavailable;
  std::string message;  // the message's API JSON text, when there is one
  std::optional<domain::graph_error> graph;
  std::string error;  // for unavailable: why (logged, not answered)
};

// An agent's reaction, for a cloud sender: sent to Meta at once (it adds no message, so it has
// no outbox entry), then recorded on its target.
struct reaction_job {
  std::int64_t conversation_id = 0;
  std::string target;  // our message id or its wamid, as the agent gave it
  std::string emoji;   // empty removes the agent's reaction
  std::string phone_number_id;
  std::string access_token;
};

// One attempt at one outbox entry, for a cloud sender.
struct attempt_job {
  std::int64_t message_id = 0;
  std::string phone_number_id;
  std::string access_token;
  // The entry was claimed as it was queued (outbound_send::claim_after_us): the worker that
  // queued it holds the claim and calls Meta as this attempt comes, without claiming again.
  bool claimed = false;
  // Its slot in the number's rate plus domain::slot_lateness_us, in steady-clock microseconds:
  // not sent to Meta after this (answered `late`). 0: no limit.
  std::int64_t depart_by_us = 0;
};

// What became of an attempt, before any decision about a failure.
struct attempt_result {
  enum class kind {
    sent,         // recorded: `message` is the message now
    failed,       // Meta or the transport failed: `error`, `request_sent`; nothing recorded yet
    not_claimed,  // the entry is gone, held by another attempt, or behind an earlier one
    unavailable,  // the database could not be reached: nothing happened
    late,         // its slot had passed (attempt_job::depart_by_us): not sent, not claimed
  };
  kind what = kind::unavailable;
  int attempt = 0;
  std::string message;
  std::optional<domain::graph_error> error;
  bool request_sent = false;
};

// The conversation actor's decision about a failed attempt, for a cloud sender to record.
struct attempt_decision {
  std::int64_t message_id = 0;
  bool give_up = false;  // else: try again after delay_ms
  bool retryable = false;
  std::int64_t delay_ms = 0;
  domain::graph_error error;
  // Meta refused because the window is closed (131047): the conversation actor shut it as of
  // this time (unix s), and the store closes it too, unless a later customer message is known.
  std::optional<std::int64_t> window_closed_at;
};

}  // namespace wachat::actors

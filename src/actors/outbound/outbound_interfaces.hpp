#pragma once
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <optional>
#include <string>

#include "actors/atoms.hpp"
#include "actors/graph_messages.hpp"
#include "actors/outbound/outbound_messages.hpp"
#include "infra/outbound_store.hpp"

// The typed interface of the cloud senders (DESIGN.md §2): what a conversation actor asks.
namespace wachat::actors {

using facts_atom = caf::atom_constant<caf::atom("facts")>;      // what a send is decided on
using enqueue_atom = caf::atom_constant<caf::atom("enqueue")>;  // message + outbox entry
using attempt_atom = caf::atom_constant<caf::atom("attempt")>;  // one call to Meta
using settle_atom = caf::atom_constant<caf::atom("settle")>;    // record a failed attempt's fate
using answer_atom = caf::atom_constant<caf::atom("answer")>;    // Graph's answer, to the worker
using refacts_atom = caf::atom_constant<caf::atom("refacts")>;  // what a retry is decided on
using requeue_atom = caf::atom_constant<caf::atom("requeue")>;  // a given-up send, queued again
using markread_atom = caf::atom_constant<caf::atom("markread")>;  // a read receipt to Meta
using react_atom = caf::atom_constant<caf::atom("react")>;        // an agent's reaction
using optout_atom = caf::atom_constant<caf::atom("optout")>;      // marketing_opt_out set

// The cloud senders: a supervised pool of workers with a database connection each, sharing the
// Graph client. They carry out what a conversation actor decided; they decide nothing.
using cloud_sender_actor = caf::typed_actor<
    // The site, the conversation, the request's client_message_id (empty: none).
    caf::replies_to<facts_atom, std::string, std::int64_t, std::string>::with<infra::send_facts>,
    caf::replies_to<enqueue_atom, outbound_send>::with<infra::send_enqueued>,
    caf::replies_to<attempt_atom, attempt_job>::with<attempt_result>,
    // sent: `message` is the target with its reactions; failed: Meta's `error`; not_claimed: no
    // such target (or none Meta knows).
    caf::replies_to<react_atom, reaction_job>::with<attempt_result>,
    caf::replies_to<settle_atom, attempt_decision>::with<std::string>,
    // The site, the conversation, the message.
    caf::replies_to<refacts_atom, std::string, std::int64_t, std::int64_t>::with<infra::resend_facts>,
    // The message as queued again; empty when it was no longer a given-up send.
    caf::replies_to<requeue_atom, std::int64_t>::with<std::string>,
    // A read receipt (number, token, the customer's wamid, with a typing indicator): sent, and a
    // failure logged; nothing waits for it.
    caf::reacts_to<markread_atom, std::string, std::string, std::string, bool>,
    // The site, the customer's key, opted out (true) or back in.
    caf::reacts_to<optout_atom, std::string, std::string, bool>,
    // Meta refused this message with 131050: its customer stopped marketing messages.
    caf::reacts_to<optout_atom, std::int64_t>,
    caf::reacts_to<stop_atom>>;

}  // namespace wachat::actors

// Local messages only: never serialized (some hold an opened access token).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::actors::outbound_send)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::domain::outbound_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::actors::send_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::actors::attempt_job)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::actors::reaction_job)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::actors::attempt_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::actors::attempt_decision)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::infra::send_facts)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::infra::send_enqueued)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::infra::resend_facts)

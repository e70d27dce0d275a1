#pragma once
#include <caf/actor_addr.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "actors/atoms.hpp"
#include "actors/inbound/inbound_messages.hpp"
#include "actors/outbound/outbound_interfaces.hpp"
#include "actors/site/site_answer.hpp"
#include "actors/graph_messages.hpp"
#include "infra/site_settings.hpp"

// The typed interfaces of the site area (DESIGN.md §2): the site directory, a site actor per
// site, a conversation actor per live customer conversation within it.
namespace wachat::actors {

using read_atom = caf::atom_constant<caf::atom("read")>;        // a site's settings
using change_atom = caf::atom_constant<caf::atom("change")>;    // PUT settings
using remove_atom = caf::atom_constant<caf::atom("remove")>;    // DELETE .../whatsapp
using check_atom = caf::atom_constant<caf::atom("check")>;      // POST .../whatsapp/test
using save_atom = caf::atom_constant<caf::atom("save")>;        // site -> directory: write
using clear_atom = caf::atom_constant<caf::atom("clear")>;      // site -> directory: forget
using record_atom = caf::atom_constant<caf::atom("record")>;    // site -> directory: a check
using refresh_atom = caf::atom_constant<caf::atom("refresh")>;  // directory -> site: reloaded
using graph_atom = caf::atom_constant<caf::atom("graph")>;      // Graph's answer, to the asker
using patch_atom = caf::atom_constant<caf::atom("patch")>;    // a dashboard write to a conversation
using verify_atom = caf::atom_constant<caf::atom("verify")>;  // is this a site's verify token?
using route_atom = caf::atom_constant<caf::atom("route")>;    // phone number ids -> site actors
using watch_atom = caf::atom_constant<caf::atom("watch")>;    // tell me when routes change
using send_atom = caf::atom_constant<caf::atom("send")>;      // an agent's send
using resume_atom = caf::atom_constant<caf::atom("resume")>;  // an outbox entry nobody is on
using pace_atom = caf::atom_constant<caf::atom("pace")>;      // a send slot of the site's number
using templates_atom = caf::atom_constant<caf::atom("templates")>;  // the template list
using tpage_atom = caf::atom_constant<caf::atom("tpage")>;          // a page of it, from Graph
using broken_atom = caf::atom_constant<caf::atom("broken")>;  // Meta refused the token (190)
using testmsg_atom = caf::atom_constant<caf::atom("testmsg")>;  // POST .../whatsapp/test-message
using welcome_atom = caf::atom_constant<caf::atom("welcome")>;  // a new conversation began
using tchanged_atom = caf::atom_constant<caf::atom("tchanged")>;  // a WABA's templates changed

// What the directory answers a site actor after writing its settings.
struct settings_written {
  infra::settings_write result = infra::settings_write::done;
  bool failed = false;  // the database could not be reached or refused; `error` says why
  std::string error;
  std::optional<infra::site_settings> settings;  // as stored now
};

// Writes the dashboard's changes to conversations (a supervised pool of workers, each with a
// connection), for the conversation actors.
using conversation_writer_actor =
    caf::typed_actor<caf::replies_to<write_atom, infra::conversation_change>::with<conversation_reply>,
                     caf::reacts_to<stop_atom>>;

// One customer's conversation in this process: the single writer of its window and order, and
// of the dashboard's changes to it, taken in turn with the customer's messages. `store` and
// `patch` answer once committed; `stop` is sent by its site only.
// `send` answers once Meta's outcome is known or the send wait ended; `resume` (a message id,
// the site's number and token) takes up an outbox entry left by a stopped actor or process.
using conversation_actor =
    caf::typed_actor<caf::replies_to<store_atom, unit_job>::with<domain::unit_outcome>,
                     caf::replies_to<patch_atom, infra::conversation_change>::with<conversation_reply>,
                     caf::replies_to<send_atom, outbound_send>::with<send_reply>,
                     caf::reacts_to<resume_atom, std::int64_t, std::string, std::string>,
                     caf::reacts_to<stop_atom>>;

// One site: owns its settings and opened credentials (refreshed by the directory), decides
// settings changes (checking them with Graph first), routes each unit to its customer's
// conversation actor (spawned on first use) and retires idle ones. `idle` comes from a
// conversation actor (its key, id and units taken).
using site_actor = caf::typed_actor<
    caf::replies_to<store_atom, unit_job>::with<domain::unit_outcome>,
    caf::replies_to<read_atom>::with<site_answer>,
    caf::replies_to<change_atom, infra::site_settings_update>::with<site_answer>,
    caf::replies_to<remove_atom>::with<site_answer>,
    caf::replies_to<check_atom>::with<site_answer>,
    caf::reacts_to<refresh_atom, infra::site_settings>,
    caf::reacts_to<graph_atom, std::uint64_t, infra::graph_response>,
    caf::replies_to<patch_atom, std::string, infra::conversation_change>::with<conversation_reply>,
    // An agent's send to the customer `key`; `resume`: an outbox entry (key, message id).
    caf::replies_to<send_atom, std::string, outbound_send>::with<send_reply>,
    caf::reacts_to<resume_atom, std::string, std::int64_t>,
    // A conversation actor's next attempt: how long to wait for its slot (µs), at the site's
    // messages_per_second.
    caf::replies_to<pace_atom>::with<std::int64_t>,
    // A send found the site's token refused (Meta's error title): recorded as its last check.
    caf::reacts_to<broken_atom, domain::graph_error>,
    // A customer's message started a conversation (key, id): the site's welcome_template goes.
    caf::reacts_to<welcome_atom, std::string, std::int64_t>,
    caf::reacts_to<tchanged_atom>,
    // A test message to a phone (no conversation, nothing stored): Meta's wamid, or its error.
    caf::replies_to<testmsg_atom, std::string, domain::outbound_request>::with<site_answer>,
    // The templates (true: fetch them again now); Graph's pages come back as `tpage`.
    caf::replies_to<templates_atom, bool>::with<site_answer>,
    caf::reacts_to<tpage_atom, std::uint64_t, infra::graph_response>,
    caf::reacts_to<idle_atom, std::string, caf::actor_id, std::uint64_t>, caf::reacts_to<stop_atom>>;

// The directory's answer to `route`: for each phone number id asked, in order, the site and
// its actor (an empty site: no site has it), or why none could be told now.
struct site_routes {
  std::vector<std::string> sites;
  std::vector<site_actor> actors;
  std::string error;  // set: the lookup failed for now (the units are tried again later)
};

// Who remembers the directory's routes (the inbox dispatcher) and must forget them when they
// change. The directory's answers and its `forget` travel in order, so nothing stale survives.
using route_watcher = caf::typed_actor<caf::reacts_to<forget_atom>>;

// The sites of this process: the phone number id -> site routing, the site actors (spawned
// with their settings when first needed), and the SQL of site settings on its own connection.
// It hears of changes made in this process at once and of changes made by others through
// LISTEN (polled by `tick`), and hands the reloaded settings to the site's actor. The inbox
// dispatcher asks `route` for the phone number ids it has no answer for, sends each unit to
// its site's actor itself, and keeps the answers until the directory says `forget`.
using site_directory_actor = caf::typed_actor<
    caf::replies_to<route_atom, std::vector<std::string>>::with<site_routes>,
    caf::reacts_to<watch_atom, route_watcher>,
    caf::replies_to<read_atom, std::string>::with<site_answer>,
    caf::replies_to<change_atom, std::string, infra::site_settings_update>::with<site_answer>,
    caf::replies_to<remove_atom, std::string>::with<site_answer>,
    caf::replies_to<check_atom, std::string>::with<site_answer>,
    caf::replies_to<templates_atom, std::string, bool>::with<site_answer>,
    caf::replies_to<testmsg_atom, std::string, std::string, domain::outbound_request>::with<site_answer>,
    // A dashboard write: the site, the customer's key (their phone, else their BSUID), the change.
    caf::replies_to<patch_atom, std::string, std::string, infra::conversation_change>::with<conversation_reply>,
    // An agent's send to the conversation `s.conversation_id`, by a caller who may see only the
    // given site (empty: the admin token, every site); another site's conversation is not_found.
    caf::replies_to<send_atom, std::string, outbound_send>::with<send_reply>,
    caf::replies_to<verify_atom, std::string>::with<bool>,
    // Meta's template webhooks for a WABA (its id): the sites using it drop their template cache.
    caf::reacts_to<tchanged_atom, std::string>,
    caf::replies_to<save_atom, std::string, infra::site_settings_update>::with<settings_written>,
    caf::replies_to<clear_atom, std::string>::with<settings_written>,
    caf::replies_to<record_atom, std::string, bool, std::string>::with<settings_written>,
    caf::reacts_to<tick_atom>, caf::reacts_to<stop_atom>>;

}  // namespace wachat::actors

// Local messages only: never serialized (they may hold an opened access token).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::actors::site_answer)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::actors::settings_written)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::actors::conversation_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::actors::site_routes)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::infra::conversation_change)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::infra::site_settings)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::infra::site_settings_update)

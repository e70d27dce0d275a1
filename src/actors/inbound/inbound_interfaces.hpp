#pragma once
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/atoms.hpp"
#include "actors/inbound/inbound_messages.hpp"
#include "actors/inbound/intake.hpp"

// The typed interfaces of the inbound path (DESIGN.md §2): what each actor takes and answers.
namespace wachat::actors {

// The inbound writer pool: stores a unit and answers once it is committed (or why not).
using inbound_writer_actor =
    caf::typed_actor<caf::replies_to<write_atom, unit_job>::with<domain::unit_outcome>,
                     caf::reacts_to<stop_atom>>;

using wake_atom = caf::atom_constant<caf::atom("wake")>;
using born_atom = caf::atom_constant<caf::atom("born")>;
using rescan_atom = caf::atom_constant<caf::atom("rescan")>;
using work_atom = caf::atom_constant<caf::atom("work")>;
using doubt_atom = caf::atom_constant<caf::atom("doubt")>;

// One row an intake writer committed as its process's own (owner_key), with its body.
struct owned_row {
  std::int64_t id = 0;
  std::string body;
};
struct owned_rows {
  std::int64_t owner_key = 0;
  std::vector<owned_row> rows;
};

// The inbox dispatcher: `born` with the rows an intake writer of this process committed as its
// own (processed from memory, never claimed); `wake` after it committed rows anyone may claim,
// from this id on; `rescan` to requeue and route again (each `tick`, a second). `work` (claim a
// batch), `done` (write finished claims) and `flush` (write the outcomes of owned rows that
// waited for company) are turns it sends itself; `forget` comes from the site directory when the
// routes it handed out changed, and after a settings change in this process (unroutable rows
// are then looked at again). `doubt` from an intake writer that lost the answer to a commit
// made with that owner key.
using inbox_dispatcher_actor =
    caf::typed_actor<caf::reacts_to<born_atom, owned_rows>, caf::reacts_to<wake_atom, std::int64_t>,
                     caf::reacts_to<doubt_atom, std::int64_t>,
                     caf::reacts_to<rescan_atom>,
                     caf::reacts_to<tick_atom>, caf::reacts_to<work_atom>, caf::reacts_to<done_atom>,
                     caf::reacts_to<flush_atom>,
                     caf::reacts_to<forget_atom>, caf::reacts_to<stop_atom>>;

// The webhook intake: the supervisor takes only `stop` from others (it commits what its writers
// hold, then ends); the HTTP threads hand each signed body straight to a writer (`commit`), which
// commits what reached it while the previous commit ran as one statement.
using intake_actor = caf::typed_actor<caf::reacts_to<stop_atom>>;
using intake_writer_actor = caf::typed_actor<caf::reacts_to<commit_atom, intake_item>, caf::reacts_to<stop_atom>>;

}  // namespace wachat::actors

// Local messages only: never serialized.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::actors::intake_item)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::actors::owned_rows)

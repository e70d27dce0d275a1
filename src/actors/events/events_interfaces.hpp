#pragma once
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "actors/atoms.hpp"
#include "http/stream_sink.hpp"

// The typed interface of the live-events area (DESIGN.md §2, API.md §3.5).
namespace wachat::actors {

using subscribe_atom = caf::atom_constant<caf::atom("subscribe")>;
using poll_atom = caf::atom_constant<caf::atom("poll")>;

// A new SSE stream: the site's events after `after` (an event id) are written to `sink`.
struct event_subscription {
  std::string site;
  std::int64_t after = 0;
  std::shared_ptr<http::stream_sink> sink;
};

// The event hub: one per process, detached (it waits on its own connection for NOTIFY).
// `poll` is its own turn (hear notifications, deliver, prune); it sends it to itself.
using event_hub_actor = caf::typed_actor<caf::reacts_to<subscribe_atom, event_subscription>,
                                         caf::reacts_to<poll_atom>, caf::reacts_to<stop_atom>>;

}  // namespace wachat::actors

// Local messages only: never serialized.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::actors::event_subscription)

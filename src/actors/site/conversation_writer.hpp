#pragma once
#include <caf/fwd.hpp>
#include <memory>
#include <string>

#include "actors/site/site_interfaces.hpp"
#include "infra/metrics.hpp"

namespace wachat::actors {

// The pool that writes the dashboard's changes to conversations for their conversation actors:
// `count` detached workers, each with its own connection, supervised (supervised_workers:
// `wachat_conversation_writer_restarts_total`); a change whose worker died is written again
// once (it only sets values), and answered as failed if a second worker dies with it.
conversation_writer_actor spawn_conversation_writer(caf::actor_system& sys, const std::string& url,
                                                    unsigned count, std::shared_ptr<infra::metrics> metrics);

}  // namespace wachat::actors

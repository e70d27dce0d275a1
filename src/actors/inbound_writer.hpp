#pragma once
#include <caf/fwd.hpp>
#include <string>
#include <vector>

namespace wachat::actors {

// Detached actors, each with its own PostgreSQL connection, that store the units conversation
// actors hand them. Units arriving together are committed together (group commit, as intake
// does) with a few set-based statements per batch (infra::store_units); a batch that hits a
// deadlock goes again, and one that hits any other error is stored again unit by unit, each in
// its own savepoint, so that only the bad unit fails. Answers every
// `(write_atom, unit_job)` request with a domain::unit_outcome once its batch committed.
std::vector<caf::actor> spawn_inbound_writers(caf::actor_system& sys, const std::string& url,
                                              unsigned count);

}  // namespace wachat::actors

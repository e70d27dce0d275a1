#pragma once
#include <caf/fwd.hpp>
#include <memory>
#include <string>

#include "actors/inbound/inbound_interfaces.hpp"
#include "infra/metrics.hpp"

namespace wachat::actors {

// The actor that stores the units conversation actors hand it (`(write_atom, unit_job)`,
// answered with a domain::unit_outcome once committed), with `count` detached workers behind it,
// each with its own PostgreSQL connection. Units waiting while a worker is busy are committed
// together (group commit, as intake does) with a few set-based statements per batch
// (infra::store_units); a batch that hits a deadlock goes again, and one that hits any other
// error is stored again unit by unit, each in its own savepoint, so that only the bad unit
// fails. The first worker takes every batch it can; the others help when it falls behind.
// `stop_atom` stores what is queued, then stops the workers and the pool. Counts its batches,
// their units and the batches a further worker took in `metrics` (wachat_inbound_*_total).
inbound_writer_actor spawn_inbound_writer_pool(caf::actor_system& sys, const std::string& url,
                                     unsigned count, std::shared_ptr<infra::metrics> metrics);

}  // namespace wachat::actors

#pragma once
#include <caf/atom.hpp>

// Message tags shared between actors. CAF 0.17 atoms hold at most 10 characters.
namespace wachat::actors {

using commit_atom = caf::atom_constant<caf::atom("commit")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
using probe_atom = caf::atom_constant<caf::atom("probe")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using done_atom = caf::atom_constant<caf::atom("done")>;    // a worker finished its job
using forget_atom = caf::atom_constant<caf::atom("forget")>;  // what you were told changed

}  // namespace wachat::actors

#pragma once
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "actors/atoms.hpp"
#include "domain/background_yield.hpp"
#include "infra/metrics.hpp"

// A pool of workers whose jobs wait in a PostgreSQL table (media downloads, CRM syncs): the
// table is the queue, so nothing is handed to a worker but a nudge. Each worker, when pumped,
// claims one due job under a lease, does it, and answers whether it found one; the pool looks
// every `poll` on its own and at once when woken, and keeps pumping while work turns up (one
// more worker joining each time). Workers are supervised (supervised_workers: restarted with
// back-off, `<name>_restarts_total`); a restarted worker gives back what its predecessor held
// on its first pump, which the job tables make possible (claimed_by names process and slot).
namespace wachat::actors {

using wake_atom = caf::atom_constant<caf::atom("wake")>;  // there may be work now
using job_pump_atom = caf::atom_constant<caf::atom("jobpump")>;

// Answers true when it did (or settled) a job, false when none was due.
using job_worker_actor = caf::typed_actor<caf::replies_to<job_pump_atom>::with<bool>, caf::reacts_to<stop_atom>>;
using job_pool_actor = caf::typed_actor<caf::reacts_to<wake_atom>, caf::reacts_to<stop_atom>>;

struct job_pool_settings {
  std::string metric_name;  // e.g. "wachat_media_worker"
  unsigned workers = 1;
  std::chrono::milliseconds poll{500};
  // Spawns the worker of slot `i` (detached: workers block on I/O).
  std::function<job_worker_actor(caf::actor_system& sys, std::size_t i)> spawn;
  // Runs when the pool is told to stop, before its workers are.
  std::function<void()> on_stop;
  // Optional: a number that grows whenever higher-priority work (inbound messages) is done. While
  // it has moved lately the pool starts jobs only as domain::background_should_yield allows.
  std::function<std::uint64_t()> activity;
  domain::yield_settings yield;
};

job_pool_actor spawn_job_pool(caf::actor_system& sys, job_pool_settings settings,
                              std::shared_ptr<infra::metrics> metrics);

}  // namespace wachat::actors

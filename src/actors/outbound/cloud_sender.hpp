#pragma once
#include <chrono>
#include <caf/fwd.hpp>
#include <memory>
#include <string>

#include "actors/outbound/outbound_interfaces.hpp"
#include "infra/metrics.hpp"

namespace wachat::infra {
class blob_store;
class graph_client;
}  // namespace wachat::infra

namespace wachat::actors {

// The cloud senders (DESIGN.md §2): a pool actor handing each request to the next live worker,
// and `workers` detached workers, each with its own connection. A worker claims an outbox entry
// for an attempt (committed before Meta is called), calls Graph without blocking its thread on
// the answer (it takes other requests meanwhile), and records a success at once; a failure goes
// back to the conversation actor, which decides and has it recorded (`settle`). Supervised the
// one way (supervised_workers: `wachat_cloud_sender_restarts_total`); the requests a dead worker
// held fail, and their conversation actors try again: the outbox entry is in the database.
// With a single worker (as main starts it), an entry may also be claimed as it is queued
// (outbound_send::claim_after_us), the worker holding the claim until the attempt comes; with
// more, the pool could hand the attempt to another worker, so each entry is claimed at its attempt.
// `blobs`: where agents' uploaded files are, which a send by media_id uploads to Meta first.
// `doubt`: WACHAT_SEND_DOUBT_MS; a claim whose file is still uploading is renewed well within it.
cloud_sender_actor spawn_cloud_senders(caf::actor_system& sys, const std::string& database_url, unsigned workers,
                                       std::shared_ptr<infra::graph_client> graph,
                                       std::shared_ptr<infra::blob_store> blobs, std::chrono::milliseconds doubt,
                                       std::shared_ptr<infra::metrics> metrics);

}  // namespace wachat::actors

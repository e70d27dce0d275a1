#include "actors/followups/followups.hpp"

#include <caf/all.hpp>
#include <pqxx/pqxx>

#include "actors/supervision/fault_point.hpp"
#include "actors/supervision/job_worker.hpp"
#include "domain/job_retry.hpp"
#include "domain/phone.hpp"
#include "infra/config.hpp"
#include "infra/assignment_store.hpp"
#include "infra/crm_store.hpp"
#include "infra/crypto.hpp"
#include "infra/log.hpp"
#include "infra/site_settings.hpp"

namespace wachat::actors {
namespace {

constexpr std::chrono::seconds lease{60};

struct shared_state {
  followup_settings settings;
  std::string process;
  infra::metrics::counter* linked = nullptr;
  infra::metrics::counter* failed = nullptr;
  infra::metrics::counter* retried = nullptr;
  std::atomic<bool> stopping{false};
};

struct worker_state : job_worker_base {
  std::shared_ptr<shared_state> shared;
  static inline const char* name = "followup_worker";
};

void run(worker_state& st, const infra::crm_job& job) {
  auto& c = st.connection();
  const auto& cfg = *st.shared->settings.cfg;
  auto site = infra::site_settings_store{c, cfg}.load(job.site_id);
  // Numbers in the CRM written without a country code are read in the country of the site's
  // own WhatsApp number.
  if (job.kind == "assign") {
    if (infra::run_assign_job(c, job, st.worker_name, site && site->auto_assign)) {
      st.shared->linked->fetch_add(1, std::memory_order_relaxed);
    }
    return;
  }
  std::string region = site && site->phone_number ? domain::region_of(*site->phone_number) : std::string{};
  bool enabled = !site || site->crm_sync;
  if (infra::run_crm_job(c, job, st.worker_name, region, enabled) && enabled) {
    st.shared->linked->fetch_add(1, std::memory_order_relaxed);
  }
}

bool pump(worker_state& st) {
  if (st.shared->stopping.load()) {
    return false;
  }
  auto& c = st.connection();
  if (st.may_hold_jobs) {
    infra::release_crm_jobs(c, st.worker_name, "the CRM sync worker stopped while linking");
    st.may_hold_jobs = false;
  }
  auto job = infra::claim_crm_job(c, st.worker_name, lease);
  if (!job) {
    return false;
  }
  st.may_hold_jobs = true;
  if (job->attempts > domain::job_max_attempts) {
    if (infra::record_crm_failed(c, job->id, st.worker_name, job->last_error)) {
      st.shared->failed->fetch_add(1, std::memory_order_relaxed);
    }
    st.may_hold_jobs = false;
    return true;
  }
  // Test builds: a worker that dies holding a job.
  fault_point("crm_sync");
  try {
    run(st, *job);
  } catch (const pqxx::broken_connection&) {
    throw;  // the job is given back on the next pump, over a new connection
  } catch (const std::exception& e) {
    auto d = domain::decide_job_retry(false, job->attempts, st.shared->settings.retry_base);
    infra::log_warn("crm_link_failed", {{"job", std::to_string(job->id)},
                                        {"attempt", std::to_string(job->attempts)},
                                        {"give_up", d.give_up ? "true" : "false"},
                                        {"error", e.what()}});
    if (d.give_up) {
      if (infra::record_crm_failed(c, job->id, st.worker_name, e.what())) {
        st.shared->failed->fetch_add(1, std::memory_order_relaxed);
      }
    } else if (infra::record_crm_retry(c, job->id, st.worker_name, d.delay, e.what())) {
      st.shared->retried->fetch_add(1, std::memory_order_relaxed);
    }
  }
  st.may_hold_jobs = false;
  return true;
}

job_worker_actor::behavior_type worker(job_worker_actor::stateful_pointer<worker_state> self,
                                       std::shared_ptr<shared_state> shared, std::string name) {
  self->state.database_url = shared->settings.database_url;
  self->state.shared = std::move(shared);
  self->state.worker_name = std::move(name);
  return {
      [=](job_pump_atom) { return guarded_pump(self->state, "followup_db_failed", [&] { return pump(self->state); }); },
      [=](stop_atom) { self->quit(); },
  };
}

}  // namespace

job_pool_actor spawn_followups(caf::actor_system& sys, followup_settings settings, std::shared_ptr<infra::metrics> metrics) {
  auto shared = std::make_shared<shared_state>();
  shared->settings = std::move(settings);
  shared->process = infra::random_hex(8);
  shared->linked = &metrics->get_counter("wachat_followups_done_total", "Conversation follow-ups done (CRM links and activities, assignments).");
  shared->failed = &metrics->get_counter("wachat_followups_failed_total", "Conversation follow-ups given up (kept as failed).");
  shared->retried = &metrics->get_counter("wachat_followup_retries_total", "Conversation follow-ups that failed and were scheduled again.");
  job_pool_settings pool;
  pool.metric_name = "wachat_followup_worker";
  pool.workers = shared->settings.workers;
  pool.spawn = [shared](caf::actor_system& s, std::size_t i) {
    return s.spawn<caf::detached>(worker, shared, shared->process + "/" + std::to_string(i));
  };
  pool.on_stop = [shared] { shared->stopping.store(true); };
  return spawn_job_pool(sys, std::move(pool), std::move(metrics));
}

}  // namespace wachat::actors

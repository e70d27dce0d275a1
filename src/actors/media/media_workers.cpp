#include "actors/media/media_workers.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "actors/supervision/fault_point.hpp"
#include "actors/supervision/job_pool.hpp"
#include "actors/supervision/job_worker.hpp"
#include "domain/media.hpp"
#include "infra/blob_store.hpp"
#include "infra/config.hpp"
#include "infra/crypto.hpp"
#include "infra/graph_client.hpp"
#include "infra/log.hpp"
#include "infra/media_store.hpp"
#include "infra/site_settings.hpp"
#include "infra/thread_priority.hpp"
#include "infra/url.hpp"

namespace wachat::actors {
namespace {

using worker_actor = job_worker_actor;

// A claimed job is the worker's for this long; past it (the process died, say) any worker may
// take it. Longer than the slowest allowed download (a 100 MB document).
constexpr std::chrono::seconds lease{15 * 60};
constexpr std::chrono::minutes whole_download{10};

struct counters {
  infra::metrics::counter* stored = nullptr;
  infra::metrics::counter* failed = nullptr;
  infra::metrics::counter* retried = nullptr;
  infra::metrics::gauge* queued = nullptr;
};

struct shared_state {
  media_settings settings;
  counters count;
  std::string process;  // names this process's workers in claimed_by
  std::atomic<bool> stopping{false};
};

// Why a try failed, and whether trying again could help.
struct fault {
  std::string why;
  bool permanent = false;
};

// Streams a download into a blob writer, hashing as it goes.
class blob_sink final : public infra::download_sink {
 public:
  explicit blob_sink(infra::blob_writer& w) : w_(w) {}
  void begin(std::optional<std::uint64_t>, const std::string&) override {}
  bool write(const char* data, std::size_t size) override {
    if (!w_.write(data, size)) {
      why_ = "storing the file failed: " + w_.error();
      return false;
    }
    hash_.update(data, size);
    bytes_ += size;
    return true;
  }
  std::string why() const override { return why_; }
  std::uint64_t bytes() const { return bytes_; }
  std::array<unsigned char, 32> digest() { return hash_.finish(); }

 private:
  infra::blob_writer& w_;
  infra::sha256_stream hash_;
  std::uint64_t bytes_ = 0;
  std::string why_;
};

struct worker_state : job_worker_base {
  std::shared_ptr<shared_state> shared;
  bool prioritized = false;  // this (detached) thread runs at background priority
  std::uint64_t pumps = 0;
  static inline const char* name = "media_worker";
};

std::string describe(const domain::graph_error& e) {
  std::string out = e.title.empty() ? "the request failed" : e.title;
  if (e.code != 0) {
    out += " (" + std::to_string(e.code) + ")";
  } else if (e.http_status != 0) {
    out += " (HTTP " + std::to_string(e.http_status) + ")";
  }
  return out;
}

struct media_info {
  std::string url;
  std::string mime_type;
  std::string sha256;
  std::uint64_t file_size = 0;
};

std::variant<media_info, fault> look_up(worker_state& st, const infra::media_job& job, const std::string& token) {
  infra::graph_request req;
  req.method = infra::graph_method::get;
  req.path = "/" + infra::percent_encode(job.media_id);
  req.access_token = token;
  auto res = st.shared->settings.graph->request_blocking(std::move(req));
  if (!res.ok()) {
    const auto& e = *res.error;
    if (domain::media_lookup_failed_for_good(e)) {
      return fault{"WhatsApp no longer has this media (ids live 7 days): " + describe(e), true};
    }
    return fault{"looking up the media at WhatsApp failed: " + describe(e), false};
  }
  auto j = nlohmann::json::parse(res.body, nullptr, false);
  if (!j.is_object() || !j["url"].is_string()) {
    return fault{"WhatsApp answered the media lookup without a download URL", false};
  }
  media_info info;
  info.url = j["url"].get<std::string>();
  info.mime_type = j.value("mime_type", std::string{});
  info.sha256 = j.value("sha256", std::string{});
  if (j["file_size"].is_number_unsigned()) {
    info.file_size = j["file_size"].get<std::uint64_t>();
  } else if (j["file_size"].is_string()) {
    info.file_size = std::strtoull(j["file_size"].get<std::string>().c_str(), nullptr, 10);
  }
  return info;
}

std::string mb_text(std::uint64_t bytes) {
  return bytes % (1024 * 1024) == 0 ? std::to_string(bytes / (1024 * 1024)) + " MB"
                                    : std::to_string(bytes / 1024) + " KB";
}

// One try of a job: nullopt when the file is stored (or the job was no longer ours).
std::optional<fault> fetch(worker_state& st, const infra::media_job& job) {
  const auto& s = st.shared->settings;
  if (job.media_id.empty()) {
    return fault{"the message names no media id", true};
  }
  infra::site_settings_store settings{st.connection(), *s.cfg};
  auto site = settings.load(job.site_id);
  auto token = site ? site->effective_token(*s.cfg) : s.cfg->access_token;
  if (!token) {
    return fault{"the site has no usable access token to fetch media with", false};
  }
  auto looked = look_up(st, job, *token);
  if (auto* f = std::get_if<fault>(&looked)) {
    return *f;
  }
  auto info = std::get<media_info>(std::move(looked));
  // The file is fetched with the site's token: over TLS whenever Graph itself is (a plain
  // http:// link would hand the token to anyone on the path).
  if (s.graph->options().base_url.rfind("https://", 0) == 0 && info.url.rfind("https://", 0) != 0) {
    return fault{"WhatsApp's download URL is not https", false};
  }
  auto mime = info.mime_type.empty() ? job.mime_type : info.mime_type;
  if (!domain::media_mime_accepted(job.content_type, mime)) {
    return fault{"'" + mime + "' is not a type WhatsApp sends for " + job.content_type, true};
  }
  const auto limit = domain::media_size_limit(job.content_type, job.animated);
  if (info.file_size > limit) {
    return fault{"the file is " + std::to_string(info.file_size) + " bytes; WhatsApp allows at most " +
                     mb_text(limit) + " for " + job.content_type,
                 true};
  }
  auto name = domain::media_file_name(job.file_name, job.content_type, job.message_id, mime);
  infra::blob_meta meta{mime, name, job.content_type == "document"};
  auto created = s.blobs->create(job.site_id, name, meta);
  if (auto* why = std::get_if<std::string>(&created)) {
    return fault{"storing the file failed: " + *why, false};
  }
  auto writer = std::move(std::get<std::unique_ptr<infra::blob_writer>>(created));
  auto sink = std::make_shared<blob_sink>(*writer);
  infra::graph_request req;
  req.method = infra::graph_method::get;
  req.path = info.url;
  req.access_token = *token;
  // Never more than announced (when Meta announced a size), never more than the type allows.
  req.max_body_bytes = info.file_size > 0 ? info.file_size : limit;
  req.timeout = whole_download;
  req.stall_timeout = s.stall;
  auto res = s.graph->download_blocking(std::move(req), sink);
  if (!res.ok()) {
    const auto& e = *res.error;
    if (e.type == "response_too_large") {
      return fault{info.file_size > 0 ? "the download is larger than the " + std::to_string(info.file_size) +
                                            " bytes WhatsApp announced"
                                      : "the download is larger than WhatsApp allows for " + job.content_type,
                   true};
    }
    if (e.type == "download_refused") {
      return fault{e.title, false};
    }
    return fault{"downloading the media failed: " + describe(e), false};
  }
  if (info.file_size > 0 && sink->bytes() != info.file_size) {
    return fault{"the download ended after " + std::to_string(sink->bytes()) + " of " +
                     std::to_string(info.file_size) + " bytes",
                 false};
  }
  auto digest = sink->digest();
  auto hex = infra::hex_encode(digest.data(), digest.size());
  auto b64 = infra::base64_encode(digest.data(), digest.size());
  auto expected = info.sha256.empty() ? job.sha256 : info.sha256;
  if (!expected.empty() && !domain::sha256_names(expected, hex, b64)) {
    return fault{"the file's sha256 does not match what WhatsApp announced", false};
  }
  if (auto why = writer->commit()) {
    return fault{"storing the file failed: " + *why, false};
  }
  infra::stored_media stored;
  stored.key = writer->key();
  stored.url_path = "/media/chat/" + infra::percent_encode(job.site_id) + "/" +
                    infra::percent_encode(stored.key.substr(stored.key.rfind('/') + 1));
  stored.file_name = name;
  stored.size = sink->bytes();
  stored.mime_type = mime;
  stored.sha256_hex = hex;
  bool recorded = false;
  try {
    recorded = infra::record_media_stored(st.connection(), job.message_id, st.worker_name, stored);
  } catch (...) {
    s.blobs->remove(stored.key);  // not recorded: the next try stores it again
    throw;
  }
  if (!recorded) {
    // Our lease lapsed and another worker holds the job now: its file stands, not ours.
    s.blobs->remove(stored.key);
    return std::nullopt;
  }
  st.shared->count.stored->fetch_add(1, std::memory_order_relaxed);
  return std::nullopt;
}

void settle(worker_state& st, const infra::media_job& job, const fault& f) {
  const auto& s = st.shared->settings;
  if (st.shared->stopping.load()) {
    // Shutting down cut the try short: the job waits for the next start, as it was.
    infra::record_media_retry(st.connection(), job.message_id, st.worker_name, std::chrono::milliseconds(0),
                              job.last_error, /*uncount=*/true);
    return;
  }
  auto d = domain::decide_job_retry(f.permanent, job.attempts, s.retry_base);
  infra::log_warn("media_fetch_failed", {{"message_id", std::to_string(job.message_id)},
                                         {"attempt", std::to_string(job.attempts)},
                                         {"give_up", d.give_up ? "true" : "false"},
                                         {"error", f.why}});
  if (d.give_up) {
    if (infra::record_media_failed(st.connection(), job.message_id, st.worker_name, f.why)) {
      st.shared->count.failed->fetch_add(1, std::memory_order_relaxed);
    }
    return;
  }
  infra::record_media_retry(st.connection(), job.message_id, st.worker_name, d.delay, f.why);
  st.shared->count.retried->fetch_add(1, std::memory_order_relaxed);
}

// One pump: the worker's own jobs left from a crash given back, then the next due job done.
bool pump(worker_state& st) {
  if (st.shared->stopping.load()) {
    return false;
  }
  if (!st.prioritized) {
    // Downloads, hashing and disk writes are background work: they yield to message
    // processing when both want the CPU (bench/RESULTS.md, media beside texts).
    infra::lower_this_thread_priority();
    st.prioritized = true;
  }
  auto& c = st.connection();
  if (st.may_hold_jobs) {
    infra::release_media_jobs(c, st.worker_name, "the media worker stopped while fetching this file");
    st.may_hold_jobs = false;
  }
  auto job = infra::claim_media_job(c, st.worker_name, lease);
  // The queue's depth for /metrics: counted when the queue ran dry and every 16th job, not at
  // every claim (a count per 1 MB file showed in the media benchmark).
  if (!job || st.pumps++ % 16 == 0) {
    st.shared->count.queued->store(infra::due_media_jobs(c));
  }
  if (!job) {
    return false;
  }
  st.may_hold_jobs = true;
  if (job->attempts > domain::job_max_attempts) {
    // Its tries are used up: the last one died with its worker.
    auto why = job->last_error.empty() ? std::string{"the media could not be fetched"} : job->last_error;
    if (infra::record_media_failed(c, job->message_id, st.worker_name, why)) {
      st.shared->count.failed->fetch_add(1, std::memory_order_relaxed);
    }
    st.may_hold_jobs = false;
    return true;
  }
  // Test builds: a worker that dies holding a job (a bug, a poison file).
  fault_point("media_worker");
  if (auto f = fetch(st, *job)) {
    settle(st, *job, *f);
  }
  st.may_hold_jobs = false;
  return true;
}

worker_actor::behavior_type worker(worker_actor::stateful_pointer<worker_state> self,
                                   std::shared_ptr<shared_state> shared, std::string name) {
  self->state.database_url = shared->settings.database_url;
  self->state.shared = std::move(shared);
  self->state.worker_name = std::move(name);
  return {
      [=](job_pump_atom) { return guarded_pump(self->state, "media_worker_db_failed", [&] { return pump(self->state); }); },
      [=](stop_atom) { self->quit(); },
  };
}

}  // namespace

media_pool_actor spawn_media_workers(caf::actor_system& sys, media_settings settings,
                                     std::shared_ptr<infra::metrics> metrics) {
  auto shared = std::make_shared<shared_state>();
  shared->settings = std::move(settings);
  shared->process = infra::random_hex(8);
  shared->count.stored = &metrics->get_counter("wachat_media_stored_total", "Customers' media files stored.");
  shared->count.failed =
      &metrics->get_counter("wachat_media_failed_total", "Customers' media given up on (message `failed`).");
  shared->count.retried =
      &metrics->get_counter("wachat_media_retries_total", "Media tries that failed and were scheduled again.");
  shared->count.queued =
      &metrics->get_gauge("wachat_media_jobs_queued", "Media jobs due or in progress (all processes).");
  job_pool_settings pool;
  pool.metric_name = "wachat_media_worker";
  pool.workers = shared->settings.workers;
  pool.spawn = [shared](caf::actor_system& s, std::size_t i) {
    // Detached: a worker blocks on its connection and its download, never on the scheduler.
    return s.spawn<caf::detached>(worker, shared, shared->process + "/" + std::to_string(i));
  };
  pool.on_stop = [shared] { shared->stopping.store(true); };
  pool.activity = shared->settings.inbound_activity;
  pool.yield.max_wait = shared->settings.yield_max;
  return spawn_job_pool(sys, std::move(pool), std::move(metrics));
}

}  // namespace wachat::actors

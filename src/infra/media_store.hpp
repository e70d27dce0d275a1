#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace pqxx {
class connection_base;
}

// The SQL of media jobs (migration 012). A job is claimed under a lease and settled only by
// the worker that holds it: a worker whose lease lapsed (it stalled, its process died) finds
// its result refused, and the new holder's stands.
namespace wachat::infra {

struct media_job {
  std::int64_t message_id = 0;
  std::string site_id;
  std::int64_t conversation_id = 0;
  int attempts = 0;            // including this one
  std::string last_error;      // why the previous try failed, if one did
  std::string media_id;
  std::string content_type;    // image, video, audio, document, sticker
  std::string file_name;       // as the customer named it (documents), else empty
  std::string mime_type;       // as the webhook announced it
  std::string sha256;          // as the webhook announced it
  bool animated = false;       // stickers
};

// The next due job (or one whose lease lapsed), claimed for `worker` for `lease`.
std::optional<media_job> claim_media_job(pqxx::connection_base& c, const std::string& worker,
                                         std::chrono::seconds lease);

// Jobs `worker` held when it died go back to the queue at once, with that as their last error
// (the try counts: a file that kills every worker that takes it ends failed).
int release_media_jobs(pqxx::connection_base& c, const std::string& worker, const std::string& why);

struct stored_media {
  std::string key;       // in the blob store
  std::string url_path;  // "/media/" + the key, escaped: file_url as stored
  std::string file_name;
  std::uint64_t size = 0;
  std::string mime_type;
  std::string sha256_hex;
};

// The message becomes `stored` (message.updated) and the job goes. False when `worker` no
// longer holds the job: the caller removes its blob.
bool record_media_stored(pqxx::connection_base& c, std::int64_t message_id, const std::string& worker,
                         const stored_media& m);
// The message becomes `failed` with Meta's media error code 131052 and `why` (message.updated).
bool record_media_failed(pqxx::connection_base& c, std::int64_t message_id, const std::string& worker,
                         const std::string& why);
// The job waits `delay`, then any worker may try again. `uncount`: this try does not count
// (shutting down cut it short).
bool record_media_retry(pqxx::connection_base& c, std::int64_t message_id, const std::string& worker,
                        std::chrono::milliseconds delay, const std::string& why, bool uncount = false);

// POST .../media/retry: a customer's `failed` media message of this conversation (and site,
// when given) becomes `pending` with a fresh job (message.updated).
enum class media_retry_outcome { queued, not_found, invalid_state };
media_retry_outcome request_media_retry(pqxx::connection_base& c, std::int64_t conversation_id,
                                        std::int64_t message_id, const std::optional<std::string>& site);

// Jobs due now (for /metrics).
std::int64_t due_media_jobs(pqxx::connection_base& c);

}  // namespace wachat::infra

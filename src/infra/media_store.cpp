#include "infra/media_store.hpp"

#include <pqxx/pqxx>

#include "infra/cached_statement.hpp"
#include "infra/event_log.hpp"

namespace wachat::infra {
namespace {

// Meta's code for "media download failed" (META.md): the message's error says what went wrong.
constexpr int media_failed_code = 131052;

// The job goes, if `worker` still holds it (its lease did not lapse to another worker).
bool take_held_media_job(pqxx::transaction_base& tx, std::int64_t message_id, const std::string& worker) {
  return !exec_cached(tx, "media_done",
                      "DELETE FROM wa_media_jobs WHERE message_id = $1 AND claimed_by = $2 AND state = 'running'"
                      " RETURNING message_id",
                      message_id, worker)
              .empty();
}

// The message's change as a message.updated event (`updated`: its site and conversation).
void announce(pqxx::transaction_base& tx, std::int64_t message_id, const pqxx::result& updated) {
  if (!updated.empty()) {
    append_event(tx, updated[0][0].as<std::string>(), "message.updated", updated[0][1].as<std::int64_t>(),
                 message_id);
  }
}

}  // namespace

std::optional<media_job> claim_media_job(pqxx::connection_base& c, const std::string& worker,
                                         std::chrono::seconds lease) {
  pqxx::work w{c};
  // A claim lost in a crash costs nothing (the job is simply due again): it need not wait for
  // the WAL to reach the disk, which the texts' commits beside it do.
  w.exec("SET LOCAL synchronous_commit TO OFF");
  auto r = exec_cached(w, "media_claim",
      "WITH ready AS (SELECT message_id FROM wa_media_jobs WHERE state = 'ready' AND next_attempt_at <= now()"
      "   ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED),"
      // A lapsed lease only when nothing is ready: a dead process's job, taken over.
      " lapsed AS (SELECT message_id FROM wa_media_jobs WHERE state = 'running' AND lease_until < now()"
      "   AND NOT EXISTS (SELECT 1 FROM ready) ORDER BY lease_until LIMIT 1 FOR UPDATE SKIP LOCKED),"
      " due AS (SELECT message_id FROM ready UNION ALL SELECT message_id FROM lapsed LIMIT 1),"
      " j AS (UPDATE wa_media_jobs j SET state = 'running', attempts = j.attempts + 1, claimed_by = $1,"
      "   lease_until = now() + make_interval(secs => $2) FROM due WHERE j.message_id = due.message_id"
      "   RETURNING j.message_id, j.site_id, j.attempts, j.last_error)"
      " SELECT j.message_id, j.site_id, j.attempts, coalesce(j.last_error, ''), m.conversation_id,"
      "   coalesce(m.media_id, ''), m.content_type, coalesce(m.file_name, ''), coalesce(m.file_mime_type, ''),"
      "   coalesce(m.media_sha256, ''), coalesce((m.extra->>'animated')::boolean, false)"
      " FROM j JOIN mod_chat_messages m ON m.id = j.message_id",
      worker, static_cast<double>(lease.count()));
  w.commit();
  if (r.empty()) {
    return std::nullopt;
  }
  const auto& row = r[0];
  media_job j;
  j.message_id = row[0].as<std::int64_t>();
  j.site_id = row[1].as<std::string>();
  j.attempts = row[2].as<int>();
  j.last_error = row[3].as<std::string>();
  j.conversation_id = row[4].as<std::int64_t>();
  j.media_id = row[5].as<std::string>();
  j.content_type = row[6].as<std::string>();
  j.file_name = row[7].as<std::string>();
  j.mime_type = row[8].as<std::string>();
  j.sha256 = row[9].as<std::string>();
  j.animated = row[10].as<bool>();
  return j;
}

int release_media_jobs(pqxx::connection_base& c, const std::string& worker, const std::string& why) {
  pqxx::work w{c};
  auto r = exec_cached(w, "media_release",
      "UPDATE wa_media_jobs SET state = 'ready', claimed_by = NULL, lease_until = NULL,"
      " next_attempt_at = now(), last_error = $2 WHERE claimed_by = $1 AND state = 'running'",
      worker, why);
  w.commit();
  return static_cast<int>(r.affected_rows());
}

bool record_media_stored(pqxx::connection_base& c, std::int64_t message_id, const std::string& worker,
                         const stored_media& m) {
  pqxx::work w{c};
  if (!take_held_media_job(w, message_id, worker)) {
    return false;
  }
  announce(w, message_id,
           exec_cached(w, "media_stored",
               "UPDATE mod_chat_messages SET media_status = 'stored', media_key = $2, file_url = $3, file_name = $4,"
               " file_size = $5, file_mime_type = $6, media_sha256 = $7, error_code = NULL, error_title = NULL,"
               " error_details = NULL, error_retryable = NULL WHERE id = $1 RETURNING site_id, conversation_id",
               message_id, m.key, m.url_path, m.file_name, static_cast<std::int64_t>(m.size), m.mime_type,
               m.sha256_hex));
  w.commit();
  return true;
}

bool record_media_failed(pqxx::connection_base& c, std::int64_t message_id, const std::string& worker,
                         const std::string& why) {
  pqxx::work w{c};
  if (!take_held_media_job(w, message_id, worker)) {
    return false;
  }
  announce(w, message_id,
           exec_cached(w, "media_failed",
               "UPDATE mod_chat_messages SET media_status = 'failed', error_code = $2,"
               " error_title = 'Media download failed', error_details = $3, error_retryable = true"
               " WHERE id = $1 RETURNING site_id, conversation_id",
               message_id, media_failed_code, why));
  w.commit();
  return true;
}

bool record_media_retry(pqxx::connection_base& c, std::int64_t message_id, const std::string& worker,
                        std::chrono::milliseconds delay, const std::string& why, bool uncount) {
  pqxx::work w{c};
  auto r = exec_cached(w, "media_retry",
      "UPDATE wa_media_jobs SET state = 'ready', claimed_by = NULL, lease_until = NULL, last_error = $3,"
      " next_attempt_at = now() + make_interval(secs => $4),"
      " attempts = greatest(attempts - CASE WHEN $5 THEN 1 ELSE 0 END, 0)"
      " WHERE message_id = $1 AND claimed_by = $2 AND state = 'running'",
      message_id, worker, why, static_cast<double>(delay.count()) / 1000.0, uncount);
  w.commit();
  return r.affected_rows() > 0;
}

media_retry_outcome request_media_retry(pqxx::connection_base& c, std::int64_t conversation_id,
                                        std::int64_t message_id, const std::optional<std::string>& site) {
  pqxx::work w{c};
  auto found = exec_cached(w, "media_retry_find",
      "SELECT site_id, sender_type, media_status, media_id IS NOT NULL FROM mod_chat_messages"
      " WHERE id = $1 AND conversation_id = $2 FOR UPDATE",
      message_id, conversation_id);
  if (found.empty() || (site && found[0][0].as<std::string>() != *site)) {
    return media_retry_outcome::not_found;
  }
  if (found[0][1].as<std::string>() != "visitor" || found[0][2].as<std::string>() != "failed" ||
      !found[0][3].as<bool>()) {
    return media_retry_outcome::invalid_state;
  }
  auto site_id = found[0][0].as<std::string>();
  exec_cached(w, "media_retry_pending",
      "UPDATE mod_chat_messages SET media_status = 'pending', error_code = NULL, error_title = NULL,"
      " error_details = NULL, error_retryable = NULL WHERE id = $1", message_id);
  exec_cached(w, "media_retry_job",
      "INSERT INTO wa_media_jobs (message_id, site_id) VALUES ($1, $2)"
      " ON CONFLICT (message_id) DO UPDATE SET state = 'ready', attempts = 0, next_attempt_at = now(),"
      "   claimed_by = NULL, lease_until = NULL, last_error = NULL",
      message_id, site_id);
  append_event(w, site_id, "message.updated", conversation_id, message_id);
  w.commit();
  return media_retry_outcome::queued;
}

std::int64_t due_media_jobs(pqxx::connection_base& c) {
  pqxx::read_transaction t{c};
  auto r = t.exec("SELECT count(*) FROM wa_media_jobs WHERE (state = 'ready' AND next_attempt_at <= now())"
                  " OR (state = 'running')");
  return r[0][0].as<std::int64_t>();
}

}  // namespace wachat::infra

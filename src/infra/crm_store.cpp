#include "infra/crm_store.hpp"

#include <pqxx/pqxx>

#include "domain/phone.hpp"
#include "infra/cached_statement.hpp"
#include "infra/event_log.hpp"

namespace wachat::infra {
namespace {

using nlohmann::json;

struct visitor_row {
  std::string name;
  std::optional<std::string> phone;  // WhatsApp id: international digits
  std::optional<std::string> user_id;
  std::optional<std::string> email;
  std::optional<std::int64_t> contact;
};

std::optional<visitor_row> load_visitor(pqxx::transaction_base& tx, std::int64_t id) {
  auto r = tx.exec_params(
      "SELECT coalesce(name, ''), whatsapp_phone, whatsapp_user_id, email, crm_contact_id FROM mod_chat_visitors"
      " WHERE id = $1 FOR UPDATE",
      id);
  if (r.empty()) {
    return std::nullopt;
  }
  visitor_row v;
  v.name = r[0][0].as<std::string>();
  v.phone = r[0][1].as<std::optional<std::string>>();
  v.user_id = r[0][2].as<std::optional<std::string>>();
  v.email = r[0][3].as<std::optional<std::string>>();
  v.contact = r[0][4].as<std::optional<std::int64_t>>();
  return v;
}

// The oldest contact of the site whose phone, in whatever format it was written, is `e164`.
std::optional<std::int64_t> find_by_phone(pqxx::transaction_base& tx, const std::string& site, const std::string& e164,
                                          const std::string& region, std::optional<std::int64_t> except) {
  auto r = tx.exec_params(
      "SELECT id, phone FROM crm_contacts WHERE site_id = $1 AND phone IS NOT NULL"
      " AND right(regexp_replace(phone, '[^0-9]', '', 'g'), 8) = $2 ORDER BY id",
      site, domain::phone_tail(e164));
  for (const auto& row : r) {
    auto id = row[0].as<std::int64_t>();
    if (except && id == *except) {
      continue;
    }
    if (domain::to_e164(row[1].as<std::string>(), region) == e164) {
      return id;
    }
  }
  return std::nullopt;
}

std::optional<std::int64_t> find_one(pqxx::transaction_base& tx, const char* sql, const std::string& site,
                                     const std::string& value) {
  auto r = tx.exec_params(sql, site, value);
  return r.empty() ? std::nullopt : std::optional<std::int64_t>{r[0][0].as<std::int64_t>()};
}

// The site's contact `id` (a link to another site's contact counts as none).
bool contact_exists(pqxx::transaction_base& tx, const std::string& site, std::int64_t id,
                    std::optional<std::string>* phone) {
  auto r = tx.exec_params("SELECT phone FROM crm_contacts WHERE id = $1 AND site_id = $2 FOR UPDATE", id, site);
  if (r.empty()) {
    return false;
  }
  *phone = r[0][0].as<std::optional<std::string>>();
  return true;
}

// The visitor's contact, found or made: by its link, by phone (E.164), by BSUID, by email;
// else a new one. A linked contact without a phone takes the visitor's once it is known, unless
// another contact has it already: then the visitor moves to that one.
std::int64_t link_visitor(pqxx::transaction_base& tx, const std::string& site, std::int64_t visitor_id,
                          visitor_row& v, const std::string& region) {
  auto e164 = v.phone ? domain::whatsapp_id_to_e164(*v.phone) : std::nullopt;
  // Without a region of the site's own, the customer's country is the best guess for how
  // their number was written in the CRM.
  const auto local = region.empty() && e164 ? domain::region_of(*e164) : region;
  std::optional<std::int64_t> contact;
  if (v.contact) {
    std::optional<std::string> phone;
    if (contact_exists(tx, site, *v.contact, &phone)) {
      contact = v.contact;
      if (!phone && e164) {
        if (auto other = find_by_phone(tx, site, *e164, local, contact)) {
          contact = other;
        } else {
          tx.exec_params("UPDATE crm_contacts SET phone = $2, updated_at = now() WHERE id = $1", *contact, *e164);
        }
      }
    }
  }
  if (!contact && e164) {
    contact = find_by_phone(tx, site, *e164, local, std::nullopt);
  }
  if (!contact && v.user_id) {
    contact = find_one(tx,
                       "SELECT id FROM crm_contacts WHERE site_id = $1 AND whatsapp_user_id = $2 ORDER BY id LIMIT 1",
                       site, *v.user_id);
    if (contact && e164) {
      tx.exec_params("UPDATE crm_contacts SET phone = $2, updated_at = now() WHERE id = $1 AND phone IS NULL",
                     *contact, *e164);
    }
  }
  if (!contact && v.email) {
    contact = find_one(tx, "SELECT id FROM crm_contacts WHERE site_id = $1 AND lower(email) = lower($2) ORDER BY id LIMIT 1",
                       site, *v.email);
  }
  if (!contact) {
    auto r = tx.exec_params(
        "INSERT INTO crm_contacts (site_id, name, phone, email, whatsapp_user_id, created_by_chat)"
        " VALUES ($1, nullif($2, ''), $3, $4, $5, true) RETURNING id",
        site, v.name, e164, v.email, v.user_id);
    contact = r[0][0].as<std::int64_t>();
  }
  if (v.contact != contact) {
    tx.exec_params("UPDATE mod_chat_visitors SET crm_contact_id = $2 WHERE id = $1", visitor_id, *contact);
    v.contact = contact;
    // The dashboard sees crm_contact_id on the visitor's open conversation.
    auto open = tx.exec_params(
        "SELECT id FROM mod_chat_conversations WHERE site_id = $1 AND visitor_id = $2 AND status IN ('pending', 'active')",
        site, visitor_id);
    for (const auto& row : open) {
      append_event(tx, site, "conversation.updated", row[0].as<std::int64_t>(), std::nullopt);
    }
  }
  return *contact;
}

void log_activity(pqxx::transaction_base& tx, const std::string& site, std::int64_t contact, const std::string& title,
                  std::int64_t conversation, const json& details) {
  tx.exec_params(
      "INSERT INTO crm_activities (site_id, contact_id, type, title, details, entity_type, entity_id)"
      " VALUES ($1, $2, 'chat', $3, $4::jsonb, 'conversation', $5)"
      " ON CONFLICT (entity_type, entity_id, title) WHERE type = 'chat' AND entity_type = 'conversation' DO NOTHING",
      site, contact, title, details.dump(), std::to_string(conversation));
}

json closing_summary(pqxx::transaction_base& tx, std::int64_t conversation) {
  auto r = tx.exec_params(
      "SELECT count(*) FILTER (WHERE sender_type = 'visitor'), count(*) FILTER (WHERE sender_type = 'agent'),"
      " count(*), to_char(min(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
      " to_char(max(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
      " FROM mod_chat_messages WHERE conversation_id = $1",
      conversation);
  auto opt = [](const pqxx::field& f) { return f.is_null() ? json(nullptr) : json(f.c_str()); };
  return {{"messages_from_customer", r[0][0].as<std::int64_t>()},
          {"messages_from_agents", r[0][1].as<std::int64_t>()},
          {"messages", r[0][2].as<std::int64_t>()},
          {"first_message_at", opt(r[0][3])},
          {"last_message_at", opt(r[0][4])}};
}

}  // namespace

std::optional<crm_job> claim_crm_job(pqxx::connection_base& c, const std::string& worker, std::chrono::seconds lease) {
  pqxx::work w{c};
  auto r = exec_cached(w, "crm_claim",
      "WITH ready AS (SELECT id FROM wa_conversation_jobs WHERE state = 'ready' AND next_attempt_at <= now()"
      "   ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED),"
      " lapsed AS (SELECT id FROM wa_conversation_jobs WHERE state = 'running' AND lease_until < now()"
      "   AND NOT EXISTS (SELECT 1 FROM ready) ORDER BY lease_until LIMIT 1 FOR UPDATE SKIP LOCKED),"
      " due AS (SELECT id FROM ready UNION ALL SELECT id FROM lapsed LIMIT 1)"
      " UPDATE wa_conversation_jobs j SET state = 'running', attempts = j.attempts + 1, claimed_by = $1,"
      "   lease_until = now() + make_interval(secs => $2) FROM due WHERE j.id = due.id"
      " RETURNING j.id, j.site_id, j.kind, j.visitor_id, j.conversation_id, j.attempts, coalesce(j.last_error, '')",
      worker, static_cast<double>(lease.count()));
  w.commit();
  if (r.empty()) {
    return std::nullopt;
  }
  crm_job j;
  j.id = r[0][0].as<std::int64_t>();
  j.site_id = r[0][1].as<std::string>();
  j.kind = r[0][2].as<std::string>();
  j.visitor_id = r[0][3].as<std::int64_t>();
  j.conversation_id = r[0][4].as<std::optional<std::int64_t>>();
  j.attempts = r[0][5].as<int>();
  j.last_error = r[0][6].as<std::string>();
  return j;
}

int release_crm_jobs(pqxx::connection_base& c, const std::string& worker, const std::string& why) {
  pqxx::work w{c};
  auto r = exec_cached(w, "crm_release",
      "UPDATE wa_conversation_jobs SET state = 'ready', claimed_by = NULL, lease_until = NULL, next_attempt_at = now(),"
      " last_error = $2 WHERE claimed_by = $1 AND state = 'running'",
      worker, why);
  w.commit();
  return static_cast<int>(r.affected_rows());
}

bool record_crm_retry(pqxx::connection_base& c, std::int64_t job, const std::string& worker,
                      std::chrono::milliseconds delay, const std::string& why) {
  pqxx::work w{c};
  auto r = exec_cached(w, "crm_retry",
      "UPDATE wa_conversation_jobs SET state = 'ready', claimed_by = NULL, lease_until = NULL, last_error = $3,"
      " next_attempt_at = now() + make_interval(secs => $4) WHERE id = $1 AND claimed_by = $2 AND state = 'running'",
      job, worker, why, static_cast<double>(delay.count()) / 1000.0);
  w.commit();
  return r.affected_rows() > 0;
}

bool record_crm_failed(pqxx::connection_base& c, std::int64_t job, const std::string& worker, const std::string& why) {
  pqxx::work w{c};
  auto r = exec_cached(w, "crm_failed",
      "UPDATE wa_conversation_jobs SET state = 'failed', claimed_by = NULL, lease_until = NULL, last_error = $3"
      " WHERE id = $1 AND claimed_by = $2 AND state = 'running'",
      job, worker, why);
  w.commit();
  return r.affected_rows() > 0;
}

bool take_held_followup(pqxx::transaction_base& tx, std::int64_t job, const std::string& worker) {
  return !exec_cached(tx, "followup_done",
                      "DELETE FROM wa_conversation_jobs WHERE id = $1 AND claimed_by = $2 AND state = 'running'"
                      " RETURNING id",
                      job, worker)
              .empty();
}

bool run_crm_job(pqxx::connection_base& c, const crm_job& job, const std::string& worker, const std::string& region,
                 bool enabled) {
  pqxx::work w{c};
  if (!take_held_followup(w, job.id, worker)) {
    return false;
  }
  if (enabled) {
    // One link of a site at a time, whichever process: two conversations of one visitor (or a
    // phone visitor and a BSUID visitor who are one person) starting at once make one contact,
    // which row locks cannot promise for a contact that does not exist yet. Links are rare
    // (one per new conversation), so the wait is short.
    w.exec_params("SELECT pg_advisory_xact_lock(hashtext('wachat_crm:' || $1))", job.site_id);
    if (auto v = load_visitor(w, job.visitor_id)) {
      auto contact = link_visitor(w, job.site_id, job.visitor_id, *v, region);
      if (job.conversation_id && job.kind == "link") {
        log_activity(w, job.site_id, contact, "WhatsApp conversation started", *job.conversation_id, json::object());
      } else if (job.conversation_id && job.kind == "closed") {
        log_activity(w, job.site_id, contact, "WhatsApp conversation closed", *job.conversation_id,
                     closing_summary(w, *job.conversation_id));
      }
    }
  }
  w.commit();
  return true;
}

std::optional<json> conversation_contact(pqxx::transaction_base& tx, std::int64_t conversation_id) {
  auto r = tx.exec_params(
      "SELECT ct.id, ct.name, ct.phone, ct.email, ct.created_by_chat FROM mod_chat_conversations c"
      " JOIN mod_chat_visitors v ON v.id = c.visitor_id JOIN crm_contacts ct ON ct.id = v.crm_contact_id"
      " WHERE c.id = $1",
      conversation_id);
  if (r.empty()) {
    return std::nullopt;
  }
  auto opt = [](const pqxx::field& f) { return f.is_null() ? json(nullptr) : json(f.c_str()); };
  return json{{"id", r[0][0].c_str()},
              {"name", opt(r[0][1])},
              {"phone", opt(r[0][2])},
              {"email", opt(r[0][3])},
              {"created_by_chat", r[0][4].as<bool>()}};
}

}  // namespace wachat::infra

#include "infra/inbound_batch.hpp"

#include <ctime>
#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <stdexcept>

#include "domain/window.hpp"
#include "infra/inbound_store.hpp"
#include "infra/inbound_values.hpp"
#include "infra/pg_columns.hpp"

namespace wachat::infra {
namespace {

using nlohmann::json;

// Each statement takes its rows column by column (pg_columns, read back with rows_from): a fixed
// number of parameters whatever the batch size, escaped by a JSON writer.
//
// About the LATERAL (...) LIMIT 1 lookups here: a set of rows from parameters tells the planner
// nothing about its size, and with a plain join it hashed the whole visitor or conversation table
// for every batch (30 ms a statement at 10,000 conversations, growing with the table). A lateral
// subquery with LIMIT is not flattened, so each row is one index probe whatever the table size.
//
// The customers, found or added ($1-$5: site, phone, BSUID, previous BSUID, profile name; the
// ids absent are NULL), and in the same round trip the messages of the batch that are stored
// already ($6-$7: site, wamid; Meta redelivers for days), reported as rows with a NULL id. Those
// are left out of all conversation work, so that a redelivery after an agent closed the
// conversation does not open an empty new one; their customers exist anyway, so looking them up
// costs a probe and changes nothing.
//
// A customer is found by phone, else by BSUID, else by the BSUID a `user_changed_*` notice says
// they had (API.md §3.4 "Customer identity"): the first probe that hits ends the lookup. A
// customer found by one id gets the other the delivery carries (one visitor, never two), unless
// another visitor holds it already. Rows: (visitor, site, phone, BSUID, stored name), the ids as
// the input gave them, so the caller finds its own rows again.
const std::string& visitors_sql() {
  static const std::string by = "SELECT id, name, whatsapp_phone, whatsapp_user_id FROM mod_chat_visitors x"
                                " WHERE x.site_id = input.site AND ";
  static const std::string sql =
      "WITH input AS (SELECT * FROM " + rows_from(1, 5) + " AS t(site, phone, uid, prev_uid, name)),"
      " found AS (SELECT input.site, input.phone, input.uid, v.id, v.name, v.whatsapp_phone AS had_phone,"
      "   v.whatsapp_user_id AS had_uid FROM input CROSS JOIN LATERAL ("
      "     (" + by + "x.whatsapp_phone = input.phone LIMIT 1) UNION ALL"
      "     (" + by + "x.whatsapp_user_id = input.uid LIMIT 1) UNION ALL"
      "     (" + by + "x.whatsapp_user_id = input.prev_uid LIMIT 1) LIMIT 1) v),"
      " link AS (UPDATE mod_chat_visitors v SET"
      "   whatsapp_user_id = coalesce(v.whatsapp_user_id, CASE WHEN NOT EXISTS (SELECT 1"
      "     FROM mod_chat_visitors o WHERE o.site_id = f.site AND o.whatsapp_user_id = f.uid) THEN f.uid END),"
      "   whatsapp_phone = coalesce(v.whatsapp_phone, CASE WHEN NOT EXISTS (SELECT 1"
      "     FROM mod_chat_visitors o WHERE o.site_id = f.site AND o.whatsapp_phone = f.phone) THEN f.phone END),"
      "   phone = coalesce(v.phone, CASE WHEN NOT EXISTS (SELECT 1"
      "     FROM mod_chat_visitors o WHERE o.site_id = f.site AND o.whatsapp_phone = f.phone) THEN '+' || f.phone END)"
      "   FROM found f WHERE v.id = f.id AND ((f.had_uid IS NULL AND f.uid IS NOT NULL)"
      "     OR (f.had_phone IS NULL AND f.phone IS NOT NULL)) RETURNING v.id),"
      // Only the customers not found are inserted: an insert attempt on a known one still drew
      // an id and probed the unique index once more. Nor one that shares an id with a customer
      // found (and maybe linked) here: ON CONFLICT does not see a row this same statement
      // updated, and fails instead. A conflict on either id (another process, or two rows of this
      // batch naming one new customer by different ids) inserts nothing for that row. Rows left
      // without a visitor are asked for again, and the next snapshot finds them.
      " ins AS (INSERT INTO mod_chat_visitors (site_id, name, whatsapp_phone, whatsapp_user_id, phone)"
      // Two anti-joins, not one with OR: each can be hashed; with OR it was a nested loop over
      // the batch for every row (PostgreSQL CPU per message +35 % in the backlog benchmark).
      "   SELECT site, nullif(name, ''), phone, uid, '+' || phone FROM input"
      "   WHERE NOT EXISTS (SELECT 1 FROM found WHERE found.site = input.site AND found.phone = input.phone)"
      "     AND NOT EXISTS (SELECT 1 FROM found WHERE found.site = input.site AND found.uid = input.uid)"
      "   ON CONFLICT DO NOTHING"
      "   RETURNING id, site_id, whatsapp_phone, whatsapp_user_id, name)"
      " SELECT id, site, phone, uid, name FROM found"
      " UNION ALL SELECT id, site_id, whatsapp_phone, whatsapp_user_id, name FROM ins"
      " UNION ALL SELECT NULL, k.site, k.wamid, NULL, NULL FROM " + rows_from(6, 2) + " AS k(site, wamid)"
      "   CROSS JOIN LATERAL (SELECT 1 FROM mod_chat_messages m WHERE m.site_id = k.site"
      "     AND m.whatsapp_message_id = k.wamid LIMIT 1) known";
  return sql;
}
// A `user_changed_number` / `user_changed_user_id` notice moves its customer to the new phone
// and BSUID ($2, $3; NULL when the notice has none), unless another visitor already holds it.
// The CRM phone follows only while it is still the one WhatsApp gave (an agent may have typed
// another).
const std::string& change_identity_sql() {
  static const std::string sql =
      "UPDATE mod_chat_visitors v SET"
      " phone = CASE WHEN $2::text IS NOT NULL AND v.phone IS NOT DISTINCT FROM '+' || v.whatsapp_phone"
      "   AND NOT EXISTS (SELECT 1 FROM mod_chat_visitors o WHERE o.site_id = v.site_id"
      "     AND o.whatsapp_phone = $2::text) THEN '+' || $2::text ELSE v.phone END,"
      " whatsapp_phone = coalesce(CASE WHEN NOT EXISTS (SELECT 1 FROM mod_chat_visitors o"
      "   WHERE o.site_id = v.site_id AND o.whatsapp_phone = $2::text) THEN $2::text END, v.whatsapp_phone),"
      " whatsapp_user_id = coalesce(CASE WHEN NOT EXISTS (SELECT 1 FROM mod_chat_visitors o"
      "   WHERE o.site_id = v.site_id AND o.whatsapp_user_id = $3::text) THEN $3::text END, v.whatsapp_user_id)"
      " WHERE v.id = $1";
  return sql;
}
const std::string& rename_visitors_sql() {
  static const std::string sql =
      "UPDATE mod_chat_visitors v SET name = t.name FROM " + rows_from(1, 2) + " AS t(id, name)"
      " WHERE v.id = t.id::bigint"
      " AND v.id = ANY(" + first_column_ids() + ")";
  return sql;
}
// The customers' open conversations get their new messages counted (unread, last activity, the
// window from Meta's timestamp) and are locked to commit; one that an agent closed meanwhile no
// longer matches, and a new one is opened instead, in the same statement. Counting before the
// messages are inserted is one round trip less; the rare message another process stored in
// between is taken back. Rows: (conversation, visitor, opened here).
// Prepared, so on a connection from connect_for_probes only: a generic plan made while the table
// was small walked all of it for every batch otherwise (a sequential scan filtering on the ctid
// array, 110 ms at 10,000 conversations).
const std::string& count_sql() {
  static const std::string sql =
      "WITH t AS (SELECT site, visitor::bigint, n::integer, ts::bigint, expiry::bigint FROM " +
      rows_from(1, 5) + "   AS t(site, visitor, n, ts, expiry)),"
      " f AS (SELECT t.n, t.ts, t.expiry, o.id, o.ctid FROM t CROSS JOIN LATERAL (SELECT x.id, x.ctid"
      "   FROM mod_chat_conversations x WHERE x.site_id = t.site AND x.visitor_id = t.visitor"
      "   AND x.channel = 'whatsapp' AND x.status IN ('pending', 'active') LIMIT 1) o),"
      " u AS (UPDATE mod_chat_conversations c SET unread_count = c.unread_count + f.n,"
      "   last_message_at = greatest(c.last_message_at, to_timestamp(f.ts)),"
      // The window's end as the conversation actor decided it; greatest() only keeps what
      // another process stored if that is later.
      "   whatsapp_window_expires_at = greatest(coalesce(c.whatsapp_window_expires_at, '-infinity'),"
      "     to_timestamp(f.expiry)),"
      "   updated_at = now()"
      // The rows just found, by their physical address (a TID scan).
      "   FROM f WHERE c.ctid = ANY(ARRAY(SELECT ctid FROM f)) AND c.id = f.id"
      // Re-checked on the newest row version: one an agent just closed is left out (and a new
      // conversation opened instead). Written as <> 'closed' (the same, by the CHECK constraint)
      // so that it does not imply the open-conversation index's predicate: with it, the planner,
      // misled by a young table's statistics, walked that whole index for every statement.
      "   AND c.status <> 'closed'"
      "   RETURNING c.id, c.visitor_id),"
      // Customers without an open conversation get one. Another process may open it first: then
      // nothing is returned for the customer, and the caller runs the statement again, whose
      // new snapshot finds it.
      " n AS (INSERT INTO mod_chat_conversations (site_id, visitor_id, channel, status,"
      "   last_message_at, unread_count, whatsapp_window_expires_at)"
      "   SELECT t.site, t.visitor, 'whatsapp', 'pending', to_timestamp(t.ts), t.n,"
      "     to_timestamp(t.expiry)"
      "   FROM t WHERE NOT EXISTS (SELECT 1 FROM u WHERE u.visitor_id = t.visitor)"
      "   ON CONFLICT (site_id, visitor_id) WHERE channel = 'whatsapp'"
      "     AND status IN ('pending', 'active') DO NOTHING RETURNING id, visitor_id)"
      " SELECT id, visitor_id, false FROM u UNION ALL SELECT id, visitor_id, true FROM n";
  return sql;
}
const std::string& uncount_sql() {
  static const std::string sql =
      "UPDATE mod_chat_conversations c SET unread_count = greatest(c.unread_count - t.n::integer, 0)"
      " FROM " + rows_from(1, 2) + " AS t(id, n) WHERE c.id = t.id::bigint"
      " AND c.id = ANY(" + first_column_ids() + ")";
  return sql;
}
const std::string& insert_messages_sql() {
  static const std::string sql =
      "INSERT INTO mod_chat_messages (conversation_id, site_id, sender_type, sender_id, sender_name,"
      " content, content_type, file_name, file_mime_type, media_status, media_id, media_sha256,"
      " whatsapp_message_id, status, reply_to, reply_to_wamid, extra, whatsapp_timestamp, created_at)"
      " SELECT t.conversation::bigint, t.site, 'visitor', t.sender, t.name, t.content,"
      "   t.content_type, t.file_name, t.mime_type, t.media_status, t.media_id, t.sha256, t.wamid,"
      "   'received',"
      "   (SELECT m.id FROM mod_chat_messages m WHERE m.site_id = t.site"
      "     AND m.whatsapp_message_id = t.reply_wamid),"
      "   t.reply_wamid, t.extra::jsonb, to_timestamp(t.ts::bigint), to_timestamp(t.ts::bigint)"
      " FROM " + rows_from(1, 15) + " AS t(conversation, site, sender, name, content,"
      "   content_type, file_name, mime_type, media_status, media_id, sha256, wamid, reply_wamid,"
      "   extra, ts)"
      " ON CONFLICT (site_id, whatsapp_message_id) WHERE whatsapp_message_id IS NOT NULL DO NOTHING"
      " RETURNING id, site_id, whatsapp_message_id";
  return sql;
}
// A media message's job commits with it (migration 012): the media workers find it there.
const std::string& media_jobs_sql() {
  static const std::string sql =
      "INSERT INTO wa_media_jobs (message_id, site_id)"
      " SELECT t.id::bigint, t.site FROM " + rows_from(1, 2) + " AS t(id, site)"
      " ON CONFLICT (message_id) DO NOTHING";
  return sql;
}
const std::string& link_replies_sql() {
  static const std::string sql =
      "UPDATE mod_chat_messages m SET reply_to = t.target::bigint"
      " FROM " + rows_from(1, 2) + " AS t(id, target) WHERE m.id = t.id::bigint"
      " AND m.id = ANY(" + first_column_ids() + ")";
  return sql;
}

// A plain message of the batch and what became of it.
struct message_item {
  std::size_t index;  // in the caller's units
  const std::string* site;
  const domain::inbound_message* message;
  std::string name;  // profile name, without NUL
  std::string from;  // the customer's phone; empty when withheld
  std::string user_id;       // the customer's BSUID; empty when absent
  std::string prev_user_id;  // the BSUID a user_changed_* notice says they had
  std::string wamid;
  std::int64_t ts = 0;
  std::int64_t window_expiry = 0;  // as the conversation actor decided it
  std::int64_t visitor = 0;
  std::int64_t conversation = 0;
  bool created_conversation = false;
  std::int64_t message_id = 0;  // 0: stored before (a redelivery)
};

using site_key = std::pair<std::string, std::string>;  // (site, wamid)
// (site, phone, BSUID), "" for an id the delivery does not carry.
using customer_key = std::tuple<std::string, std::string, std::string>;

customer_key customer_of(const message_item& it) { return {*it.site, it.from, it.user_id}; }

nlohmann::json id_or_null(const std::string& id) {
  return id.empty() ? nlohmann::json(nullptr) : nlohmann::json(id);
}
std::string text_or_empty(const pqxx::field& f) { return f.is_null() ? std::string{} : f.as<std::string>(); }

// Finds or adds the customers of all items, and returns the items whose message is not stored
// yet; the others stay in `all` with message_id 0.
std::vector<message_item*> find_visitors(pqxx::transaction_base& tx,
                                         std::vector<message_item>& all) {
  struct wanted_customer {
    std::string name;  // the latest non-empty profile name
    std::string prev_user_id;
  };
  // One row per customer, sorted: the insert takes the unique-index locks in this order.
  std::map<customer_key, wanted_customer> wanted;
  pg_columns messages(2);
  for (const auto& it : all) {
    auto& w = wanted[customer_of(it)];
    if (!it.name.empty()) {
      w.name = it.name;
    }
    if (!it.prev_user_id.empty()) {
      w.prev_user_id = it.prev_user_id;
    }
    messages.add(*it.site, it.wamid);
  }
  std::set<site_key> known;
  std::map<customer_key, std::int64_t> ids;
  std::map<customer_key, std::string> stored_names;  // what the customers are called now
  for (int attempt = 0; attempt < 3 && ids.size() < wanted.size(); ++attempt) {
    pg_columns rows(5);
    for (const auto& [key, w] : wanted) {
      if (!ids.contains(key)) {
        const auto& [site, phone, uid] = key;
        rows.add(site, id_or_null(phone), id_or_null(uid), id_or_null(w.prev_user_id), w.name);
      }
    }
    // The stored messages are asked for once.
    const pg_columns none(2);
    for (const auto& r : exec_columns(tx, "batch_visitors", visitors_sql(),
                                      {&rows, attempt == 0 ? &messages : &none})) {
      if (r[0].is_null()) {
        known.insert({r[1].as<std::string>(), r[2].as<std::string>()});
        continue;
      }
      customer_key key{r[1].as<std::string>(), text_or_empty(r[2]), text_or_empty(r[3])};
      if (ids.emplace(key, r[0].as<std::int64_t>()).second && !r[4].is_null()) {
        stored_names.emplace(std::move(key), r[4].as<std::string>());
      }
    }
    // Still missing: another process inserted it after this statement's snapshot; read again.
  }
  if (ids.size() < wanted.size()) {
    throw std::runtime_error("could not find or add a visitor");
  }
  std::vector<message_item*> fresh;
  std::map<customer_key, std::string> latest;  // the latest non-empty name of a new message
  for (auto& it : all) {
    if (known.contains({*it.site, it.wamid})) {
      continue;
    }
    auto key = customer_of(it);
    it.visitor = ids.at(key);
    if (!it.name.empty()) {
      latest[key] = it.name;
    }
    fresh.push_back(&it);
  }
  // A new message under another profile name renames its customer; redeliveries do not.
  pg_columns renames(2);
  for (const auto& [key, name] : latest) {
    auto now = stored_names.find(key);
    if (now == stored_names.end() || now->second != name) {
      renames.add(ids.at(key), name);
    }
  }
  if (!renames.empty()) {
    exec_columns(tx, "batch_rename_visitors", rename_visitors_sql(), {&renames});
  }
  return fresh;
}

// New `user_changed_number` / `user_changed_user_id` notices move their customers to the new
// ids. Only new ones: a redelivered old notice must not undo a later change.
void apply_identity_changes(pqxx::transaction_base& tx, const std::vector<message_item*>& items) {
  for (const auto* it : items) {
    const auto& notice = it->message->system;
    if (it->message_id == 0 || !notice || !notice->moves_customer()) {
      continue;
    }
    auto phone = notice->type == "user_changed_user_id" ? std::string{} : pg_text(notice->new_wa_id);
    auto uid = pg_text(notice->new_user_id);
    if (phone.empty() && uid.empty()) {
      continue;
    }
    tx.exec_params(change_identity_sql(), it->visitor, non_empty(phone), non_empty(uid));
  }
}

// Counts the items' messages in their visitors' open conversations, opening one where there is
// none, and sets each item's conversation.
void count_in_conversations(pqxx::transaction_base& tx, std::vector<message_item*>& items) {
  struct visitor_batch {
    const std::string* site;
    int n = 0;
    std::int64_t ts = 0;      // Meta's time of the newest message
    std::int64_t expiry = 0;  // the latest window end its conversation actor decided
  };
  std::map<std::int64_t, visitor_batch> wanted;  // by visitor id: locks are taken in this order
  for (const auto* it : items) {
    auto& w = wanted[it->visitor];
    w.site = it->site;
    w.ts = w.n == 0 ? it->ts : std::max(w.ts, it->ts);
    w.expiry = std::max(w.expiry, it->window_expiry);
    w.n += 1;
  }
  std::map<std::int64_t, std::int64_t> conversation;  // visitor -> conversation
  std::set<std::int64_t> created;                      // visitors whose conversation is new
  for (int attempt = 0; attempt < 3 && conversation.size() < wanted.size(); ++attempt) {
    pg_columns rows(5);
    for (const auto& [visitor, w] : wanted) {
      if (!conversation.contains(visitor)) {
        rows.add(*w.site, visitor, w.n, w.ts, w.expiry);
      }
    }
    for (const auto& r : exec_columns(tx, "batch_count", count_sql(), {&rows})) {
      auto visitor = r[1].as<std::int64_t>();
      conversation.emplace(visitor, r[0].as<std::int64_t>());
      if (r[2].as<bool>()) {
        created.insert(visitor);
      }
    }
    // Still missing: another process opened it after our snapshot; the next round counts in it.
  }
  if (conversation.size() < wanted.size()) {
    throw std::runtime_error("could not find or open a conversation");
  }
  for (auto* it : items) {
    it->conversation = conversation.at(it->visitor);
    // Announced once, by the first message of the batch in it.
    it->created_conversation = created.erase(it->visitor) > 0;
  }
}

// A media message without a media id has nothing to fetch: it is failed from the start.
const char* media_state(const domain::inbound_message& m) {
  if (!m.media) {
    return "none";
  }
  return m.media->id.empty() ? "failed" : "pending";
}

void insert_messages(pqxx::transaction_base& tx, std::vector<message_item*>& items) {
  // Sorted by wamid: two processes inserting the same redelivered messages lock them in order.
  std::vector<message_item*> order = items;
  std::sort(order.begin(), order.end(), [](const message_item* a, const message_item* b) {
    return std::tie(*a->site, a->wamid) < std::tie(*b->site, b->wamid);
  });
  pg_columns rows(15);
  for (const auto* it : order) {
    const auto& m = *it->message;
    const bool media = m.media.has_value();
    // The sender is the customer's phone, or their BSUID when Meta withheld the phone.
    rows.add(it->conversation, *it->site, it->from.empty() ? it->user_id : it->from, nullable(non_empty(it->name)),
             nullable(non_empty(m.content)), pg_text(m.content_type),
             media ? nullable(non_empty(m.media->filename)) : json(nullptr),
             media ? nullable(non_empty(m.media->mime_type)) : json(nullptr), media_state(m),
             media ? nullable(non_empty(m.media->id)) : json(nullptr),
             media ? nullable(non_empty(m.media->sha256)) : json(nullptr), it->wamid,
             nullable(non_empty(m.context.id)),
             // An object element is read back as its JSON text, then cast to jsonb.
             extra_value(m), it->ts);
  }
  std::map<site_key, std::int64_t> inserted;
  for (const auto& r : exec_columns(tx, "batch_insert_messages", insert_messages_sql(), {&rows})) {
    inserted.emplace(site_key{r[1].as<std::string>(), r[2].as<std::string>()},
                     r[0].as<std::int64_t>());
  }
  const auto by_wamid = inserted;
  for (auto* it : items) {
    if (auto pos = inserted.find({*it->site, it->wamid}); pos != inserted.end()) {
      it->message_id = pos->second;
      inserted.erase(pos);  // the same wamid twice in a batch: only the first is new
    }
  }
  pg_columns jobs(2);
  for (const auto* it : items) {
    if (it->message_id != 0 && it->message->media && !it->message->media->id.empty()) {
      jobs.add(it->message_id, *it->site);
    }
  }
  if (!jobs.empty()) {
    exec_columns(tx, "batch_media_jobs", media_jobs_sql(), {&jobs});
  }
  // A reply to a message of this same batch: the insert's snapshot could not see its target.
  pg_columns links(2);
  for (const auto* it : items) {
    const auto& quoted = it->message->context.id;
    if (it->message_id == 0 || quoted.empty()) {
      continue;
    }
    if (auto target = by_wamid.find({*it->site, pg_text(quoted)}); target != by_wamid.end()) {
      links.add(it->message_id, target->second);
    }
  }
  if (!links.empty()) {
    exec_columns(tx, "batch_link_replies", link_replies_sql(), {&links});
  }
}

// Messages counted in count_in_conversations that turned out to be stored already (another
// process stored them after find_visitors looked): their unread count is taken back.
void uncount_redelivered(pqxx::transaction_base& tx, const std::vector<message_item*>& items) {
  std::map<std::int64_t, int> extra;
  for (const auto* it : items) {
    if (it->message_id == 0) {
      extra[it->conversation] += 1;
    }
  }
  if (extra.empty()) {
    return;
  }
  pg_columns rows(2);
  for (const auto& [id, n] : extra) {
    rows.add(id, n);
  }
  exec_columns(tx, "batch_uncount", uncount_sql(), {&rows});
}

}  // namespace

std::vector<domain::unit_outcome> store_units(pqxx::transaction_base& tx,
                                              const std::vector<batch_unit>& units,
                                              std::vector<pending_event>& events) {
  std::vector<domain::unit_outcome> outcomes(units.size());
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  std::vector<message_item> items;
  for (std::size_t i = 0; i < units.size(); ++i) {
    const auto& u = *units[i].unit;
    if (u.what == domain::inbound_unit::kind::message && !u.message.reaction) {
      items.push_back({i, units[i].site, &u.message, pg_text(u.profile_name), pg_text(u.message.from),
                       pg_text(u.message.from_user_id),
                       u.message.system ? pg_text(u.message.system->previous_user_id) : std::string{},
                       pg_text(u.message.wamid),
                       domain::plausible_timestamp(u.message.timestamp, now), units[i].window_expiry});
    }
  }
  if (!items.empty()) {
    auto fresh = find_visitors(tx, items);
    if (!fresh.empty()) {
      count_in_conversations(tx, fresh);
      insert_messages(tx, fresh);
      uncount_redelivered(tx, fresh);
      apply_identity_changes(tx, fresh);
    }
  }
  // Events in the units' order, as store_unit would have announced them one by one.
  std::size_t next = 0;
  for (std::size_t i = 0; i < units.size(); ++i) {
    if (next < items.size() && items[next].index == i) {
      const auto& it = items[next++];
      const auto& site = *it.site;
      if (it.created_conversation) {
        events.push_back({site, "conversation.created", it.conversation, std::nullopt});
        outcomes[i].new_conversation = it.conversation;
      }
      if (it.message_id != 0) {
        outcomes[i].new_message = true;
        events.push_back({site, "message.created", it.conversation, it.message_id});
        events.push_back({site, "conversation.updated", it.conversation, std::nullopt});
      }
      outcomes[i].stored = true;
      continue;
    }
    // Reactions and statuses: they refer to messages, which are all stored by now.
    outcomes[i] = store_unit(tx, *units[i].site, units[i].event_id, *units[i].unit,
                             units[i].closes_window, events);
  }
  return outcomes;
}

}  // namespace wachat::infra

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
#include "infra/cached_statement.hpp"
#include "infra/inbound_store.hpp"
#include "infra/inbound_values.hpp"

namespace wachat::infra {
namespace {

using nlohmann::json;

// Each statement takes its rows as one JSON array (json_to_recordset): one parameter, escaped
// by a JSON writer, whatever the batch size.
// Messages stored before (Meta redelivers for days): left out before any visitor or
// conversation work, so that a redelivery after an agent closed the conversation does not open
// an empty new one.
constexpr const char* known_messages_sql =
    "SELECT t.site, t.wamid FROM json_to_recordset($1::json) AS t(site text, wamid text)"
    " CROSS JOIN LATERAL (SELECT 1 FROM mod_chat_messages m WHERE m.site_id = t.site"
    "   AND m.whatsapp_message_id = t.wamid LIMIT 1) known";
// About the LATERAL (...) LIMIT 1 lookups here: json_to_recordset tells the planner nothing
// about its size, and with a plain join it hashed the whole visitor or conversation table for
// every batch (30 ms a statement at 10,000 conversations, growing with the table). A lateral
// subquery with LIMIT is not flattened, so each row is one index probe whatever the table size.
constexpr const char* visitors_sql =
    "WITH input AS (SELECT * FROM json_to_recordset($1::json) AS t(site text, phone text,"
    "   name text)),"
    " ins AS (INSERT INTO mod_chat_visitors (site_id, name, whatsapp_phone, phone)"
    "   SELECT site, nullif(name, ''), phone, '+' || phone FROM input"
    "   ON CONFLICT (site_id, whatsapp_phone) WHERE whatsapp_phone IS NOT NULL DO NOTHING"
    "   RETURNING id, site_id, whatsapp_phone, name)"
    " SELECT id, site_id, whatsapp_phone, name FROM ins"
    " UNION ALL SELECT v.id, v.site_id, v.whatsapp_phone, v.name FROM input"
    "   CROSS JOIN LATERAL (SELECT id, site_id, whatsapp_phone, name FROM mod_chat_visitors x"
    "     WHERE x.site_id = input.site AND x.whatsapp_phone = input.phone LIMIT 1) v";
constexpr const char* rename_visitors_sql =
    "UPDATE mod_chat_visitors v SET name = t.name"
    " FROM json_to_recordset($1::json) AS t(id bigint, name text) WHERE v.id = t.id"
    " AND v.id = ANY(ARRAY(SELECT r.id FROM json_to_recordset($1::json) AS r(id bigint)))";
// The customers' open conversations get their new messages counted (unread, last activity, the
// window from Meta's timestamp) and are locked to commit; one that an agent closed meanwhile no
// longer matches, and a new one is opened instead. Counting before the messages are inserted
// is one round trip less; the rare message another process stored in between is taken back.
constexpr const char* touch_open_sql =
    "WITH t AS (SELECT * FROM json_to_recordset($1::json)"
    "   AS t(site text, visitor bigint, n integer, ts bigint)),"
    " f AS (SELECT t.n, t.ts, o.id, o.ctid FROM t CROSS JOIN LATERAL (SELECT x.id, x.ctid"
    "   FROM mod_chat_conversations x WHERE x.site_id = t.site AND x.visitor_id = t.visitor"
    "   AND x.channel = 'whatsapp' AND x.status IN ('pending', 'active') LIMIT 1) o)"
    " UPDATE mod_chat_conversations c SET unread_count = c.unread_count + f.n,"
    " last_message_at = greatest(c.last_message_at, to_timestamp(f.ts)),"
    " whatsapp_window_expires_at = greatest(coalesce(c.whatsapp_window_expires_at, '-infinity'),"
    "   to_timestamp(f.ts) + interval '24 hours'),"
    " updated_at = now()"
    // The rows just found, by their physical address (a TID scan).
    " FROM f WHERE c.ctid = ANY(ARRAY(SELECT ctid FROM f)) AND c.id = f.id"
    // Re-checked on the newest row version: one an agent just closed is left out (and a new
    // conversation opened instead). Written as <> 'closed' (the same, by the CHECK constraint)
    // so that it does not imply the open-conversation index's predicate: with it, the planner,
    // misled by a young table's statistics, walked that whole index for every statement.
    " AND c.status <> 'closed'"
    " RETURNING c.id, c.visitor_id";
// Prepared, so on a connection from connect_for_probes only: a generic plan made while the table
// was small walked all of it for every batch otherwise (a sequential scan filtering on the ctid
// array, 110 ms at 10,000 conversations).
constexpr const char* new_conversations_sql =
    "INSERT INTO mod_chat_conversations (site_id, visitor_id, channel, status, last_message_at,"
    " unread_count, whatsapp_window_expires_at)"
    " SELECT t.site, t.visitor, 'whatsapp', 'pending', to_timestamp(t.ts), t.n,"
    "   to_timestamp(t.ts) + interval '24 hours'"
    " FROM json_to_recordset($1::json) AS t(site text, visitor bigint, n integer, ts bigint)"
    " ON CONFLICT (site_id, visitor_id) WHERE channel = 'whatsapp' AND status IN ('pending', 'active')"
    " DO NOTHING RETURNING id, visitor_id";
constexpr const char* uncount_sql =
    "UPDATE mod_chat_conversations c SET unread_count = greatest(c.unread_count - t.n, 0)"
    " FROM json_to_recordset($1::json) AS t(id bigint, n integer) WHERE c.id = t.id"
    " AND c.id = ANY(ARRAY(SELECT r.id FROM json_to_recordset($1::json) AS r(id bigint)))";
constexpr const char* insert_messages_sql =
    "INSERT INTO mod_chat_messages (conversation_id, site_id, sender_type, sender_id, sender_name,"
    " content, content_type, file_name, file_mime_type, media_status, media_id, media_sha256,"
    " whatsapp_message_id, status, reply_to, reply_to_wamid, extra, whatsapp_timestamp, created_at)"
    " SELECT t.conversation, t.site, 'visitor', t.sender, t.name, t.content, t.content_type,"
    "   t.file_name, t.mime_type, t.media_status, t.media_id, t.sha256, t.wamid, 'received',"
    "   (SELECT m.id FROM mod_chat_messages m WHERE m.site_id = t.site"
    "     AND m.whatsapp_message_id = t.reply_wamid),"
    "   t.reply_wamid, t.extra::jsonb, to_timestamp(t.ts), to_timestamp(t.ts)"
    " FROM json_to_recordset($1::json) AS t(conversation bigint, site text, sender text,"
    "   name text, content text, content_type text, file_name text, mime_type text,"
    "   media_status text, media_id text, sha256 text, wamid text, reply_wamid text, extra json,"
    "   ts bigint)"
    " ON CONFLICT (site_id, whatsapp_message_id) WHERE whatsapp_message_id IS NOT NULL DO NOTHING"
    " RETURNING id, site_id, whatsapp_message_id";

constexpr const char* link_replies_sql =
    "UPDATE mod_chat_messages m SET reply_to = t.target"
    " FROM json_to_recordset($1::json) AS t(id bigint, target bigint) WHERE m.id = t.id"
    " AND m.id = ANY(ARRAY(SELECT r.id FROM json_to_recordset($1::json) AS r(id bigint)))";

// A plain message of the batch and what became of it.
struct message_item {
  std::size_t index;  // in the caller's units
  const std::string* site;
  const domain::inbound_message* message;
  std::string name;  // profile name, without NUL
  std::string from;
  std::string wamid;
  std::int64_t ts = 0;
  std::int64_t visitor = 0;
  std::int64_t conversation = 0;
  bool created_conversation = false;
  std::int64_t message_id = 0;  // 0: stored before (a redelivery)
};

using site_key = std::pair<std::string, std::string>;  // (site, phone or wamid)

// Drops the items whose message is stored already; they stay in `all` with message_id 0.
std::vector<message_item*> unknown_messages(pqxx::transaction_base& tx,
                                            std::vector<message_item>& all) {
  json keys = json::array();
  for (const auto& it : all) {
    keys.push_back({{"site", *it.site}, {"wamid", it.wamid}});
  }
  std::set<site_key> known;
  for (const auto& r : exec_cached(tx, "batch_known_messages", known_messages_sql, pg_json(keys))) {
    known.emplace(r[0].as<std::string>(), r[1].as<std::string>());
  }
  std::vector<message_item*> out;
  for (auto& it : all) {
    if (!known.contains({*it.site, it.wamid})) {
      out.push_back(&it);
    }
  }
  return out;
}

void find_visitors(pqxx::transaction_base& tx, std::vector<message_item*>& items) {
  // One row per customer, sorted: the insert takes the unique-index locks in this order.
  std::map<site_key, std::string> wanted;  // -> the latest non-empty profile name
  for (const auto* it : items) {
    auto& name = wanted[{*it->site, it->from}];
    if (!it->name.empty()) {
      name = it->name;
    }
  }
  std::map<site_key, std::int64_t> ids;
  json renames = json::array();
  for (int attempt = 0; attempt < 3 && ids.size() < wanted.size(); ++attempt) {
    json rows = json::array();
    for (const auto& [key, name] : wanted) {
      if (!ids.contains(key)) {
        rows.push_back({{"site", key.first}, {"phone", key.second}, {"name", name}});
      }
    }
    for (const auto& r : exec_cached(tx, "batch_visitors", visitors_sql, pg_json(rows))) {
      site_key key{r[1].as<std::string>(), r[2].as<std::string>()};
      auto id = r[0].as<std::int64_t>();
      if (!ids.emplace(key, id).second) {
        continue;
      }
      const auto& name = wanted[key];
      if (!name.empty() && (r[3].is_null() || name != r[3].c_str())) {
        renames.push_back({{"id", id}, {"name", name}});
      }
    }
    // Still missing: another process inserted it after this statement's snapshot; read again.
  }
  if (ids.size() < wanted.size()) {
    throw std::runtime_error("could not find or add a visitor");
  }
  if (!renames.empty()) {
    exec_cached(tx, "batch_rename_visitors", rename_visitors_sql, pg_json(renames));
  }
  for (auto* it : items) {
    it->visitor = ids.at({*it->site, it->from});
  }
}

// Counts the items' messages in their visitors' open conversations, opening one where there is
// none, and sets each item's conversation.
void count_in_conversations(pqxx::transaction_base& tx, std::vector<message_item*>& items) {
  struct visitor_batch {
    const std::string* site;
    int n = 0;
    std::int64_t ts = 0;  // Meta's time of the newest message
  };
  std::map<std::int64_t, visitor_batch> wanted;  // by visitor id: locks are taken in this order
  for (const auto* it : items) {
    auto& w = wanted[it->visitor];
    w.site = it->site;
    w.ts = w.n == 0 ? it->ts : std::max(w.ts, it->ts);
    w.n += 1;
  }
  auto rows_for = [&](const std::map<std::int64_t, std::int64_t>& done) {
    json rows = json::array();
    for (const auto& [visitor, w] : wanted) {
      if (!done.contains(visitor)) {
        rows.push_back({{"site", *w.site}, {"visitor", visitor}, {"n", w.n}, {"ts", w.ts}});
      }
    }
    return rows;
  };
  std::map<std::int64_t, std::int64_t> conversation;  // visitor -> conversation
  std::set<std::int64_t> created;                      // visitors whose conversation is new
  for (int attempt = 0; attempt < 3 && conversation.size() < wanted.size(); ++attempt) {
    for (const auto& r : exec_cached(tx, "batch_touch_open", touch_open_sql, pg_json(rows_for(conversation)))) {
      conversation.emplace(r[1].as<std::int64_t>(), r[0].as<std::int64_t>());
    }
    auto fresh = rows_for(conversation);
    if (fresh.empty()) {
      break;
    }
    for (const auto& r : exec_cached(tx, "batch_new_conversations", new_conversations_sql, pg_json(fresh))) {
      auto visitor = r[1].as<std::int64_t>();
      conversation.emplace(visitor, r[0].as<std::int64_t>());
      created.insert(visitor);
    }
    // Still missing: another process opened it after our UPDATE; the next round counts in it.
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

void insert_messages(pqxx::transaction_base& tx, std::vector<message_item*>& items) {
  // Sorted by wamid: two processes inserting the same redelivered messages lock them in order.
  std::vector<message_item*> order = items;
  std::sort(order.begin(), order.end(), [](const message_item* a, const message_item* b) {
    return std::tie(*a->site, a->wamid) < std::tie(*b->site, b->wamid);
  });
  json rows = json::array();
  for (const auto* it : order) {
    const auto& m = *it->message;
    const bool media = m.media.has_value();
    auto opt = [](const std::optional<std::string>& s) { return s ? json(*s) : json(nullptr); };
    rows.push_back({{"conversation", it->conversation},
                    {"site", *it->site},
                    {"sender", it->from},
                    {"name", opt(non_empty(it->name))},
                    {"content", opt(non_empty(m.content))},
                    {"content_type", pg_text(m.content_type)},
                    {"file_name", media ? opt(non_empty(m.media->filename)) : json(nullptr)},
                    {"mime_type", media ? opt(non_empty(m.media->mime_type)) : json(nullptr)},
                    {"media_status", media ? "pending" : "none"},
                    {"media_id", media ? opt(non_empty(m.media->id)) : json(nullptr)},
                    {"sha256", media ? opt(non_empty(m.media->sha256)) : json(nullptr)},
                    {"wamid", it->wamid},
                    {"reply_wamid", opt(non_empty(m.context.id))},
                    {"extra", extra_value(m)},
                    {"ts", it->ts}});
  }
  std::map<site_key, std::int64_t> inserted;
  for (const auto& r : exec_cached(tx, "batch_insert_messages", insert_messages_sql, pg_json(rows))) {
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
  // A reply to a message of this same batch: the insert's snapshot could not see its target.
  json links = json::array();
  for (const auto* it : items) {
    const auto& quoted = it->message->context.id;
    if (it->message_id == 0 || quoted.empty()) {
      continue;
    }
    if (auto target = by_wamid.find({*it->site, pg_text(quoted)}); target != by_wamid.end()) {
      links.push_back({{"id", it->message_id}, {"target", target->second}});
    }
  }
  if (!links.empty()) {
    exec_cached(tx, "batch_link_replies", link_replies_sql, pg_json(links));
  }
}

// Messages counted in count_in_conversations that turned out to be stored already (another
// process stored them after unknown_messages looked): their unread count is taken back.
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
  json rows = json::array();
  for (const auto& [id, n] : extra) {
    rows.push_back({{"id", id}, {"n", n}});
  }
  exec_cached(tx, "batch_uncount", uncount_sql, pg_json(rows));
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
                       pg_text(u.message.wamid),
                       domain::plausible_timestamp(u.message.timestamp, now)});
    }
  }
  if (!items.empty()) {
    auto fresh = unknown_messages(tx, items);
    if (!fresh.empty()) {
      find_visitors(tx, fresh);
      count_in_conversations(tx, fresh);
      insert_messages(tx, fresh);
      uncount_redelivered(tx, fresh);
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
    outcomes[i] = store_unit(tx, *units[i].site, units[i].event_id, *units[i].unit, events);
  }
  return outcomes;
}

}  // namespace wachat::infra

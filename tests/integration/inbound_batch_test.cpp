// infra::store_units against a real PostgreSQL: the set-based batch must have exactly the
// effects of storing its units one by one (DESIGN.md §3), also for the cases the actors
// normally keep out of one batch (a customer twice, a wamid twice).
#include <catch2/catch.hpp>
#include <ctime>
#include <pqxx/pqxx>

#include "domain/window.hpp"
#include "infra/inbound_batch.hpp"
#include "infra/migrations.hpp"
#include "support/test_env.hpp"

using namespace wachat;

namespace {

const std::string site = "acme";

// A new database with every migration applied.
std::string migrated_database() {
  auto url = test::fresh_database();
  infra::apply_migrations(url);
  return url;
}

struct batch_db {
  pqxx::connection conn{migrated_database()};

  batch_db() {
    pqxx::work w{conn};
    w.exec("INSERT INTO sites (id, name) VALUES ('acme', 'Acme')");
    w.commit();
  }

  struct stored {
    std::vector<domain::unit_outcome> outcomes;
    std::vector<infra::pending_event> events;
  };

  stored store(const std::vector<domain::inbound_unit>& units) {
    std::vector<infra::batch_unit> batch;
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    for (const auto& u : units) {
      // The values the conversation actor would decide for each unit.
      std::int64_t expiry = 0;
      if (u.what == domain::inbound_unit::kind::message && !u.message.reaction) {
        expiry = domain::window_expiry_after(0, domain::plausible_timestamp(u.message.timestamp, now));
      }
      bool closes = u.what == domain::inbound_unit::kind::status && domain::closes_window(u.status);
      batch.push_back({&site, 1, &u, expiry, closes});
    }
    stored out;
    pqxx::work w{conn};
    out.outcomes = infra::store_units(w, batch, out.events);
    w.commit();
    return out;
  }

  std::string scalar(const std::string& sql) {
    pqxx::nontransaction n{conn};
    auto r = n.exec(sql);
    return r[0][0].is_null() ? "NULL" : r[0][0].c_str();
  }
};

domain::inbound_unit text(const std::string& from, const std::string& wamid, std::int64_t ts,
                          const std::string& name = "") {
  domain::inbound_unit u;
  u.what = domain::inbound_unit::kind::message;
  u.visitor_wa_id = from;
  u.profile_name = name;
  u.message.wamid = wamid;
  u.message.from = from;
  u.message.timestamp = ts;
  u.message.type = "text";
  u.message.content_type = "text";
  u.message.content = "body of " + wamid;
  return u;
}

domain::inbound_unit reaction(const std::string& from, const std::string& wamid,
                              const std::string& target, const std::string& emoji) {
  auto u = text(from, wamid, 0);
  u.message.type = "reaction";
  u.message.content_type = "reaction";
  u.message.content = emoji;
  u.message.reaction = domain::reaction_ref{target, emoji};
  return u;
}

std::vector<std::string> types(const std::vector<infra::pending_event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) {
    out.push_back(e.type);
  }
  return out;
}

std::int64_t now_s() { return static_cast<std::int64_t>(std::time(nullptr)); }

}  // namespace

TEST_CASE("a batch stores each new message once, counts it into its customer's conversation, and announces it in order") {
  batch_db db;
  auto t = now_s() - 600;
  auto r = db.store({text("111", "wamid.A", t, "Ann"), text("111", "wamid.A", t, "Ann"),
                     text("111", "wamid.B", t + 10), text("222", "wamid.C", t + 5, "Zed")});
  REQUIRE(r.outcomes.size() == 4);
  CHECK(r.outcomes[0].new_message);
  CHECK(r.outcomes[1].stored);
  CHECK_FALSE(r.outcomes[1].new_message);  // the same wamid twice: stored once
  CHECK(r.outcomes[2].new_message);
  CHECK(r.outcomes[3].new_message);
  CHECK(types(r.events) ==
        std::vector<std::string>{"conversation.created", "message.created", "conversation.updated",
                                 "message.created", "conversation.updated", "conversation.created",
                                 "message.created", "conversation.updated"});
  CHECK(db.scalar("SELECT count(*) FROM mod_chat_messages") == "3");
  CHECK(db.scalar("SELECT count(*) FROM mod_chat_conversations") == "2");
  // Ann's conversation counts both of her messages, its activity and window from the newest.
  auto ann = "(SELECT c.id FROM mod_chat_conversations c JOIN mod_chat_visitors v"
             " ON v.id = c.visitor_id WHERE v.whatsapp_phone = '111')";
  CHECK(db.scalar(std::string{"SELECT unread_count FROM mod_chat_conversations WHERE id = "} + ann) == "2");
  CHECK(db.scalar(std::string{"SELECT extract(epoch FROM last_message_at)::bigint FROM mod_chat_conversations WHERE id = "} + ann) ==
        std::to_string(t + 10));
  CHECK(db.scalar(std::string{"SELECT extract(epoch FROM whatsapp_window_expires_at)::bigint FROM mod_chat_conversations WHERE id = "} + ann) ==
        std::to_string(t + 10 + 86400));
  CHECK(db.scalar("SELECT name FROM mod_chat_visitors WHERE whatsapp_phone = '111'") == "Ann");
  CHECK(db.scalar("SELECT phone FROM mod_chat_visitors WHERE whatsapp_phone = '222'") == "+222");
  // The event's conversation and message ids are the stored rows'.
  CHECK(db.scalar("SELECT string_agg(m.whatsapp_message_id, ',' ORDER BY m.id) FROM mod_chat_messages m"
                  " WHERE m.id IN (" + std::to_string(*r.events[1].message_id) + "," +
                  std::to_string(*r.events[3].message_id) + ")") == "wamid.A,wamid.B");
}

TEST_CASE("the same batch again changes nothing and announces nothing") {
  batch_db db;
  auto t = now_s() - 600;
  std::vector<domain::inbound_unit> units{text("111", "wamid.A", t, "Ann"), text("222", "wamid.C", t)};
  db.store(units);
  auto again = db.store(units);
  for (const auto& o : again.outcomes) {
    CHECK(o.stored);
    CHECK_FALSE(o.new_message);
  }
  CHECK(again.events.empty());
  CHECK(db.scalar("SELECT sum(unread_count) FROM mod_chat_conversations") == "2");
  CHECK(db.scalar("SELECT count(*) FROM mod_chat_messages") == "2");
}

TEST_CASE("after a close, a redelivered old message opens nothing and a new one opens a new conversation") {
  batch_db db;
  auto t = now_s() - 600;
  db.store({text("111", "wamid.A", t)});
  {
    pqxx::work w{db.conn};
    w.exec("UPDATE mod_chat_conversations SET status = 'closed'");
    w.commit();
  }
  auto r = db.store({text("111", "wamid.A", t)});
  CHECK_FALSE(r.outcomes[0].new_message);
  CHECK(r.events.empty());
  CHECK(db.scalar("SELECT count(*) FROM mod_chat_conversations") == "1");
  r = db.store({text("111", "wamid.D", t + 60)});
  CHECK(r.outcomes[0].new_message);
  CHECK(db.scalar("SELECT count(*) FROM mod_chat_conversations") == "2");
  CHECK(db.scalar("SELECT unread_count FROM mod_chat_conversations WHERE status = 'pending'") == "1");
  CHECK(db.scalar("SELECT c.status FROM mod_chat_messages m JOIN mod_chat_conversations c"
                  " ON c.id = m.conversation_id WHERE m.whatsapp_message_id = 'wamid.D'") == "pending");
}

TEST_CASE("a reaction in the same batch as its target applies to it; a new profile name renames, an empty one does not") {
  batch_db db;
  auto t = now_s() - 600;
  auto r = db.store({text("111", "wamid.E", t, "Ann"), reaction("111", "wamid.R", "wamid.E", "👍")});
  CHECK(r.outcomes[0].new_message);
  CHECK(r.outcomes[1].stored);
  CHECK_FALSE(r.outcomes[1].new_message);
  CHECK(db.scalar("SELECT reactions::text FROM mod_chat_messages WHERE whatsapp_message_id = 'wamid.E'") ==
        R"([{"by": "visitor", "emoji": "👍"}])");
  CHECK(db.scalar("SELECT count(*) FROM mod_chat_messages") == "1");  // a reaction adds no message
  db.store({text("111", "wamid.F", t + 1, "")});
  CHECK(db.scalar("SELECT name FROM mod_chat_visitors") == "Ann");
  db.store({text("111", "wamid.G", t + 2, "Ann B.")});
  CHECK(db.scalar("SELECT name FROM mod_chat_visitors") == "Ann B.");
  CHECK(db.scalar("SELECT count(*) FROM mod_chat_visitors") == "1");
}

TEST_CASE("a reply to a message stored in the same batch is linked to it") {
  batch_db db;
  auto t = now_s() - 600;
  auto reply = text("222", "wamid.Q", t + 1);
  reply.message.context.id = "wamid.P";
  db.store({text("111", "wamid.P", t), reply});
  CHECK(db.scalar("SELECT q.reply_to = p.id FROM mod_chat_messages q, mod_chat_messages p"
                  " WHERE q.whatsapp_message_id = 'wamid.Q' AND p.whatsapp_message_id = 'wamid.P'") == "t");
  CHECK(db.scalar("SELECT reply_to_wamid FROM mod_chat_messages WHERE whatsapp_message_id = 'wamid.Q'") == "wamid.P");
}

namespace {

domain::inbound_unit from_bsuid(const std::string& phone, const std::string& bsuid, const std::string& wamid,
                                std::int64_t ts) {
  auto u = text(phone, wamid, ts, "Pablo");
  u.message.from_user_id = bsuid;
  u.visitor_wa_id = phone.empty() ? bsuid : phone;
  return u;
}

}  // namespace

TEST_CASE("customers known by BSUID alone, then by both ids, then by phone stay one visitor") {
  batch_db db;
  auto now = static_cast<std::int64_t>(std::time(nullptr));
  db.store({from_bsuid("", "US.777", "wamid.u1", now - 30)});
  CHECK(db.scalar("SELECT count(*) FROM mod_chat_visitors") == "1");
  CHECK(db.scalar("SELECT whatsapp_phone FROM mod_chat_visitors") == "NULL");
  CHECK(db.scalar("SELECT phone FROM mod_chat_visitors") == "NULL");
  CHECK(db.scalar("SELECT whatsapp_user_id FROM mod_chat_visitors") == "US.777");
  CHECK(db.scalar("SELECT sender_id FROM mod_chat_messages WHERE whatsapp_message_id = 'wamid.u1'") == "US.777");
  // A delivery naming both links the phone to that visitor: never a second one.
  db.store({from_bsuid("16505550001", "US.777", "wamid.u2", now - 20)});
  CHECK(db.scalar("SELECT count(*) FROM mod_chat_visitors") == "1");
  CHECK(db.scalar("SELECT whatsapp_phone || ' ' || phone FROM mod_chat_visitors") == "16505550001 +16505550001");
  // Phone only (an old redelivery) and BSUID only in one batch: the same visitor and conversation.
  db.store({text("16505550001", "wamid.u3", now - 10), from_bsuid("", "US.777", "wamid.u4", now - 5)});
  CHECK(db.scalar("SELECT count(*) FROM mod_chat_visitors") == "1");
  CHECK(db.scalar("SELECT count(*) FROM mod_chat_conversations") == "1");
  CHECK(db.scalar("SELECT unread_count FROM mod_chat_conversations") == "4");
}

TEST_CASE("a known phone gets the BSUID of a later delivery; two rows naming one customer in one batch make one") {
  batch_db db;
  auto now = static_cast<std::int64_t>(std::time(nullptr));
  db.store({text("16505550002", "wamid.p1", now - 30)});
  db.store({from_bsuid("16505550002", "US.888", "wamid.p2", now - 20), from_bsuid("", "US.888", "wamid.p3", now - 10)});
  CHECK(db.scalar("SELECT count(*) FROM mod_chat_visitors") == "1");
  CHECK(db.scalar("SELECT whatsapp_user_id FROM mod_chat_visitors") == "US.888");
  CHECK(db.scalar("SELECT count(DISTINCT conversation_id) FROM mod_chat_messages") == "1");
}

TEST_CASE("user_changed_number and user_changed_user_id move the visitor to the new ids, once") {
  batch_db db;
  auto now = static_cast<std::int64_t>(std::time(nullptr));
  db.store({from_bsuid("16505550003", "US.old", "wamid.c1", now - 30)});
  auto changed = from_bsuid("16505550003", "US.old", "wamid.c2", now - 20);
  changed.message.type = changed.message.content_type = "system";
  changed.message.system = domain::system_notice{"user_changed_number", "12195555358", "US.new", ""};
  db.store({changed});
  CHECK(db.scalar("SELECT count(*) FROM mod_chat_visitors") == "1");
  CHECK(db.scalar("SELECT whatsapp_phone || ' ' || phone || ' ' || whatsapp_user_id FROM mod_chat_visitors") ==
        "12195555358 +12195555358 US.new");
  // The customer writes from the new number: the same visitor.
  db.store({from_bsuid("12195555358", "US.new", "wamid.c3", now - 15)});
  CHECK(db.scalar("SELECT count(*) FROM mod_chat_visitors") == "1");
  // Only the BSUID changes; the notice names the old one, and its sender is the new one.
  auto bsuid_change = from_bsuid("", "US.newer", "wamid.c4", now - 10);
  bsuid_change.message.type = bsuid_change.message.content_type = "system";
  bsuid_change.message.system = domain::system_notice{"user_changed_user_id", "", "US.newer", "US.new"};
  db.store({bsuid_change});
  CHECK(db.scalar("SELECT count(*) FROM mod_chat_visitors") == "1");
  CHECK(db.scalar("SELECT whatsapp_phone || ' ' || whatsapp_user_id FROM mod_chat_visitors") == "12195555358 US.newer");
  // A redelivered old notice changes nothing back.
  db.store({changed});
  CHECK(db.scalar("SELECT whatsapp_phone || ' ' || whatsapp_user_id FROM mod_chat_visitors") == "12195555358 US.newer");
}

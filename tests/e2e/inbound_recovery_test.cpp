// Processing survives crashes and hostile content (DESIGN.md §2 crash recovery, §4.2 nothing lost;
// issue "Bad input": invalid UTF-8 or gigantic strings inside a signed webhook).
#include <catch2/catch.hpp>
#include <atomic>
#include <csignal>
#include <ctime>
#include <mutex>
#include <pqxx/pqxx>
#include <set>
#include <thread>

#include "infra/event_log.hpp"
#include "support/pg_control.hpp"
#include "support/test_env.hpp"
#include "support/wachat_fixture.hpp"

using namespace wachat;
using nlohmann::json;

namespace {

const std::string phone_id = "106540352242922";

std::int64_t now_s() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::string count(const std::string& db, const std::string& sql) { return test::query_scalar(db, sql); }

// A counter or gauge from /metrics; -1 when it is not there.
long metric(test::wachat_fixture& f, const std::string& name) { return f.metric(name); }

bool inbox_settled(const std::string& db) {
  return count(db, "SELECT count(*) FROM wa_webhook_events WHERE status IN ('pending','processing')") == "0";
}

}  // namespace

TEST_CASE("rows a killed process left 'processing' are done again once their lease runs out") {
  auto db = test::fresh_database();
  {
    test::wachat_fixture f{{}, db};
    f.make_site("acme", phone_id);
  }
  // What a process that died mid-way leaves behind: claimed rows, one of them half done.
  auto body = [](int i) {
    return test::text_webhook(phone_id, "1650555" + std::to_string(1000 + i), "wamid.crash." + std::to_string(i),
                              now_s() - 100 + i, "before the crash " + std::to_string(i));
  };
  for (int i = 0; i < 20; ++i) {
    auto b = body(i);
    std::string escaped;
    for (char c : b) {
      escaped += c == '\'' ? std::string{"''"} : std::string(1, c);
    }
    count(db, "INSERT INTO wa_webhook_events (body, status, claimed_at, attempts) VALUES (convert_to('" +
                  escaped + "', 'UTF8'), 'processing', now() - interval '5 minutes', 1) RETURNING 1");
  }
  test::wachat_fixture f{{}, db};
  REQUIRE(test::eventually([&] { return inbox_settled(db); }, std::chrono::seconds(20)));
  CHECK(count(db, "SELECT count(*) FROM wa_webhook_events WHERE status = 'processed'") == "20");
  CHECK(count(db, "SELECT count(*) FROM mod_chat_messages WHERE whatsapp_message_id LIKE 'wamid.crash.%'") == "20");
  CHECK(count(db, "SELECT count(*) FROM mod_chat_conversations") == "20");
  // A fresh claim by a live process is left alone until its lease runs out.
  count(db, "INSERT INTO wa_webhook_events (body, status, claimed_at) VALUES (convert_to('" +
                test::text_webhook(phone_id, "16505559999", "wamid.fresh", now_s(), "fresh") +
                "', 'UTF8'), 'processing', now()) RETURNING 1");
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  CHECK(count(db, "SELECT count(*) FROM mod_chat_messages WHERE whatsapp_message_id = 'wamid.fresh'") == "0");
}

TEST_CASE("SIGKILL mid-processing loses nothing: a new process finishes every row exactly once") {
  auto db = test::fresh_database();
  std::size_t posted = 0;
  {
    test::wachat_fixture f{{{"WACHAT_CONVERSATION_IDLE_MS", "100"}}, db};
    f.make_site("acme", phone_id);
    for (int i = 0; i < 300; ++i) {
      auto r = f.post_webhook(test::text_webhook(phone_id, "1650666" + std::to_string(1000 + i % 50),
                                                 "wamid.kill." + std::to_string(i), now_s() - 300 + i,
                                                 "m" + std::to_string(i)));
      posted += r.status == 200 ? 1 : 0;
    }
    f.server->process().signal(SIGKILL);
    f.server->process().wait_exit(5000);
  }
  REQUIRE(posted == 300);
  // Make the dead process's leases run out now instead of in a minute.
  count(db, "WITH aged AS (UPDATE wa_webhook_events SET claimed_at = now() - interval '1 hour'"
            " WHERE status = 'processing' RETURNING 1) SELECT count(*) FROM aged");
  test::wachat_fixture f{{}, db};
  REQUIRE(test::eventually([&] { return inbox_settled(db); }, std::chrono::seconds(30)));
  CHECK(count(db, "SELECT count(*) FROM wa_webhook_events WHERE status = 'processed'") == "300");
  CHECK(count(db, "SELECT count(*) FROM mod_chat_messages") == "300");
  CHECK(count(db, "SELECT count(DISTINCT whatsapp_message_id) FROM mod_chat_messages") == "300");
  CHECK(count(db, "SELECT count(*) FROM mod_chat_conversations") == "50");
  CHECK(count(db, "SELECT sum(unread_count) FROM mod_chat_conversations") == "300");
}

TEST_CASE("SIGKILL while its own just-committed rows are in flight: the next process takes them over at once, each done once") {
  auto db = test::fresh_database();
  {
    test::wachat_fixture f{{}, db};
    f.make_site("acme", phone_id);
    // The site's event lock makes every unit hang in its writer's last statement: the rows stay
    // in flight, owned by the process whose intake committed them.
    pqxx::connection blocker{f.db};
    pqxx::nontransaction hold{blocker};
    hold.exec_params(std::string{"SELECT pg_advisory_lock("} + infra::events_lock_key_sql + ")", "acme");
    for (int i = 0; i < 5; ++i) {
      REQUIRE(f.post_webhook(test::text_webhook(phone_id, "1650777" + std::to_string(1000 + i),
                                                "wamid.owned." + std::to_string(i), now_s() - 60 + i,
                                                "in flight " + std::to_string(i))).status == 200);
    }
    CHECK(count(db, "SELECT count(*) FROM wa_webhook_events WHERE status = 'pending' AND owner_key IS NOT NULL") == "5");
    f.server->process().signal(SIGKILL);
    REQUIRE(f.server->process().wait_exit(5000).has_value());
  }
  // Well within the one-minute lease a dead claim would need: the owner's connections are gone,
  // so its rows are anyone's once they are 5 s old (the grace a live owner has to take its key
  // again after losing its connection).
  test::wachat_fixture f{{}, db};
  REQUIRE(test::eventually([&] { return inbox_settled(db); }, std::chrono::seconds(20)));
  // Freed as orphans (at start, or at the first tick if the dead process's sessions were still
  // ending), not by a lease.
  const auto log = f.server->process().stderr_text();
  int orphaned = 0;
  for (auto at = log.find("orphaned="); at != std::string::npos; at = log.find("orphaned=", at + 1)) {
    orphaned += std::atoi(log.c_str() + at + 9);
  }
  CHECK(orphaned == 5);
  CHECK(count(db, "SELECT count(*) FROM wa_webhook_events WHERE status = 'processed' AND owner_key IS NULL") == "5");
  CHECK(count(db, "SELECT count(*) FROM mod_chat_messages WHERE whatsapp_message_id LIKE 'wamid.owned.%'") == "5");
  CHECK(count(db, "SELECT count(DISTINCT whatsapp_message_id) FROM mod_chat_messages") == "5");
  CHECK(count(db, "SELECT count(*) FROM wa_events WHERE type = 'message.created'") == "5");
}

TEST_CASE("the dispatcher's key: taken again when an operator kills its session; a row committed with it that never reached the dispatcher is done too") {
  // The second commit's answer is lost (test builds: as if the connection broke after the
  // commit). A lease of 1 s: the retired key is let go after 15 s (the least hold).
  test::wachat_fixture f{{{"WACHAT_INBOX_LEASE_MS", "1000"}, {"WACHAT_FAULT_INJECT", "intake_answer_lost:2"}},
                         {}, test::wachatd::faults_binary()};
  f.make_site("acme", phone_id);
  // The process's key, read off a row it holds in flight (its unit waits behind the site's
  // event lock).
  pqxx::connection blocker{f.db};
  pqxx::nontransaction hold{blocker};
  hold.exec_params(std::string{"SELECT pg_advisory_lock("} + infra::events_lock_key_sql + ")", "acme");
  REQUIRE(f.post_webhook(test::text_webhook(phone_id, "16505550301", "wamid.key.1", now_s() - 9, "one")).status == 200);
  const auto key = count(f.db, "SELECT owner_key FROM wa_webhook_events WHERE owner_key IS NOT NULL");
  REQUIRE(!key.empty());
  CHECK(metric(f, "wachat_inbox_owner_key_held") == 1);

  // An operator kills the session that holds the key: the dispatcher takes the same key again.
  const auto holder = "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND granted"
                      " AND ((classid::bigint << 32) | objid::bigint) = " + key;
  const auto first = count(f.db, holder);
  REQUIRE(!first.empty());
  count(f.db, "SELECT pg_terminate_backend(" + first + ")");
  CHECK(test::eventually([&] {
    auto now = count(f.db, holder);
    return !now.empty() && now != first;
  }, std::chrono::seconds(5)));
  CHECK(f.server->process().stderr_text().find("inbox_owner_key_retaken") != std::string::npos);
  CHECK(metric(f, "wachat_inbox_owner_key_held") == 1);

  hold.exec_params(std::string{"SELECT pg_advisory_unlock("} + infra::events_lock_key_sql + ")", "acme");
  REQUIRE(test::eventually([&] { return inbox_settled(f.db); }, std::chrono::seconds(10)));

  // A commit whose answer was lost: the row is in, with the key, and the dispatcher was never
  // told of it (intake answered 503). The dispatcher retires the key: a new one takes its place
  // at once, the old one is let go once nothing it holds can be of it, and the sweep frees the
  // row, which is then claimed and done.
  const auto two = test::text_webhook(phone_id, "16505550302", "wamid.key.2", now_s() - 5, "two");
  CHECK(f.post_webhook(two).status == 503);
  CHECK(count(f.db, "SELECT owner_key FROM wa_webhook_events WHERE status = 'pending'") == key);
  CHECK(test::eventually([&] {
    return f.server->process().stderr_text().find("inbox_owner_key_retired") != std::string::npos;
  }, std::chrono::seconds(5)));
  // The writer whose connection "broke" reconnects after a short back-off (503 meanwhile, and
  // Meta delivers again).
  const auto three = test::text_webhook(phone_id, "16505550303", "wamid.key.3", now_s(), "three");
  REQUIRE(test::eventually([&] { return f.post_webhook(three).status == 200; }, std::chrono::seconds(5)));
  const auto new_key = count(f.db, "SELECT max(owner_key) FROM wa_inbox_owners WHERE owner_key <> " + key);
  CHECK(!new_key.empty());
  // Let go after 15 s (the least hold), freed at the next sweep.
  REQUIRE(test::eventually([&] { return inbox_settled(f.db); }, std::chrono::seconds(30)));
  const auto log = f.server->process().stderr_text();
  int orphaned = 0;
  for (auto at = log.find("orphaned="); at != std::string::npos; at = log.find("orphaned=", at + 1)) {
    orphaned += std::atoi(log.c_str() + at + 9);
  }
  CHECK(orphaned == 1);
  CHECK(count(f.db, "SELECT count(*) FROM wa_inbox_owners WHERE owner_key = " + key) == "0");
  CHECK(metric(f, "wachat_inbox_owner_key_held") == 1);
  // Meta delivers the refused one again: done once all the same.
  REQUIRE(f.post_webhook(two).status == 200);
  REQUIRE(test::eventually([&] { return inbox_settled(f.db); }));
  for (const std::string wamid : {"wamid.key.1", "wamid.key.2", "wamid.key.3"}) {
    INFO(wamid);
    CHECK(count(f.db, "SELECT count(*) FROM mod_chat_messages WHERE whatsapp_message_id = '" + wamid + "'") == "1");
  }
  CHECK(count(f.db, "SELECT count(*) FROM wa_events WHERE type = 'message.created'") == "3");
  CHECK(count(f.db, "SELECT count(*) FROM wa_webhook_events WHERE status <> 'processed'") == "0");
}

TEST_CASE("a claim whose unit hangs gives its row back after the lease; the row is done once, when the unit can go on") {
  test::wachat_fixture f{{{"WACHAT_INBOX_LEASE_MS", "1000"}}};
  f.make_site("acme", phone_id);
  // Holding the site's event lock makes the writer that stores the message wait in its last
  // statement: the unit neither answers nor fails, as if it hung.
  pqxx::connection blocker{f.db};
  pqxx::nontransaction hold{blocker};
  hold.exec_params(std::string{"SELECT pg_advisory_lock("} + infra::events_lock_key_sql + ")",
                   "acme");
  REQUIRE(f.post_webhook(test::text_webhook(phone_id, "16505550101", "wamid.hang.1", now_s() - 5,
                                            "stuck behind a lock")).status == 200);
  const auto row = count(f.db, "SELECT max(id) FROM wa_webhook_events");
  // Whether the row is taken: owned by the process whose intake committed it (processed from
  // memory), or locked by a claim.
  auto taken = [&] {
    if (count(f.db, "SELECT owner_key IS NOT NULL FROM wa_webhook_events WHERE id = " + row) == "t") {
      return true;
    }
    try {
      pqxx::connection c{f.db};
      pqxx::work w{c};
      w.exec("SELECT 1 FROM wa_webhook_events WHERE id = " + row + " FOR UPDATE NOWAIT");
      return false;
    } catch (const pqxx::sql_error&) {
      return true;
    }
  };
  REQUIRE(taken());  // owned from its commit on
  // After the lease the row is given back, though its unit still waits: nobody owns it and it
  // is free (between the dispatcher's attempts to claim it again, which leave it alone while
  // the unit is in flight).
  CHECK(test::eventually([&] { return !taken(); }, std::chrono::seconds(5)));
  CHECK(f.server->process().stderr_text().find("inbox_claim_expired") != std::string::npos);
  CHECK(count(f.db, "SELECT count(*) FROM mod_chat_messages") == "0");
  CHECK(count(f.db, "SELECT status FROM wa_webhook_events WHERE id = " + row) == "pending");

  hold.exec_params(std::string{"SELECT pg_advisory_unlock("} + infra::events_lock_key_sql + ")",
                   "acme");
  REQUIRE(test::eventually([&] { return inbox_settled(f.db); }));
  CHECK(count(f.db, "SELECT status FROM wa_webhook_events WHERE id = " + row) == "processed");
  // Done twice (the hung unit's transaction, then the row again): stored and counted once.
  CHECK(count(f.db, "SELECT count(*) FROM mod_chat_messages WHERE whatsapp_message_id = 'wamid.hang.1'") == "1");
  CHECK(count(f.db, "SELECT unread_count FROM mod_chat_conversations") == "1");
  CHECK(count(f.db, "SELECT count(*) FROM wa_events WHERE type = 'message.created'") == "1");
}

TEST_CASE("a unit stuck in the first inbound writer does not hold up other customers") {
  test::wachat_fixture f;  // two inbound writers by default
  f.make_site("acme", phone_id);
  auto stored = [&](const std::string& wamid) {
    return count(f.db, "SELECT count(*) FROM mod_chat_messages WHERE whatsapp_message_id = '" +
                           wamid + "'") == "1";
  };
  REQUIRE(f.post_webhook(test::text_webhook(phone_id, "16505550201", "wamid.stuck.1", now_s() - 9,
                                            "first")).status == 200);
  REQUIRE(test::eventually([&] { return stored("wamid.stuck.1"); }));
  CHECK(metric(f, "wachat_inbound_batches_total") == 1);
  CHECK(metric(f, "wachat_inbound_batch_units_total") == 1);
  CHECK(metric(f, "wachat_inbound_spills_total") == 0);
  // Holding this customer's conversation row makes the writer that counts its next message wait.
  pqxx::connection blocker{f.db};
  pqxx::work hold{blocker};
  hold.exec("SELECT 1 FROM mod_chat_conversations FOR UPDATE");
  REQUIRE(f.post_webhook(test::text_webhook(phone_id, "16505550201", "wamid.stuck.2", now_s() - 8,
                                            "stuck")).status == 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // Another customer's message goes through the second writer meanwhile.
  REQUIRE(f.post_webhook(test::text_webhook(phone_id, "16505550202", "wamid.other.1", now_s() - 7,
                                            "not stuck")).status == 200);
  CHECK(test::eventually([&] { return stored("wamid.other.1"); }, std::chrono::seconds(5)));
  CHECK_FALSE(stored("wamid.stuck.2"));
  CHECK(metric(f, "wachat_inbound_spills_total") == 1);
  hold.abort();
  REQUIRE(test::eventually([&] { return inbox_settled(f.db); }));
  CHECK(stored("wamid.stuck.2"));
  CHECK(count(f.db, "SELECT sum(unread_count) FROM mod_chat_conversations") == "3");
  CHECK(metric(f, "wachat_inbound_batch_units_total") == 3);
}

TEST_CASE("gigantic strings and NUL inside a signed webhook are stored intact or cleaned, never crash") {
  test::wachat_fixture f;
  f.make_site("acme", phone_id);
  std::string huge(1'000'000, 'x');
  huge.replace(0, 6, "\xE2\x82\xAC long");  // a multi-byte character first
  REQUIRE(f.post_webhook(test::text_webhook(phone_id, "16505551234", "wamid.huge", now_s(), huge)).status == 200);
  REQUIRE(f.post_webhook(test::text_webhook(phone_id, "16505551234", "wamid.nul", now_s(),
                                            std::string{"before\0after", 12}, std::string{"Ann\0Evil", 8}))
              .status == 200);
  // A name of 100,000 characters and a wamid of 5,000.
  REQUIRE(f.post_webhook(test::text_webhook(phone_id, "16505557777", "wamid." + std::string(5000, 'w'), now_s(),
                                            "long id", std::string(100'000, 'n')))
              .status == 200);
  REQUIRE(test::eventually([&] { return inbox_settled(f.db); }));
  // "€ long" is 6 characters in 8 bytes, put in place of 6 one-byte ones.
  CHECK(count(f.db, "SELECT length(content) FROM mod_chat_messages WHERE whatsapp_message_id = 'wamid.huge'") ==
        "1000000");
  CHECK(count(f.db, "SELECT content FROM mod_chat_messages WHERE whatsapp_message_id = 'wamid.nul'") == "beforeafter");
  CHECK(count(f.db, "SELECT count(*) FROM wa_webhook_events WHERE status <> 'processed'") == "1");
  CHECK(count(f.db, "SELECT visitor.name FROM mod_chat_visitors visitor WHERE whatsapp_phone = '16505551234'") == "AnnEvil");
  // The 5,000-byte wamid is skipped and named in the row's error; the row is left partial.
  CHECK(count(f.db, "SELECT count(*) FROM mod_chat_messages WHERE length(whatsapp_message_id) > 256") == "0");
  CHECK(count(f.db, "SELECT status FROM wa_webhook_events WHERE error LIKE '%longer than 256%'") == "partial");
  auto r = f.call("GET", "/api/sites/acme/conversations");
  CHECK(r.status == 200);
  CHECK(f.call("GET", "/healthz").status == 200);
}

TEST_CASE("a phone number id with NUL is kept unroutable and does not stop other rows from finishing") {
  test::wachat_fixture f;
  f.make_site("acme", phone_id);
  REQUIRE(f.post_webhook(test::text_webhook(std::string{"999\0evil", 8}, "16505551234", "wamid.nulphone", now_s(),
                                            "to nobody"))
              .status == 200);
  REQUIRE(f.post_webhook(test::text_webhook(phone_id, "16505551234", "wamid.after", now_s(), "to acme")).status == 200);
  REQUIRE(test::eventually([&] { return inbox_settled(f.db); }));
  CHECK(count(f.db, "SELECT status FROM wa_webhook_events ORDER BY id LIMIT 1") == "unroutable");
  CHECK(count(f.db, "SELECT array_to_string(unroutable_phone_ids, ',') FROM wa_webhook_events ORDER BY id LIMIT 1") ==
        "999evil");
  CHECK(count(f.db, "SELECT status FROM wa_webhook_events ORDER BY id DESC LIMIT 1") == "processed");
  CHECK(count(f.db, "SELECT count(*) FROM mod_chat_messages WHERE whatsapp_message_id = 'wamid.after'") == "1");
}

TEST_CASE("idle conversation actors stop and come back on demand, in the same conversation") {
  test::wachat_fixture f{{{"WACHAT_CONVERSATION_IDLE_MS", "300"}}};
  f.make_site("acme", phone_id);
  for (int v = 0; v < 3; ++v) {
    REQUIRE(f.post_webhook(test::text_webhook(phone_id, "1650777000" + std::to_string(v), "wamid.idle.a" + std::to_string(v),
                                              now_s() - 50, "first"))
                .status == 200);
  }
  REQUIRE(test::eventually([&] { return metric(f, "wachat_conversation_actors") == 3; }));
  REQUIRE(test::eventually([&] { return metric(f, "wachat_conversation_actors") == 0; }));
  REQUIRE(f.post_webhook(test::text_webhook(phone_id, "16507770000", "wamid.idle.b", now_s() - 10, "again")).status == 200);
  REQUIRE(test::eventually([&] {
    return count(f.db, "SELECT count(*) FROM mod_chat_messages WHERE whatsapp_message_id = 'wamid.idle.b'") == "1";
  }));
  CHECK(count(f.db, "SELECT count(DISTINCT conversation_id) FROM mod_chat_messages m JOIN mod_chat_visitors v"
                    " ON v.whatsapp_phone = '16507770000' JOIN mod_chat_conversations c ON c.visitor_id = v.id"
                    " AND c.id = m.conversation_id") == "1");
  CHECK(count(f.db, "SELECT unread_count FROM mod_chat_conversations c JOIN mod_chat_visitors v ON v.id = c.visitor_id"
                    " WHERE v.whatsapp_phone = '16507770000'") == "2");
  CHECK(test::eventually([&] { return metric(f, "wachat_conversation_actors") == 0; }));
}

TEST_CASE("SIGTERM while conversation actors are live: exits 0 within 10 s, nothing acknowledged is lost") {
  auto db = test::fresh_database();
  std::set<std::string> acked;
  {
    test::wachat_fixture f{{}, db};
    f.make_site("acme", phone_id);
    // One message to a configured site is enough to leave a live conversation actor behind.
    REQUIRE(f.post_webhook(test::text_webhook(phone_id, "16505550001", "wamid.term.first", now_s(), "hi")).status == 200);
    REQUIRE(test::eventually([&] { return metric(f, "wachat_conversation_actors") == 1; }));
    // More customers still writing when the signal comes: their units are in flight.
    std::atomic<bool> stop{false};
    std::mutex m;
    std::thread writer{[&] {
      for (int i = 0; !stop; ++i) {
        auto wamid = "wamid.term." + std::to_string(i);
        try {
          auto r = f.post_webhook(test::text_webhook(phone_id, "1650555" + std::to_string(1000 + i % 40), wamid,
                                                     now_s(), "msg " + std::to_string(i)));
          if (r.status == 200) {
            std::lock_guard lock{m};
            acked.insert(wamid);
          }
        } catch (const std::exception&) {
          return;  // the server closed its listener
        }
      }
    }};
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    auto t0 = std::chrono::steady_clock::now();
    f.server->process().signal(SIGTERM);
    auto code = f.server->process().wait_exit(10000);
    auto took = std::chrono::steady_clock::now() - t0;
    stop = true;
    writer.join();
    INFO(f.server->process().stderr_text());
    REQUIRE(code.has_value());
    CHECK(*code == 0);
    CHECK(took < std::chrono::seconds(10));
  }
  REQUIRE(acked.size() > 5);
  // What the stop left unfinished is still in the inbox: a new process finishes it.
  test::wachat_fixture again{{}, db};
  REQUIRE(test::eventually([&] { return inbox_settled(db); }, std::chrono::seconds(30)));
  for (const auto& wamid : acked) {
    INFO(wamid);
    CHECK(count(db, "SELECT count(*) FROM mod_chat_messages WHERE whatsapp_message_id = '" + wamid + "'") == "1");
  }
}

TEST_CASE("a delivery with unusable items stores the rest and is left partial, counted and logged") {
  test::wachat_fixture f;
  f.make_site("acme", phone_id);
  json value = {{"messaging_product", "whatsapp"},
                {"metadata", test::metadata(phone_id)},
                {"contacts", {{{"profile", {{"name", "Ann"}}}, {"wa_id", "16505551234"}}}},
                {"messages",
                 {{{"from", "16505551234"}, {"id", "wamid.usable"}, {"timestamp", std::to_string(now_s())},
                   {"type", "text"}, {"text", {{"body", "kept"}}}},
                  // Neither an id nor a sender: nothing can be stored for it.
                  {{"timestamp", std::to_string(now_s())}, {"type", "text"}, {"text", {{"body", "lost"}}}}}}};
  REQUIRE(f.post_webhook(test::envelope(value)).status == 200);
  REQUIRE(test::eventually([&] { return inbox_settled(f.db); }));
  CHECK(count(f.db, "SELECT count(*) FROM mod_chat_messages WHERE whatsapp_message_id = 'wamid.usable'") == "1");
  CHECK(count(f.db, "SELECT status FROM wa_webhook_events") == "partial");
  CHECK(count(f.db, "SELECT error FROM wa_webhook_events") ==
        "1 item(s) skipped; first: entry[0].changes[0].value.messages[1]: message without id");
  CHECK(metric(f, "wachat_webhook_items_skipped_total") == 1);
  CHECK(f.server->process().stderr_text().find("event=webhook_items_skipped") != std::string::npos);
}

TEST_CASE("a delivery over 10,000 items is refused whole with its reason, nothing of it stored") {
  test::wachat_fixture f;
  f.make_site("acme", phone_id);
  json messages = json::array();
  for (int i = 0; i < 10'001; ++i) {
    messages.push_back({{"from", "1650555" + std::to_string(1000 + i % 100)}, {"id", "wamid.many." + std::to_string(i)},
                        {"timestamp", std::to_string(now_s())}, {"type", "text"}, {"text", {{"body", "m"}}}});
  }
  json value = {{"messaging_product", "whatsapp"}, {"metadata", test::metadata(phone_id)}, {"messages", messages}};
  REQUIRE(f.post_webhook(test::envelope(value)).status == 200);
  REQUIRE(test::eventually([&] { return inbox_settled(f.db); }));
  CHECK(count(f.db, "SELECT status FROM wa_webhook_events") == "rejected");
  CHECK(count(f.db, "SELECT error FROM wa_webhook_events") ==
        "more than 10000 items in one delivery (2 over the limit); not processed, the body is kept");
  CHECK(count(f.db, "SELECT count(*) FROM mod_chat_messages") == "0");
  CHECK(metric(f, "wachat_webhooks_refused_total") == 1);
  CHECK(f.server->process().stderr_text().find("event=webhook_refused") != std::string::npos);
}

TEST_CASE("an operator's ACCESS EXCLUSIVE lock on the inbox is granted while webhooks flow; nothing acknowledged is lost") {
  // ALTER TABLE or VACUUM FULL on wa_webhook_events waits for the dispatcher's open claims. Had
  // the dispatcher's next claim queued behind that lock (blocking its thread), the open claims
  // could never commit, and intake and processing would stop until the operator gave up.
  auto db = test::fresh_database();
  test::wachat_fixture f{{}, db};
  f.make_site("acme", phone_id);
  std::atomic<bool> stop{false};
  std::mutex m;
  std::set<std::string> acked;
  auto write = [&](int lane) {
    for (int i = 0; !stop; ++i) {
      auto wamid = "wamid.lock." + std::to_string(lane) + "." + std::to_string(i);
      auto r = f.post_webhook(test::text_webhook(phone_id, "1650556" + std::to_string(1000 + i % 50), wamid, now_s(),
                                                 "msg " + std::to_string(i)));
      if (r.status == 200) {
        std::lock_guard lock{m};
        acked.insert(wamid);
      }
    }
  };
  std::thread w1{write, 1};
  std::thread w2{write, 2};
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  std::string failure;
  std::chrono::steady_clock::duration waited{};
  try {
    pqxx::connection op{db};
    pqxx::work t{op};
    t.exec("SET LOCAL lock_timeout = '15s'");
    auto t0 = std::chrono::steady_clock::now();
    t.exec("LOCK TABLE wa_webhook_events IN ACCESS EXCLUSIVE MODE");
    waited = std::chrono::steady_clock::now() - t0;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the operator's change
    t.commit();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop = true;
  w1.join();
  w2.join();
  INFO(failure);
  CHECK(failure.empty());
  CHECK(waited < std::chrono::seconds(10));
  REQUIRE(acked.size() > 10);
  REQUIRE(test::eventually([&] { return inbox_settled(db); }, std::chrono::seconds(30)));
  CHECK(count(db, "SELECT count(*) FROM wa_webhook_events WHERE status <> 'processed'") == "0");
  // Every acknowledged one stored once (one answered 503 while it waited may be stored too).
  std::string list;
  for (const auto& wamid : acked) {
    list += (list.empty() ? "'" : ",'") + wamid + "'";
  }
  CHECK(count(db, "SELECT count(DISTINCT whatsapp_message_id) FROM mod_chat_messages WHERE whatsapp_message_id IN (" +
                      list + ")") == std::to_string(acked.size()));
  CHECK(count(db, "SELECT count(*) - count(DISTINCT whatsapp_message_id) FROM mod_chat_messages") == "0");
}

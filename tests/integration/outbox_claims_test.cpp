// infra::enqueue_sends claiming a send as it is queued, against a real PostgreSQL: the claim is
// the same one begin_attempts makes, never ahead of an earlier entry of the conversation, also
// one another process committed while the statement waited for the conversation's row lock.
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "infra/migrations.hpp"
#include "infra/outbound_store.hpp"
#include "support/pg_control.hpp"
#include "support/test_env.hpp"

using namespace wachat;

namespace {

struct outbox_db {
  std::string url;
  pqxx::connection conn;
  std::int64_t conversation = 0;

  outbox_db() : url(make_url()), conn(url) {
    pqxx::work w{conn};
    w.exec("INSERT INTO sites (id, name) VALUES ('acme', 'Acme')");
    auto visitor = w.exec("INSERT INTO mod_chat_visitors (site_id, name, whatsapp_phone)"
                          " VALUES ('acme', 'Ana', '15550001111') RETURNING id")[0][0]
                       .as<std::int64_t>();
    conversation = w.exec_params("INSERT INTO mod_chat_conversations (site_id, visitor_id, status)"
                                 " VALUES ('acme', $1, 'active') RETURNING id",
                                 visitor)[0][0]
                       .as<std::int64_t>();
    w.commit();
  }

  static std::string make_url() {
    auto url = test::fresh_database();
    infra::apply_migrations(url);
    return url;
  }

  static domain::outbound_request text(const std::string& body) {
    domain::outbound_request r;
    r.text = body;
    r.sender_id = "a";
    r.sender_name = "Ann";
    r.fingerprint = "fp-" + body;
    return r;
  }

  infra::send_enqueued enqueue(pqxx::connection& c, const domain::outbound_request& r,
                               std::optional<std::int64_t> claim_after_us) {
    auto out = infra::enqueue_sends(c, "acme", {{conversation, &r, claim_after_us}});
    REQUIRE(out.size() == 1);
    REQUIRE(out[0].what == infra::send_enqueued::kind::queued);
    return out[0];
  }

  std::string entry(std::int64_t message_id) {
    return test::query_scalar(url, "SELECT state || '/' || attempts FROM wa_outbox WHERE message_id = " +
                                       std::to_string(message_id));
  }
};

}  // namespace

TEST_CASE("a send queued with a claim is claimed for its first attempt, as begin_attempts would") {
  outbox_db db;
  auto hello = outbox_db::text("hello");
  auto e = db.enqueue(db.conn, hello, 0);
  REQUIRE(e.claim.claimed);
  CHECK(e.claim.attempt == 1);
  CHECK(e.claim.conversation_id == db.conversation);
  CHECK(e.claim.site_id == "acme");
  CHECK_FALSE(e.claim.no_recipient);
  auto body = nlohmann::json::parse(e.claim.body);
  CHECK(body["to"] == "15550001111");
  CHECK(body["text"]["body"] == "hello");
  CHECK(body["biz_opaque_callback_data"] == std::to_string(e.message_id));
  CHECK(db.entry(e.message_id) == "sending/1");
  // Claimed once: no second attempt can take it.
  auto again = infra::begin_attempts(db.conn, {e.message_id});
  CHECK_FALSE(again[0].claimed);

  // Its slot a while away: the doubt period counts from the slot, not from the claim.
  auto later = outbox_db::text("later");
  auto e2 = infra::enqueue_sends(db.conn, "acme", {{db.conversation, &later, 800'000}})[0];
  CHECK_FALSE(e2.claim.claimed);  // behind "hello", which is still sending
  CHECK(db.entry(e2.message_id) == "ready/0");
}

TEST_CASE("a claim given back is claimed again as a first attempt; a later attempt is never given back") {
  outbox_db db;
  auto hello = outbox_db::text("hello");
  auto e = db.enqueue(db.conn, hello, 250'000);
  REQUIRE(e.claim.claimed);
  CHECK(test::query_scalar(db.url, "SELECT attempt_at > now() + interval '200 milliseconds' FROM wa_outbox") == "t");
  infra::release_claims(db.conn, {e.message_id});
  CHECK(db.entry(e.message_id) == "ready/0");
  auto claim = infra::begin_attempts(db.conn, {e.message_id});
  REQUIRE(claim[0].claimed);
  CHECK(claim[0].attempt == 1);
  CHECK(claim[0].body == e.claim.body);

  // A second attempt (after a failure or the doubt period) stays with whoever holds it.
  pqxx::nontransaction{db.conn}.exec(
      "UPDATE wa_outbox SET state = 'sending', attempts = 2 WHERE message_id = " + std::to_string(e.message_id));
  infra::release_claims(db.conn, {e.message_id});
  CHECK(db.entry(e.message_id) == "sending/2");
}

TEST_CASE("a send is not claimed ahead of an earlier entry of its conversation") {
  outbox_db db;
  auto first = outbox_db::text("first");
  auto second = outbox_db::text("second");
  auto e1 = db.enqueue(db.conn, first, std::nullopt);
  CHECK_FALSE(e1.claim.claimed);
  auto e2 = db.enqueue(db.conn, second, 0);
  CHECK_FALSE(e2.claim.claimed);
  CHECK(db.entry(e1.message_id) == "ready/0");
  CHECK(db.entry(e2.message_id) == "ready/0");
  // A given-up entry holds nothing back.
  pqxx::nontransaction{db.conn}.exec("UPDATE wa_outbox SET state = 'failed'");
  auto third = outbox_db::text("third");
  CHECK(db.enqueue(db.conn, third, 0).claim.claimed);
}

TEST_CASE("a send another process committed while the statement waited for the conversation is not overtaken") {
  outbox_db db;
  // The other process: its enqueue holds the conversation's row lock, its send not yet
  // committed (as enqueue_sends does: the row locked, then the message and its entry).
  pqxx::connection other{db.url};
  pqxx::work theirs{other};
  theirs.exec_params("SELECT 1 FROM mod_chat_conversations WHERE id = $1 FOR NO KEY UPDATE", db.conversation);
  auto their_id = theirs.exec_params("INSERT INTO mod_chat_messages (conversation_id, site_id, sender_type, content,"
                                     " content_type, status) VALUES ($1, 'acme', 'agent', 'theirs', 'text', 'queued') RETURNING id",
                                     db.conversation)[0][0]
                      .as<std::int64_t>();
  theirs.exec_params("INSERT INTO wa_outbox (message_id, site_id, conversation_id, request)"
                     " VALUES ($1, 'acme', $2, '{}')",
                     their_id, db.conversation);
  theirs.exec_params("UPDATE mod_chat_conversations SET last_message_at = now(), updated_at = now() WHERE id = $1",
                     db.conversation);

  // Ours starts now: its snapshot cannot see their entry, and it waits for their lock.
  auto mine = outbox_db::text("mine");
  // (No assertion on that thread: Catch's are for the test's own.)
  auto ours = std::async(std::launch::async, [&] {
    return infra::enqueue_sends(db.conn, "acme", {{db.conversation, &mine, 0}});
  });
  CHECK(ours.wait_for(std::chrono::milliseconds(500)) == std::future_status::timeout);
  theirs.commit();
  auto result = ours.get();
  REQUIRE(result.size() == 1);
  REQUIRE(result[0].what == infra::send_enqueued::kind::queued);
  const auto& e = result[0];
  CHECK(e.message_id > their_id);
  CHECK_FALSE(e.claim.claimed);
  CHECK(db.entry(e.message_id) == "ready/0");
  // begin_attempts, with a snapshot of its own, keeps the order: theirs first.
  CHECK_FALSE(infra::begin_attempts(db.conn, {e.message_id})[0].claimed);
  CHECK(infra::begin_attempts(db.conn, {their_id})[0].claimed);
}

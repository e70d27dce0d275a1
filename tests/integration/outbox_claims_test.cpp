// infra::enqueue_sends against a real PostgreSQL: claiming a send as it is queued (the same
// claim begin_attempts makes, never ahead of an earlier entry of the conversation, also one
// another process committed while the statement waited for the conversation's row lock), and
// refusing a send decided on kept facts that no longer hold.
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

  outbox_db() : url(make_url()), conn(url) { conversation = add_site("acme", "15550001111"); }

  // A site with one customer (that phone) and their active conversation, whose id it returns.
  std::int64_t add_site(const std::string& site, const std::string& phone) {
    pqxx::work w{conn};
    w.exec_params("INSERT INTO sites (id, name) VALUES ($1, $1)", site);
    auto visitor = w.exec_params("INSERT INTO mod_chat_visitors (site_id, name, whatsapp_phone)"
                                 " VALUES ($1, 'Ana', $2) RETURNING id",
                                 site, phone)[0][0]
                       .as<std::int64_t>();
    auto id = w.exec_params("INSERT INTO mod_chat_conversations (site_id, visitor_id, status)"
                            " VALUES ($1, $2, 'active') RETURNING id",
                            site, visitor)[0][0]
                  .as<std::int64_t>();
    w.commit();
    return id;
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
    auto out = infra::enqueue_sends(c, {{"acme", conversation, &r, claim_after_us, std::nullopt}});
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

  // Not claimed while an earlier entry of the conversation is unfinished.
  auto later = outbox_db::text("later");
  auto e2 = infra::enqueue_sends(db.conn, {{"acme", db.conversation, &later, 800'000, std::nullopt}})[0];
  CHECK_FALSE(e2.claim.claimed);  // behind "hello", which is still sending
  CHECK(db.entry(e2.message_id) == "ready/0");
}

TEST_CASE("a claim given back is claimed again as a first attempt; a later attempt is never given back") {
  outbox_db db;
  auto hello = outbox_db::text("hello");
  auto e = db.enqueue(db.conn, hello, 250'000);
  REQUIRE(e.claim.claimed);
  // The doubt period counts from the slot: the attempt is dated then, not when it was claimed.
  CHECK(test::query_scalar(db.url, "SELECT o.attempt_at - m.created_at BETWEEN interval '200 milliseconds'"
                                   " AND interval '250 milliseconds'"
                                   " FROM wa_outbox o JOIN mod_chat_messages m ON m.id = o.message_id") == "t");
  infra::release_claims(db.conn, {{e.message_id, 1}});
  CHECK(db.entry(e.message_id) == "ready/0");
  auto claim = infra::begin_attempts(db.conn, {e.message_id});
  REQUIRE(claim[0].claimed);
  CHECK(claim[0].attempt == 1);
  CHECK(claim[0].body == e.claim.body);

  // A second attempt (after a failure or the doubt period) stays with whoever holds it.
  pqxx::nontransaction{db.conn}.exec(
      "UPDATE wa_outbox SET state = 'sending', attempts = 2 WHERE message_id = " + std::to_string(e.message_id));
  infra::release_claims(db.conn, {{e.message_id, 1}});
  CHECK(db.entry(e.message_id) == "sending/2");
  // Given back by the attempt that holds it (one that missed its slot, Meta not called): not
  // counted, and not overdue for the sweep.
  infra::release_claims(db.conn, {{e.message_id, 2}});
  CHECK(db.entry(e.message_id) == "ready/1");
  CHECK(test::query_scalar(db.url, "SELECT next_attempt_at > now() - interval '5 seconds' AND attempt_at IS NULL"
                                   " FROM wa_outbox WHERE message_id = " + std::to_string(e.message_id)) == "t");
}

TEST_CASE("a claim is renewed only while its attempt still holds it") {
  outbox_db db;
  auto hello = outbox_db::text("hello");
  auto e = db.enqueue(db.conn, hello, 0);
  REQUIRE(e.claim.claimed);
  const auto id = std::to_string(e.message_id);
  // Claimed a minute ago: the doubt period would have passed.
  pqxx::nontransaction{db.conn}.exec("UPDATE wa_outbox SET attempt_at = now() - interval '1 minute' WHERE message_id = " + id);
  auto held = infra::renew_claims(db.conn, {{e.message_id, 1}});
  CHECK(held == std::vector<std::int64_t>{e.message_id});
  CHECK(test::query_scalar(db.url, "SELECT attempt_at > now() - interval '5 seconds' FROM wa_outbox WHERE message_id = " + id) == "t");
  CHECK(db.entry(e.message_id) == "sending/1");
  // Another attempt's number: not this one's to renew, and left as it is.
  CHECK(infra::renew_claims(db.conn, {{e.message_id, 2}}).empty());
  // Given back by the sweep (ready), then claimed by another attempt: lost to the first.
  pqxx::nontransaction{db.conn}.exec("UPDATE wa_outbox SET state = 'ready' WHERE message_id = " + id);
  CHECK(infra::renew_claims(db.conn, {{e.message_id, 1}}).empty());
  CHECK(db.entry(e.message_id) == "ready/1");
  auto second = infra::begin_attempts(db.conn, {e.message_id});
  REQUIRE(second[0].claimed);
  CHECK(second[0].attempt == 2);
  CHECK(infra::renew_claims(db.conn, {{e.message_id, 1}}).empty());
  CHECK(infra::renew_claims(db.conn, {{e.message_id, 2}, {e.message_id + 1000, 1}}) ==
        std::vector<std::int64_t>{e.message_id});
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
    return infra::enqueue_sends(db.conn, {{"acme", db.conversation, &mine, 0, std::nullopt}});
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

TEST_CASE("a send decided on kept facts is stored while they hold, and refused stale once they changed") {
  outbox_db db;
  pqxx::nontransaction{db.conn}.exec_params(
      "UPDATE mod_chat_conversations SET whatsapp_window_expires_at = to_timestamp($1) WHERE id = $2",
      std::int64_t{4'000'000'000}, db.conversation);
  // As the conversation actor read them (infra::load_send_facts).
  auto facts = infra::load_send_facts(db.conn, {{"acme", db.conversation, std::nullopt}})[0];
  REQUIRE(facts.found);
  REQUIRE(facts.window_expires_at == std::int64_t{4'000'000'000});
  const infra::decided_facts kept{facts.window_expires_at, facts.has_recipient, facts.marketing_opt_out};
  auto send = [&](const domain::outbound_request& r) {
    return infra::enqueue_sends(db.conn, {{"acme", db.conversation, &r, std::nullopt, kept}})[0];
  };
  auto one = outbox_db::text("one");
  CHECK(send(one).what == infra::send_enqueued::kind::queued);

  // The window moved (a customer message stored by another process).
  pqxx::nontransaction{db.conn}.exec_params(
      "UPDATE mod_chat_conversations SET whatsapp_window_expires_at = to_timestamp($1) WHERE id = $2",
      std::int64_t{4'000'086'400}, db.conversation);
  auto two = outbox_db::text("two");
  auto stale = send(two);
  CHECK(stale.what == infra::send_enqueued::kind::stale);
  CHECK(stale.message_id == 0);
  CHECK(test::query_scalar(db.url, "SELECT count(*) FROM mod_chat_messages WHERE content = 'two'") == "0");
  CHECK(test::query_scalar(db.url, "SELECT count(*) FROM wa_outbox") == "1");

  // Back as they were, then the customer opts out of marketing.
  pqxx::nontransaction{db.conn}.exec_params(
      "UPDATE mod_chat_conversations SET whatsapp_window_expires_at = to_timestamp($1) WHERE id = $2",
      std::int64_t{4'000'000'000}, db.conversation);
  CHECK(send(two).what == infra::send_enqueued::kind::queued);
  pqxx::nontransaction{db.conn}.exec("UPDATE mod_chat_visitors SET marketing_opt_out = true");
  auto three = outbox_db::text("three");
  CHECK(send(three).what == infra::send_enqueued::kind::stale);
  // Not decided on kept facts: no check.
  CHECK(infra::enqueue_sends(db.conn, {{"acme", db.conversation, &three, std::nullopt, std::nullopt}})[0].what ==
        infra::send_enqueued::kind::queued);
}

TEST_CASE("one statement queues and records the sends of several sites, each under its own site") {
  outbox_db db;
  const auto other = db.add_site("zeta", "15550002222");
  auto a = outbox_db::text("to acme");
  auto z = outbox_db::text("to zeta");
  auto wrong = outbox_db::text("named with the wrong site");
  auto out = infra::enqueue_sends(db.conn, {{"zeta", other, &z, 0, std::nullopt},
                                            {"acme", db.conversation, &a, 0, std::nullopt}});
  REQUIRE(out.size() == 2);
  REQUIRE(out[0].what == infra::send_enqueued::kind::queued);
  REQUIRE(out[1].what == infra::send_enqueued::kind::queued);
  CHECK(out[0].claim.site_id == "zeta");
  CHECK(nlohmann::json::parse(out[0].claim.body)["to"] == "15550002222");
  CHECK(out[1].claim.site_id == "acme");
  CHECK(test::query_scalar(db.url, "SELECT string_agg(m.site_id || ':' || m.content, ',' ORDER BY m.site_id)"
                                   " FROM mod_chat_messages m") == "acme:to acme,zeta:to zeta");
  CHECK(test::query_scalar(db.url, "SELECT string_agg(site_id, ',' ORDER BY site_id) FROM wa_outbox") == "acme,zeta");
  CHECK(test::query_scalar(db.url, "SELECT string_agg(e.site_id, ',' ORDER BY e.site_id) FROM wa_events e"
                                   " JOIN mod_chat_messages m ON m.id = e.message_id AND m.site_id = e.site_id"
                                   " WHERE e.type = 'message.created'") == "acme,zeta");
  // A conversation is only found under its own site.
  auto miss = infra::enqueue_sends(db.conn, {{"zeta", db.conversation, &wrong, std::nullopt, std::nullopt}});
  CHECK(miss[0].what == infra::send_enqueued::kind::not_found);

  // A record naming another site than the message's changes nothing.
  CHECK(infra::record_sent(db.conn, {{out[0].message_id, "wamid.X", "acme"}})[0].empty());
  CHECK(test::query_scalar(db.url, "SELECT count(*) FROM wa_outbox") == "2");
  auto texts = infra::record_sent(db.conn, {{out[1].message_id, "wamid.A", "acme"},
                                            {out[0].message_id, "wamid.Z", "zeta"}});
  REQUIRE(texts.size() == 2);
  CHECK(nlohmann::json::parse(texts[0])["whatsapp_message_id"] == "wamid.A");
  CHECK(nlohmann::json::parse(texts[1])["whatsapp_message_id"] == "wamid.Z");
  CHECK(test::query_scalar(db.url, "SELECT string_agg(site_id || ':' || whatsapp_message_id || ':' || status, ','"
                                   " ORDER BY site_id) FROM mod_chat_messages") == "acme:wamid.A:sent,zeta:wamid.Z:sent");
  CHECK(test::query_scalar(db.url, "SELECT string_agg(e.site_id, ',' ORDER BY e.site_id) FROM wa_events e"
                                   " JOIN mod_chat_messages m ON m.id = e.message_id AND m.site_id = e.site_id"
                                   " WHERE e.type = 'message.updated'") == "acme,zeta");
  CHECK(test::query_scalar(db.url, "SELECT count(*) FROM wa_outbox") == "0");
}

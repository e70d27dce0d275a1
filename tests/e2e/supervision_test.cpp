// Supervision (DESIGN.md §2): a worker that dies is restarted with back-off, the work it held is
// finished by its replacement, nothing is lost, and /metrics counts the restart. The worker is
// made to throw through a fault point live only in the test build (wachatd_faults).
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <ctime>

#include "support/pg_control.hpp"
#include "support/wachat_fixture.hpp"
#include "support/whatsapp_site.hpp"

using namespace wachat;

namespace {

const std::string phone_id = "106540352242922";

std::int64_t now_s() { return static_cast<std::int64_t>(std::time(nullptr)); }

long metric(test::wachat_fixture& f, const std::string& name) { return f.metric(name); }

}  // namespace

TEST_CASE("an inbound writer that dies with a batch is restarted and its replacement stores the batch") {
  // The first batch handed to an inbound writer throws inside the worker. One writer: only its
  // replacement can store anything afterwards.
  test::wachat_fixture f{{{"WACHAT_FAULT_INJECT", "inbound_writer:1"}, {"WACHAT_INBOUND_WRITERS", "1"}},
                         {},
                         test::wachatd::faults_binary()};
  f.make_site("acme", phone_id);
  for (int i = 0; i < 5; ++i) {
    REQUIRE(f.post_webhook(test::text_webhook(phone_id, "1650555000" + std::to_string(i), "wamid.sup." + std::to_string(i),
                                              now_s() - 10, "message " + std::to_string(i)))
                .status == 200);
  }
  REQUIRE(test::eventually([&] {
    return test::query_scalar(f.db, "SELECT count(*) FROM wa_webhook_events WHERE status = 'processed'") == "5";
  }));
  CHECK(test::query_scalar(f.db, "SELECT count(*) FROM mod_chat_messages") == "5");
  CHECK(test::query_scalar(f.db, "SELECT count(DISTINCT whatsapp_message_id) FROM mod_chat_messages") == "5");
  // Each unread message counted once: the batch the dead worker held was stored once, not twice.
  CHECK(test::query_scalar(f.db, "SELECT sum(unread_count) FROM mod_chat_conversations") == "5");
  // Nothing went back to the inbox to be tried again: the replacement finished the same work.
  CHECK(test::query_scalar(f.db, "SELECT max(attempts) FROM wa_webhook_events") == "1");
  CHECK(metric(f, "wachat_inbound_writer_restarts_total") == 1);
  auto log = f.server->process().stderr_text();
  CHECK(log.find("event=worker_died pool=wachat_inbound_writer") != std::string::npos);
  CHECK(log.find("fault injected at inbound_writer") != std::string::npos);
  CHECK(log.find("event=inbound_batch_given_back") != std::string::npos);
}

TEST_CASE("the production wachatd has no live fault points") {
  test::wachat_fixture f{{{"WACHAT_FAULT_INJECT", "inbound_writer:1"}}};
  f.make_site("acme", phone_id);
  REQUIRE(f.post_webhook(test::text_webhook(phone_id, "16505550009", "wamid.prod.1", now_s(), "hi")).status == 200);
  REQUIRE(test::eventually([&] {
    return test::query_scalar(f.db, "SELECT count(*) FROM mod_chat_messages") == "1";
  }));
  CHECK(metric(f, "wachat_inbound_writer_restarts_total") == 0);
}

TEST_CASE("a database worker that dies with a job is restarted and the job is run again") {
  // The first database job (creating the site) throws inside its worker.
  test::wachat_fixture f{{{"WACHAT_FAULT_INJECT", "db_worker:1"}}, {}, test::wachatd::faults_binary()};
  auto created = f.call("POST", "/api/sites", R"({"id":"acme","name":"Acme Inc"})");
  CHECK(created.status == 201);
  CHECK(test::query_scalar(f.db, "SELECT count(*) FROM sites WHERE id = 'acme'") == "1");
  // The pool goes on serving with its replacement worker.
  for (int i = 0; i < 8; ++i) {
    CHECK(f.call("GET", "/api/sites/acme/conversations").status == 200);
  }
  CHECK(metric(f, "wachat_db_worker_restarts_total") == 1);
  CHECK(f.server->process().stderr_text().find("event=worker_died pool=wachat_db_worker") != std::string::npos);
}

TEST_CASE("an intake writer that dies answers its webhook 503 at once and is replaced") {
  // One intake writer; its first commit throws.
  test::wachat_fixture f{{{"WACHAT_FAULT_INJECT", "intake_writer:1"}, {"WACHAT_INTAKE_WRITERS", "1"}},
                         {},
                         test::wachatd::faults_binary()};
  auto body = test::text_webhook(phone_id, "16505550001", "wamid.intake.1", now_s(), "first");
  auto t0 = std::chrono::steady_clock::now();
  auto first = f.post_webhook(body);
  auto took = std::chrono::steady_clock::now() - t0;
  // Not committed, and said so at once (not after the 5 s commit timeout): Meta delivers again.
  CHECK(first.status == 503);
  CHECK(took < std::chrono::seconds(2));
  // Meta's redelivery reaches the replacement.
  int again = 0;
  REQUIRE(test::eventually([&] {
    again = f.post_webhook(body).status;
    return again == 200;
  }));
  for (int i = 2; i < 6; ++i) {
    CHECK(f.post_webhook(test::text_webhook(phone_id, "16505550001", "wamid.intake." + std::to_string(i), now_s(), "more"))
              .status == 200);
  }
  CHECK(test::query_scalar(f.db, "SELECT count(*) FROM wa_webhook_events") == "5");
  CHECK(metric(f, "wachat_intake_writer_restarts_total") == 1);
}

TEST_CASE("a unit that kills every writer it reaches is answered, not retried for ever, and SIGTERM still ends the process") {
  // Every batch throws: the first death gives the batch back, the second answers its units as a
  // passing failure, so the inbox row waits for a later try instead of holding its conversation.
  test::wachat_fixture f{{{"WACHAT_FAULT_INJECT", "inbound_writer:1*"}, {"WACHAT_INBOUND_WRITERS", "1"}},
                         {},
                         test::wachatd::faults_binary()};
  f.make_site("acme", phone_id);
  REQUIRE(f.post_webhook(test::text_webhook(phone_id, "16505550001", "wamid.poison", now_s(), "x")).status == 200);
  REQUIRE(test::eventually([&] {
    return f.server->process().stderr_text().find("answered=1") != std::string::npos;
  }));
  CHECK(metric(f, "wachat_inbound_writer_restarts_total") >= 2);
  CHECK(test::query_scalar(f.db, "SELECT count(*) FROM mod_chat_messages") == "0");
  // Not lost: the row is still to be done (pending, or claimed again right now).
  CHECK(test::query_scalar(f.db, "SELECT count(*) FROM wa_webhook_events WHERE status IN ('pending', 'processing')") == "1");
  f.server->process().signal(SIGTERM);
  auto code = f.server->process().wait_exit(10000);
  REQUIRE(code.has_value());
  INFO(f.server->process().stderr_text());
  CHECK(*code == 0);
}

TEST_CASE("SIGTERM while the only intake writer is down ends the process") {
  test::wachat_fixture f{{{"WACHAT_FAULT_INJECT", "intake_writer:1"}, {"WACHAT_INTAKE_WRITERS", "1"}},
                         {},
                         test::wachatd::faults_binary()};
  CHECK(f.post_webhook(test::text_webhook(phone_id, "16505550001", "wamid.down", now_s(), "x")).status == 503);
  // Within the 100 ms before its replacement starts.
  f.server->process().signal(SIGTERM);
  auto code = f.server->process().wait_exit(10000);
  REQUIRE(code.has_value());
  CHECK(*code == 0);
}

TEST_CASE("a conversation writer that dies with a dashboard change is restarted and its replacement writes it") {
  // The first change handed to a conversation writer worker throws inside it.
  test::wachat_fixture f{{{"WACHAT_FAULT_INJECT", "conversation_writer:1"}}, {}, test::wachatd::faults_binary()};
  f.make_site("acme", phone_id);
  REQUIRE(f.post_webhook(test::text_webhook(phone_id, "16505550042", "wamid.cw.1", now_s() - 10, "hello")).status == 200);
  REQUIRE(test::eventually([&] {
    return !f.call_json("GET", "/api/sites/acme/conversations")["conversations"].empty();
  }));
  auto id = f.call_json("GET", "/api/sites/acme/conversations")["conversations"][0]["id"].get<std::string>();
  f.call_json("PUT", "/api/sites/acme/agents/ada", {{"name", "Ada"}, {"status", "online"}});
  auto updates = [&] {
    return std::stoi(test::query_scalar(f.db, "SELECT count(*) FROM wa_events WHERE type = 'conversation.updated'"));
  };
  auto updates_before = updates();

  auto conv = f.call_json("PATCH", "/api/conversations/" + id, {{"status", "active"}, {"assigned_agent_id", "ada"}});
  CHECK(conv["status"] == "active");
  CHECK(conv["assigned_agent_id"] == "ada");
  CHECK(metric(f, "wachat_conversation_writer_restarts_total") == 1);
  auto log = f.server->process().stderr_text();
  CHECK(log.find("event=worker_died pool=wachat_conversation_writer") != std::string::npos);
  // Written once: one conversation.updated event for the change.
  CHECK(updates() == updates_before + 1);
  // The replacement takes the next change as well.
  CHECK(f.call_json("POST", "/api/conversations/" + id + "/read")["unread_count"] == 0);
  CHECK(metric(f, "wachat_conversation_writer_restarts_total") == 1);
}

TEST_CASE("a cloud sender that dies with an attempt is replaced and the send still reaches Meta once") {
  // The first attempt at Meta throws inside its worker, before the claim.
  test::whatsapp_site s{60, {{"WACHAT_FAULT_INJECT", "cloud_sender_attempt:1"}}, test::wachatd::faults_binary()};
  auto r = s.send({{"type", "text"}, {"text", "hello"}, {"sender_id", "a"}, {"sender_name", "Ann"}});
  CHECK(r.status == 201);
  CHECK(s.graph.sent_messages().size() == 1);
  CHECK(metric(*s.f, "wachat_cloud_sender_restarts_total") == 1);
  CHECK(s.f->server->process().stderr_text().find("event=worker_died pool=wachat_cloud_sender") != std::string::npos);
}

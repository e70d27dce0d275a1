// The Meta-facing webhook endpoint against the real wachatd and a real PostgreSQL (API.md §2).
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <pqxx/pqxx>
#include <set>
#include <thread>

#include "support/http_client.hpp"
#include "support/wachat_fixture.hpp"
#include "support/pg_control.hpp"
#include "support/process.hpp"
#include "support/test_env.hpp"

using namespace wachat;

namespace {

const std::string secret = "test-app-secret";
const std::string path = "/api/modules/live-chat/webhooks/whatsapp";

std::map<std::string, std::string> base_env() {
  return {{"WHATSAPP_APP_SECRET", secret}, {"WHATSAPP_VERIFY_TOKEN", "verify-me"}};
}

std::string sample_body(const std::string& wamid) {
  return R"({"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}],"messages":[{"from":"16505551234","id":")" +
         wamid + R"(","timestamp":"1749416383","type":"text","text":{"body":"Does it come in another color?"}}]}}]}]})";
}

test::http_result post_signed(std::uint16_t port, const std::string& body) {
  return test::http_post(port, path, body,
                         {{"X-Hub-Signature-256", test::meta_signature(secret, body)},
                          {"Content-Type", "application/json"}});
}

long count_events(const std::string& db, const std::string& where = "true") {
  return std::stol(test::query_scalar(db, "SELECT count(*) FROM wa_webhook_events WHERE " + where));
}

}  // namespace

TEST_CASE("GET verification echoes the challenge only for subscribe with the right token") {
  test::wachatd srv{test::fresh_database(), base_env()};
  auto ok = test::http_get(srv.port(), path + "?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444");
  CHECK(ok.status == 200);
  CHECK(ok.body == "1158201444");
  CHECK(ok.headers["content-type"] == "text/plain");
  CHECK(test::http_get(srv.port(), path + "?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1").status == 403);
  CHECK(test::http_get(srv.port(), path + "?hub.mode=unsubscribe&hub.verify_token=verify-me&hub.challenge=1").status == 403);
  CHECK(test::http_get(srv.port(), path).status == 403);
}

TEST_CASE("GET verification answers 403 when no verify token is configured") {
  test::wachatd srv{test::fresh_database(), {{"WHATSAPP_APP_SECRET", secret}}};
  CHECK(test::http_get(srv.port(), path + "?hub.mode=subscribe&hub.verify_token=&hub.challenge=1").status == 403);
  CHECK(test::http_get(srv.port(), path + "?hub.mode=subscribe&hub.challenge=1").status == 403);
}

TEST_CASE("a validly signed webhook is committed byte for byte before the 200") {
  auto db = test::fresh_database();
  test::wachatd srv{db, base_env()};
  auto body = sample_body("wamid.exact.1");
  auto r = post_signed(srv.port(), body);
  REQUIRE(r.status == 200);
  // The row must be there the moment the 200 arrived.
  CHECK(test::query_scalar(db, "SELECT encode(body, 'escape') FROM wa_webhook_events") == body);
  CHECK(test::query_scalar(db, "SELECT status FROM wa_webhook_events") != "rejected");
  CHECK(test::query_scalar(db, "SELECT received_at IS NOT NULL FROM wa_webhook_events") == "t");
}

TEST_CASE("missing, malformed or wrong signatures answer 401 and store nothing") {
  auto db = test::fresh_database();
  test::wachatd srv{db, base_env()};
  auto body = sample_body("wamid.sig.1");
  CHECK(test::http_post(srv.port(), path, body).status == 401);
  CHECK(test::http_post(srv.port(), path, body, {{"X-Hub-Signature-256", "sha256=abc"}}).status == 401);
  CHECK(test::http_post(srv.port(), path, body, {{"X-Hub-Signature-256", test::meta_signature("other-secret", body)}}).status == 401);
  // A signature over other bytes (a tampered body).
  auto sig = test::meta_signature(secret, body);
  auto tampered = body;
  tampered[tampered.size() - 5] = 'X';
  CHECK(test::http_post(srv.port(), path, tampered, {{"X-Hub-Signature-256", sig}}).status == 401);
  auto r = test::http_post(srv.port(), path, body, {{"X-Hub-Signature-256", "md5=00"}});
  CHECK(r.status == 401);
  CHECK(r.body.find("\"code\":\"unauthorized\"") != std::string::npos);
  CHECK(count_events(db) == 0);
}

TEST_CASE("without an app secret every webhook POST answers 401") {
  auto db = test::fresh_database();
  test::wachatd srv{db, {{"WHATSAPP_VERIFY_TOKEN", "verify-me"}}};
  auto body = sample_body("wamid.nosecret");
  CHECK(post_signed(srv.port(), body).status == 401);
  CHECK(count_events(db) == 0);
}

TEST_CASE("a signature over the unicode-escaped form is accepted, as is one over raw bytes") {
  auto db = test::fresh_database();
  test::wachatd srv{db, base_env()};
  // "Café 👍" raw in the body; Meta may sign "Caf\u00e9 \ud83d\udc4d".
  std::string raw = "{\"object\":\"whatsapp_business_account\",\"entry\":[],\"t\":\"Caf\xc3\xa9 \xf0\x9f\x91\x8d\"}";
  std::string escaped = R"({"object":"whatsapp_business_account","entry":[],"t":"Caf\u00e9 \ud83d\udc4d"})";
  auto r1 = test::http_post(srv.port(), path, raw, {{"X-Hub-Signature-256", test::meta_signature(secret, escaped)}});
  CHECK(r1.status == 200);
  auto r2 = test::http_post(srv.port(), path, raw, {{"X-Hub-Signature-256", test::meta_signature(secret, raw)}});
  CHECK(r2.status == 200);
  // Uppercase escapes are not what Meta signs.
  std::string upper = R"({"object":"whatsapp_business_account","entry":[],"t":"Caf\u00E9 \uD83D\uDC4D"})";
  auto r3 = test::http_post(srv.port(), path, raw, {{"X-Hub-Signature-256", test::meta_signature(secret, upper)}});
  CHECK(r3.status == 401);
  CHECK(count_events(db) == 2);
  CHECK(count_events(db, "status <> 'rejected'") == 2);
}

TEST_CASE("a body over WACHAT_WEBHOOK_MAX_BYTES answers 413 and stores nothing") {
  auto db = test::fresh_database();
  auto env = base_env();
  env["WACHAT_WEBHOOK_MAX_BYTES"] = "2048";
  test::wachatd srv{db, env};
  std::string big = sample_body(std::string(3000, 'x'));
  auto r = post_signed(srv.port(), big);
  CHECK(r.status == 413);
  CHECK(r.body.find("payload_too_large") != std::string::npos);
  // Chunked bodies carry no Content-Length: the limit must hold as the chunks arrive.
  test::raw_connection chunked{srv.port()};
  std::string chunk(1500, 'y');
  chunked.send("POST " + path + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
               "X-Hub-Signature-256: " + test::meta_signature(secret, chunk + chunk) + "\r\n\r\n" +
               "5dc\r\n" + chunk + "\r\n5dc\r\n" + chunk + "\r\n0\r\n\r\n");
  auto answer = chunked.read_all(3000);
  CHECK(answer.rfind("HTTP/1.1 413", 0) == 0);
  CHECK(post_signed(srv.port(), sample_body("wamid.small")).status == 200);
  CHECK(count_events(db) == 1);
}

TEST_CASE("a commit that hangs past WACHAT_COMMIT_TIMEOUT_MS answers 503; the next webhook is stored") {
  auto db = test::fresh_database();
  auto env = base_env();
  env["WACHAT_COMMIT_TIMEOUT_MS"] = "400";
  test::wachatd srv{db, env};
  REQUIRE(post_signed(srv.port(), sample_body("wamid.before.hang")).status == 200);
  REQUIRE(test::eventually([&] { return count_events(db, "status = 'unroutable'") == 1; }));
  // Another session holds the inbox table in SHARE mode: the intake's INSERT waits behind it.
  // (Not ACCESS EXCLUSIVE: that would also queue behind a claim the dispatcher holds open, and
  // the dispatcher's next claim behind it, so neither would ever let go.)
  pqxx::connection locker{db};
  pqxx::work hold{locker};
  hold.exec("LOCK TABLE wa_webhook_events IN SHARE MODE");
  auto started = std::chrono::steady_clock::now();
  auto r = post_signed(srv.port(), sample_body("wamid.during.hang"));
  auto waited = std::chrono::steady_clock::now() - started;
  CHECK(r.status == 503);
  CHECK(r.body.find("could not be stored in time") != std::string::npos);
  CHECK(waited >= std::chrono::milliseconds(400));
  CHECK(waited < std::chrono::seconds(3));
  hold.abort();
  // The held INSERT goes through once the lock is gone (stored, though answered 503: Meta
  // delivers it again and processing recognises the wamid); later webhooks are answered 200.
  CHECK(post_signed(srv.port(), sample_body("wamid.after.hang")).status == 200);
  CHECK(count_events(db) == 3);
}

TEST_CASE("signed bodies that are not JSON are kept as rejected with their reason") {
  auto db = test::fresh_database();
  test::wachatd srv{db, base_env()};
  CHECK(post_signed(srv.port(), "this is not json").status == 200);
  CHECK(post_signed(srv.port(), "").status == 200);
  CHECK(post_signed(srv.port(), "[1,2,3]").status == 200);
  CHECK(post_signed(srv.port(), "{\"a\":\"\xff\xfe\"}").status == 200);  // invalid UTF-8
  CHECK(count_events(db, "status = 'rejected'") == 4);
  CHECK(count_events(db, "status = 'rejected' AND error IS NOT NULL AND error <> ''") == 4);
  CHECK(test::query_scalar(db, "SELECT error FROM wa_webhook_events WHERE body = ''::bytea") == "empty body");
  CHECK(test::query_scalar(db, "SELECT encode(body,'hex') FROM wa_webhook_events WHERE error LIKE '%UTF%' OR body = '\\x7b2261223a22fffe227d'::bytea LIMIT 1") == "7b2261223a22fffe227d");
}

TEST_CASE("oversized request headers answer 431") {
  test::wachatd srv{test::fresh_database(), base_env()};
  auto r = test::http_get(srv.port(), "/healthz", {{"X-Big", std::string(20000, 'a')}});
  CHECK(r.status == 431);
  std::map<std::string, std::string> many;
  for (int i = 0; i < 400; ++i) {
    many["X-H" + std::to_string(i)] = std::string(50, 'b');
  }
  CHECK(test::http_get(srv.port(), "/healthz", many).status == 431);
  CHECK(test::http_get(srv.port(), "/healthz").status == 200);
}

TEST_CASE("a client that sends half a request and stalls is cut off; others are served meanwhile") {
  auto env = base_env();
  env["WACHAT_REQUEST_TIMEOUT_MS"] = "1500";
  test::wachatd srv{test::fresh_database(), env};
  test::raw_connection slow{srv.port()};
  slow.send("POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"partial\":");
  test::raw_connection slow_headers{srv.port()};
  slow_headers.send("GET /healthz HTTP/1.1\r\nHost: x\r\n");
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    CHECK(post_signed(srv.port(), sample_body("wamid.fast." + std::to_string(i))).status == 200);
  }
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(1500));
  CHECK(slow.closed_by_peer_within(5000));
  CHECK(slow_headers.closed_by_peer_within(5000));
}

TEST_CASE("keep-alive serves many requests on one connection") {
  auto db = test::fresh_database();
  test::wachatd srv{db, base_env()};
  test::http_client c{"127.0.0.1", srv.port()};
  for (int i = 0; i < 50; ++i) {
    auto body = sample_body("wamid.ka." + std::to_string(i));
    auto r = c.request("POST", path, body, {{"X-Hub-Signature-256", test::meta_signature(secret, body)}});
    REQUIRE(r.status == 200);
    CHECK(r.headers["connection"] != "close");
  }
  CHECK(count_events(db) == 50);
}

TEST_CASE("two processes on one database both take webhooks") {
  auto db = test::fresh_database();
  test::wachatd a{db, base_env()};
  test::wachatd b{db, base_env()};
  for (int i = 0; i < 20; ++i) {
    CHECK(post_signed(a.port(), sample_body("wamid.a." + std::to_string(i))).status == 200);
    CHECK(post_signed(b.port(), sample_body("wamid.b." + std::to_string(i))).status == 200);
  }
  CHECK(count_events(db) == 40);
  CHECK(test::query_scalar(db, "SELECT count(*) FROM schema_migrations") ==
        test::query_scalar(db, "SELECT max(number) FROM schema_migrations"));
}

namespace {

// Sends distinct webhooks from `threads` connections until `stop`; remembers each one answered 200.
struct load {
  std::atomic<bool> stop{false};
  std::mutex mutex;
  std::set<std::string> acked;
  std::map<int, int> statuses;
  std::atomic<int> errors{0};
  std::vector<std::thread> workers;

  load(std::uint16_t port, int threads, const std::string& tag) {
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([this, port, t, tag] {
        std::unique_ptr<test::http_client> c;
        for (int i = 0; !stop; ++i) {
          auto wamid = "wamid." + tag + "." + std::to_string(t) + "." + std::to_string(i);
          auto body = sample_body(wamid);
          try {
            if (!c) {
              c = std::make_unique<test::http_client>("127.0.0.1", port);
            }
            auto r = c->request("POST", path, body, {{"X-Hub-Signature-256", test::meta_signature(secret, body)}});
            std::lock_guard lock{mutex};
            ++statuses[r.status];
            if (r.status == 200) {
              acked.insert(wamid);
            }
          } catch (const std::exception&) {
            ++errors;
            c.reset();
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
          }
        }
      });
    }
  }
  void finish() {
    stop = true;
    for (auto& w : workers) {
      w.join();
    }
    workers.clear();
  }
  ~load() { finish(); }
};

std::set<std::string> stored_wamids(const std::string& db) {
  pqxx::connection c{db};
  pqxx::nontransaction nt{c};
  std::set<std::string> out;
  for (const auto& row : nt.exec(
           "SELECT convert_from(body, 'UTF8')::json->'entry'->0->'changes'->0->'value'->'messages'->0->>'id' "
           "FROM wa_webhook_events WHERE status <> 'rejected'")) {
    out.insert(row[0].c_str());
  }
  return out;
}

}  // namespace

TEST_CASE("SIGTERM under load: exits 0 within 10 s and every acknowledged webhook is stored") {
  auto db = test::fresh_database();
  test::wachatd srv{db, base_env()};
  load l{srv.port(), 8, "term"};
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto t0 = std::chrono::steady_clock::now();
  srv.process().signal(SIGTERM);
  auto code = srv.process().wait_exit(10000);
  auto took = std::chrono::steady_clock::now() - t0;
  l.finish();
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(took < std::chrono::seconds(10));
  INFO("acked " << l.acked.size());
  REQUIRE(l.acked.size() > 50);
  auto stored = stored_wamids(db);
  std::size_t missing = 0;
  for (const auto& w : l.acked) {
    missing += stored.count(w) == 0 ? 1 : 0;
  }
  CHECK(missing == 0);
}

TEST_CASE("PostgreSQL stopped under load: webhooks and /readyz answer 503, then intake resumes") {
  auto db = test::fresh_database();
  test::wachatd srv{db, base_env()};
  load l{srv.port(), 4, "outage"};
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  test::stop_test_postgres();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  int during = post_signed(srv.port(), sample_body("wamid.during")).status;
  int ready_during = test::http_get(srv.port(), "/readyz").status;
  test::start_test_postgres();
  // Reconnect back-off is at most 2 s; allow for it.
  int after = 0;
  for (int i = 0; i < 100 && after != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    after = post_signed(srv.port(), sample_body("wamid.after." + std::to_string(i))).status;
  }
  l.finish();
  CHECK(during == 503);
  CHECK(ready_during == 503);
  CHECK(after == 200);
  CHECK(test::http_get(srv.port(), "/readyz").status == 200);
  CHECK(l.statuses[503] > 0);
  // Nothing acknowledged went missing across the outage.
  auto stored = stored_wamids(db);
  std::size_t missing = 0;
  for (const auto& w : l.acked) {
    missing += stored.count(w) == 0 ? 1 : 0;
  }
  CHECK(missing == 0);
  CHECK(srv.process().wait_exit(0) == std::nullopt);  // still running, never restarted
}

// How the server reads a request off the wire (API.md §2 body limits, RFC 9112 framing): large
// signed webhooks, answers that reach a client still uploading, and requests framed ambiguously.
#include <catch2/catch.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "support/http_client.hpp"
#include "support/pg_control.hpp"
#include "support/process.hpp"
#include "support/test_env.hpp"

using namespace wachat;

namespace {

const std::string secret = "test-app-secret";
const std::string path = "/api/modules/live-chat/webhooks/whatsapp";

std::map<std::string, std::string> base_env() { return {{"WHATSAPP_APP_SECRET", secret}}; }

// A Meta-shaped delivery of about `bytes` bytes (a long text message).
std::string webhook_of_size(std::size_t bytes, const std::string& wamid) {
  nlohmann::json body = {
      {"object", "whatsapp_business_account"},
      {"entry",
       {{{"id", "102290129340398"},
         {"changes",
          {{{"field", "messages"},
            {"value",
             {{"messaging_product", "whatsapp"},
              {"metadata", {{"display_phone_number", "15550783881"}, {"phone_number_id", "106540352242922"}}},
              {"messages",
               {{{"from", "16505551234"},
                 {"id", wamid},
                 {"timestamp", "1749416383"},
                 {"type", "text"},
                 {"text", {{"body", std::string(bytes, 'a')}}}}}}}}}}}}}}};
  return body.dump();
}

std::string signed_request_head(std::size_t length, const std::string& body_for_signature) {
  return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
         "X-Hub-Signature-256: " + test::meta_signature(secret, body_for_signature) + "\r\n" +
         "Content-Length: " + std::to_string(length) + "\r\n\r\n";
}

long stored(const std::string& db) { return std::stol(test::query_scalar(db, "SELECT count(*) FROM wa_webhook_events")); }

// Sends `head` and `body` on a raw socket as a client that does not look at the answer until it
// has written everything, then returns all the server wrote back.
std::string send_whole_then_read(std::uint16_t port, const std::string& head, const std::string& body) {
  test::raw_connection c{port};
  try {
    c.send(head);
    c.send(body);
  } catch (const std::exception&) {
    // A reset while still sending: whatever arrived is read below (nothing, before the fix).
  }
  return c.read_all(5000);
}

}  // namespace

TEST_CASE("signed webhooks between 1 MiB and WACHAT_WEBHOOK_MAX_BYTES are stored byte for byte") {
  auto db = test::fresh_database();
  test::wachatd srv{db, base_env()};  // default limits: 4 MiB for the webhook, 1 MiB elsewhere
  for (std::size_t size : {std::size_t{2} * 1024 * 1024, std::size_t{3900} * 1024}) {
    auto body = webhook_of_size(size, "wamid.big." + std::to_string(size));
    REQUIRE(body.size() > 1024 * 1024);
    REQUIRE(body.size() <= 4 * 1024 * 1024);
    auto r = test::http_post(srv.port(), path, body, {{"X-Hub-Signature-256", test::meta_signature(secret, body)}});
    CHECK(r.status == 200);
    pqxx::connection c{db};
    pqxx::nontransaction nt{c};
    CHECK(nt.exec_params("SELECT 1 FROM wa_webhook_events WHERE body = convert_to($1, 'UTF8')", body).size() == 1);
  }
  CHECK(stored(db) == 2);
}

TEST_CASE("a client still sending a body over the limit reads the 413, on the webhook and the API") {
  auto db = test::fresh_database();
  test::wachatd srv{db, base_env()};
  auto body = webhook_of_size(5 * 1024 * 1024, "wamid.toolarge");
  auto answer = send_whole_then_read(srv.port(), signed_request_head(body.size(), body), body);
  INFO(answer.substr(0, 200));
  CHECK(answer.rfind("HTTP/1.1 413", 0) == 0);
  CHECK(answer.find("payload_too_large") != std::string::npos);
  CHECK(stored(db) == 0);
  // The API's own limit (1 MiB) on a body of 2 MiB.
  std::string api_body = "{\"id\":\"s\",\"name\":\"" + std::string(2 * 1024 * 1024, 'n') + "\"}";
  auto api_answer = send_whole_then_read(
      srv.port(),
      "POST /api/sites HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer x\r\nContent-Type: application/json\r\n"
      "Content-Length: " + std::to_string(api_body.size()) + "\r\n\r\n",
      api_body);
  CHECK(api_answer.rfind("HTTP/1.1 413", 0) == 0);
  // A chunked body to a path no route takes is held to the default limit (1 MiB) as well,
  // not read whole before the 404.
  std::string chunk(64 * 1024, 'c');
  char size_line[32];
  std::snprintf(size_line, sizeof size_line, "%zx\r\n", chunk.size());
  std::string chunks;
  for (int i = 0; i < 40; ++i) {  // 2.5 MiB
    chunks += size_line + chunk + "\r\n";
  }
  chunks += "0\r\n\r\n";
  auto unknown = send_whole_then_read(srv.port(), "POST /no/such/path HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n", chunks);
  CHECK(unknown.rfind("HTTP/1.1 413", 0) == 0);
  CHECK(test::http_get(srv.port(), "/healthz").status == 200);
}

TEST_CASE("ambiguous message framing answers 400 and closes, storing nothing") {
  auto db = test::fresh_database();
  test::wachatd srv{db, base_env()};
  std::string body = R"({"object":"whatsapp_business_account","entry":[]})";
  auto sig = test::meta_signature(secret, body);
  auto head = "POST " + path + " HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: " + sig + "\r\n";
  const std::vector<std::string> requests = {
      // A coding other than a final chunked beside a Content-Length: a smuggling shape.
      head + "Transfer-Encoding: gzip\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body,
      // chunked, but not the final coding: the length is unknowable.
      head + "Transfer-Encoding: chunked, gzip\r\n\r\n" + body,
      // Both framings at once, in either order.
      head + "Transfer-Encoding: chunked\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body,
      head + "Content-Length: " + std::to_string(body.size()) + "\r\nTransfer-Encoding: chunked\r\n\r\n" + body,
      // Two different lengths.
      head + "Content-Length: 3\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body,
  };
  for (const auto& req : requests) {
    test::raw_connection c{srv.port()};
    c.send(req);
    auto answer = c.read_all(3000);
    INFO(req.substr(0, 300));
    CHECK(answer.rfind("HTTP/1.1 400", 0) == 0);
    CHECK(answer.find("\"code\":\"invalid_request\"") != std::string::npos);
    CHECK(answer.find("Connection: close") != std::string::npos);
  }
  CHECK(stored(db) == 0);
}

TEST_CASE("Host is required of HTTP/1.1, once; a header line that cannot be parsed answers 400") {
  test::wachatd srv{test::fresh_database(), base_env()};
  auto ask = [&](const std::string& req) {
    test::raw_connection c{srv.port()};
    c.send(req);
    return c.read_all(3000);
  };
  CHECK(ask("GET /healthz HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 400", 0) == 0);
  CHECK(ask("GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").rfind("HTTP/1.1 400", 0) == 0);
  // HTTP/1.0 has no Host requirement.
  auto old_client = ask("GET /healthz HTTP/1.0\r\n\r\n");
  CHECK(old_client.rfind("HTTP/1.", 0) == 0);
  CHECK(old_client.find(" 200 ") == 8);
  CHECK(ask("GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").rfind("HTTP/1.1 200", 0) == 0);
  auto bad_line = ask("GET /healthz HTTP/1.1\r\nHost: a\r\nthis is no header\r\n\r\n");
  CHECK(bad_line.rfind("HTTP/1.1 400", 0) == 0);
  CHECK(bad_line.find("invalid_request") != std::string::npos);
  CHECK(ask("HELLO THERE\r\n\r\n").find(" 400 ") != std::string::npos);
}

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>

#include "domain/graph_error_policy.hpp"
#include "infra/graph_client.hpp"
#include "support/fake_graph.hpp"
#include "support/test_env.hpp"

using namespace wachat;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr const char* phone_id = "106540352242922";
constexpr const char* token = "test-token";

std::unique_ptr<infra::graph_client> make_client(infra::graph_client_options options) {
  auto made = infra::graph_client::create(std::move(options));
  if (auto* error = std::get_if<std::string>(&made)) {
    FAIL("graph_client::create: " << *error);
  }
  return std::move(std::get<std::unique_ptr<infra::graph_client>>(made));
}

std::unique_ptr<infra::graph_client> client_for(const test::fake_graph& fake) {
  infra::graph_client_options o;
  o.base_url = fake.base_url();
  o.version = fake.version();
  return make_client(o);
}

infra::graph_request send_text(const std::string& access_token = token) {
  infra::graph_request r;
  r.method = infra::graph_method::post;
  r.path = std::string{"/"} + phone_id + "/messages";
  r.access_token = access_token;
  r.body = json{{"messaging_product", "whatsapp"},
                {"recipient_type", "individual"},
                {"to", "+260971234567"},
                {"type", "text"},
                {"text", {{"body", "Hello"}}}}
               .dump();
  return r;
}

infra::graph_request get_phone() {
  infra::graph_request r;
  r.path = std::string{"/"} + phone_id;
  r.query = {{"fields", "display_phone_number,verified_name,quality_rating"}};
  r.access_token = token;
  return r;
}

std::unique_ptr<test::fake_graph> fake_with_phone(test::fake_graph::options o = {}) {
  auto fake = std::make_unique<test::fake_graph>(std::move(o));
  fake->add_phone(phone_id, "+1 555-0100", "Acme Support");
  return fake;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

TEST_CASE("a message send reaches Meta with the version, token and JSON body", "[graph]") {
  auto fake = fake_with_phone();
  auto client = client_for(*fake);
  auto req = send_text();
  auto sent_body = req.body;
  auto res = client->request_blocking(std::move(req));
  REQUIRE(res.ok());
  CHECK(res.status == 200);
  CHECK(res.content_type == "application/json");
  auto body = json::parse(res.body);
  CHECK(body["contacts"][0]["wa_id"] == "260971234567");
  CHECK(body["messages"][0]["id"].get<std::string>().starts_with("wamid."));

  auto calls = fake->calls();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].method == "POST");
  CHECK(calls[0].path == std::string{"/v24.0/"} + phone_id + "/messages");
  CHECK(calls[0].headers["authorization"] == "Bearer test-token");
  CHECK(calls[0].headers["content-type"] == "application/json");
  CHECK(calls[0].body == sent_body);
  CHECK(fake->sent_messages().size() == 1);
}

TEST_CASE("query parameters are encoded and the phone's fields come back", "[graph]") {
  auto fake = fake_with_phone();
  auto client = client_for(*fake);
  auto res = client->request_blocking(get_phone());
  REQUIRE(res.ok());
  auto body = json::parse(res.body);
  CHECK(body["display_phone_number"] == "+1 555-0100");
  CHECK(body["verified_name"] == "Acme Support");
  CHECK(body["quality_rating"] == "GREEN");
  CHECK(body["id"] == phone_id);
  auto calls = fake->calls();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].method == "GET");
  CHECK(calls[0].param("fields") == "display_phone_number,verified_name,quality_rating");
  CHECK(calls[0].body.empty());
}

TEST_CASE("Meta's error object is parsed into code, title, details and trace id", "[graph]") {
  auto fake = fake_with_phone();
  fake->fail_next("*/messages", 1, 400, 131026, "(#131026) Message Undeliverable.", 0,
                  "Message failed to send because the user is not on WhatsApp.");
  auto client = client_for(*fake);
  auto res = client->request_blocking(send_text());
  CHECK(res.status == 400);
  REQUIRE(res.error);
  CHECK(res.error->code == 131026);
  CHECK(res.error->title == "(#131026) Message Undeliverable.");
  CHECK(res.error->details == "Message failed to send because the user is not on WhatsApp.");
  CHECK_FALSE(res.error->fbtrace_id.empty());
  CHECK(res.error->http_status == 400);
  CHECK_FALSE(res.error->transport);
  CHECK(domain::classify_graph_error(*res.error) == domain::graph_error_action::fail);

  // The script is used up: the next send succeeds.
  CHECK(client->request_blocking(send_text()).ok());
}

TEST_CASE("rate limits answer 429 with 130429 and classify as throttled", "[graph]") {
  auto fake = fake_with_phone();
  fake->fail_next("*/messages", 2, 429, 130429, "(#130429) Rate limit hit");
  auto client = client_for(*fake);
  for (int i = 0; i < 2; ++i) {
    auto res = client->request_blocking(send_text());
    REQUIRE(res.error);
    CHECK(res.status == 429);
    CHECK(domain::classify_graph_error(*res.error) == domain::graph_error_action::retry_throttled);
  }
  CHECK(client->request_blocking(send_text()).ok());
}

TEST_CASE("a wrong token answers 401 with code 190 and is never echoed", "[graph]") {
  auto fake = fake_with_phone();
  auto client = client_for(*fake);
  auto res = client->request_blocking(send_text("EAAB-wrong-token-1234"));
  CHECK(res.status == 401);
  REQUIRE(res.error);
  CHECK(res.error->code == 190);
  CHECK(res.error->type == "OAuthException");
  CHECK(domain::classify_graph_error(*res.error) ==
        domain::graph_error_action::credentials_broken);
  CHECK(res.error->title.find("EAAB-wrong") == std::string::npos);
  CHECK(res.error->details.find("EAAB-wrong") == std::string::npos);
}

TEST_CASE("a refused connection is a transport error that nothing was sent for", "[graph]") {
  infra::graph_client_options o;
  auto port = test::free_port();
  o.base_url = "http://127.0.0.1:" + std::to_string(port);
  auto client = make_client(o);
  auto res = client->request_blocking(send_text());
  CHECK(res.status == 0);
  REQUIRE(res.error);
  CHECK(res.error->transport);
  CHECK(res.error->type == "transport");
  CHECK(res.error->title.find("connecting to 127.0.0.1:" + std::to_string(port) + " failed") !=
        std::string::npos);
  CHECK_FALSE(res.request_sent);
  CHECK(domain::classify_graph_error(*res.error) == domain::graph_error_action::retry_transient);
}

TEST_CASE("an unknown host is a transport error naming the DNS lookup", "[graph]") {
  infra::graph_client_options o;
  o.base_url = "http://no-such-host.invalid";
  auto client = make_client(o);
  auto res = client->request_blocking(get_phone());
  REQUIRE(res.error);
  CHECK(res.error->transport);
  CHECK(res.error->title.find("no-such-host.invalid") != std::string::npos);
}

TEST_CASE("an answer slower than the timeout fails in time as a transport error", "[graph]") {
  auto fake = fake_with_phone();
  fake->script("POST", "*/messages", test::scripted_response::delayed(3000ms));
  infra::graph_client_options o;
  o.base_url = fake->base_url();
  o.timeout = 300ms;
  auto client = make_client(o);
  auto started = std::chrono::steady_clock::now();
  auto res = client->request_blocking(send_text());
  auto took = seconds_since(started);
  REQUIRE(res.error);
  CHECK(res.error->transport);
  CHECK(res.error->title.find("timed out after 300 ms") != std::string::npos);
  CHECK(res.request_sent);
  CHECK(took >= 0.25);
  CHECK(took < 2.0);
}

TEST_CASE("a per-request timeout overrides the client's", "[graph]") {
  auto fake = fake_with_phone();
  fake->script("GET", "*", test::scripted_response::delayed(500ms));
  infra::graph_client_options o;
  o.base_url = fake->base_url();
  o.timeout = 100ms;
  auto client = make_client(o);
  auto req = get_phone();
  req.timeout = 5000ms;
  CHECK(client->request_blocking(std::move(req)).ok());
}

TEST_CASE("sequential calls reuse one kept-alive connection", "[graph]") {
  auto fake = fake_with_phone();
  auto client = client_for(*fake);
  for (int i = 0; i < 5; ++i) {
    REQUIRE(client->request_blocking(i % 2 == 0 ? get_phone() : send_text()).ok());
  }
  CHECK(fake->call_count() == 5);
  CHECK(fake->connections_accepted() == 1);
  CHECK(client->connections_opened() == 1);
}

TEST_CASE("concurrent calls do not block the caller and run side by side", "[graph]") {
  auto fake = fake_with_phone();
  fake->script("", "*", test::scripted_response::delayed(400ms), 4);
  auto client = client_for(*fake);
  std::vector<std::future<infra::graph_response>> answers;
  std::vector<std::shared_ptr<std::promise<infra::graph_response>>> promises;
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 4; ++i) {
    auto p = std::make_shared<std::promise<infra::graph_response>>();
    answers.push_back(p->get_future());
    client->request(get_phone(), [p](infra::graph_response r) { p->set_value(std::move(r)); });
  }
  // request() only queues the call.
  CHECK(seconds_since(started) < 0.2);
  for (auto& a : answers) {
    CHECK(a.get().ok());
  }
  // Four 400 ms answers in parallel, not one after the other.
  CHECK(seconds_since(started) < 1.2);
  CHECK(fake->connections_accepted() == 4);
  // The pool now holds those connections: the next call opens none.
  REQUIRE(client->request_blocking(get_phone()).ok());
  CHECK(fake->connections_accepted() == 4);
}

TEST_CASE("a kept-alive connection the server closed is noticed before it is used", "[graph]") {
  auto fake = fake_with_phone();
  auto client = client_for(*fake);
  REQUIRE(client->request_blocking(send_text()).ok());
  fake->close_idle_connections();
  auto res = client->request_blocking(send_text());
  REQUIRE(res.ok());
  CHECK(fake->connections_accepted() == 2);
  // Each send reached Meta exactly once.
  CHECK(fake->calls_matching("POST", "*/messages").size() == 2);
}

TEST_CASE("a GET on a connection closed without an answer is retried once on a fresh one",
          "[graph]") {
  auto fake = fake_with_phone();
  auto client = client_for(*fake);
  REQUIRE(client->request_blocking(get_phone()).ok());
  fake->script("GET", "*", test::scripted_response::close_connection());
  auto res = client->request_blocking(get_phone());
  REQUIRE(res.ok());
  CHECK(fake->call_count() == 3);
  CHECK(fake->connections_accepted() == 2);
}

TEST_CASE("a POST on a connection closed without an answer is not sent twice", "[graph]") {
  auto fake = fake_with_phone();
  auto client = client_for(*fake);
  REQUIRE(client->request_blocking(get_phone()).ok());
  fake->script("POST", "*/messages", test::scripted_response::close_connection());
  auto res = client->request_blocking(send_text());
  REQUIRE(res.error);
  CHECK(res.error->transport);
  CHECK(res.request_sent);
  CHECK(fake->calls_matching("POST", "*/messages").size() == 1);
}

TEST_CASE("a GET closed without an answer on a fresh connection is not retried", "[graph]") {
  auto fake = fake_with_phone();
  fake->script("GET", "*", test::scripted_response::close_connection());
  auto client = client_for(*fake);
  auto res = client->request_blocking(get_phone());
  REQUIRE(res.error);
  CHECK(res.error->transport);
  CHECK(fake->call_count() == 1);
}

TEST_CASE("template pages are followed through paging.next absolute URLs", "[graph]") {
  auto fake = fake_with_phone();
  for (int i = 1; i <= 5; ++i) {
    fake->add_template("waba-1", {{"name", "tmpl_" + std::to_string(i)},
                                  {"language", "en_US"},
                                  {"status", "APPROVED"},
                                  {"category", "UTILITY"},
                                  {"components", json::array()}});
  }
  auto client = client_for(*fake);
  infra::graph_request req;
  req.path = "/waba-1/message_templates";
  req.query = {{"fields", "name,language,status,category,components"}, {"limit", "2"}};
  req.access_token = token;
  std::vector<std::string> names;
  int pages = 0;
  while (true) {
    auto res = client->request_blocking(req);
    REQUIRE(res.ok());
    ++pages;
    auto body = json::parse(res.body);
    for (const auto& t : body["data"]) {
      names.push_back(t["name"]);
    }
    if (!body["paging"].contains("next")) {
      break;
    }
    req.path = body["paging"]["next"].get<std::string>();
    REQUIRE(req.path.starts_with(fake->base_url()));
    req.query.clear();
    REQUIRE(pages < 10);
  }
  CHECK(pages == 3);
  CHECK(names == std::vector<std::string>{"tmpl_1", "tmpl_2", "tmpl_3", "tmpl_4", "tmpl_5"});
  for (const auto& call : fake->calls()) {
    CHECK(call.headers.at("authorization") == "Bearer test-token");
    CHECK(call.param("fields") == "name,language,status,category,components");
  }
  CHECK(fake->connections_accepted() == 1);
}

TEST_CASE("media is looked up by id and downloaded from its absolute URL with the token",
          "[graph]") {
  auto fake = fake_with_phone();
  std::string bytes = "\x89PNG\r\n\x1a\n";
  bytes += std::string(1000, '\0');
  fake->add_media("media-42", "image/png", bytes);
  auto client = client_for(*fake);

  infra::graph_request lookup;
  lookup.path = "/media-42";
  lookup.access_token = token;
  auto meta = client->request_blocking(lookup);
  REQUIRE(meta.ok());
  auto info = json::parse(meta.body);
  CHECK(info["mime_type"] == "image/png");
  CHECK(info["file_size"] == bytes.size());
  CHECK(info["sha256"].get<std::string>().size() == 64);

  infra::graph_request download;
  download.path = info["url"].get<std::string>();
  download.access_token = token;
  auto file = client->request_blocking(download);
  REQUIRE(file.ok());
  CHECK(file.content_type == "image/png");
  CHECK(file.body == bytes);

  download.access_token.clear();
  auto refused = client->request_blocking(download);
  CHECK(refused.status == 401);

  // An answer beyond the size limit fails, not as a transport fault (retrying cannot help).
  download.access_token = token;
  download.max_body_bytes = 100;
  auto too_large = client->request_blocking(download);
  REQUIRE(too_large.error);
  CHECK_FALSE(too_large.error->transport);
  CHECK(too_large.error->type == "response_too_large");
  CHECK(domain::classify_graph_error(*too_large.error) == domain::graph_error_action::fail);
}

TEST_CASE("destroying the client completes the calls in flight at once", "[graph]") {
  auto fake = fake_with_phone();
  fake->script("", "*", test::scripted_response::delayed(5000ms));
  auto client = client_for(*fake);
  auto p = std::make_shared<std::promise<infra::graph_response>>();
  auto answer = p->get_future();
  client->request(send_text(), [p](infra::graph_response r) { p->set_value(std::move(r)); });
  REQUIRE(fake->wait_for_calls(1, 2000ms));
  auto started = std::chrono::steady_clock::now();
  client.reset();
  CHECK(seconds_since(started) < 1.0);
  REQUIRE(answer.wait_for(0s) == std::future_status::ready);
  auto res = answer.get();
  REQUIRE(res.error);
  CHECK(res.error->transport);
  CHECK(res.error->title == "graph client stopped");
}

TEST_CASE("unusable client options are refused with one clear line", "[graph]") {
  auto error_of = [](infra::graph_client_options o) {
    auto made = infra::graph_client::create(std::move(o));
    auto* e = std::get_if<std::string>(&made);
    return e != nullptr ? *e : std::string{};
  };
  infra::graph_client_options bad_url;
  bad_url.base_url = "ftp://graph.facebook.com";
  CHECK_FALSE(error_of(bad_url).empty());
  infra::graph_client_options bad_ca;
  bad_ca.ca_file = "/nonexistent/ca.pem";
  CHECK(error_of(bad_ca).find("/nonexistent/ca.pem") != std::string::npos);
  test::temp_dir dir;
  auto junk = dir.path() / "junk.pem";
  {
    std::ofstream{junk} << "not a certificate\n";
  }
  infra::graph_client_options junk_ca;
  junk_ca.ca_file = junk.string();
  CHECK_FALSE(error_of(junk_ca).empty());
  CHECK(error_of(infra::graph_client_options{}).empty());
}

TEST_CASE("TLS: an untrusted certificate is refused, the extra CA file makes it trusted",
          "[graph][tls]") {
  test::temp_dir dir;
  auto cert = test::make_test_certificate("localhost", dir.path());
  test::fake_graph::options fo;
  fo.tls = cert.identity;
  fo.public_host = "localhost";
  auto fake = fake_with_phone(fo);
  REQUIRE(fake->base_url().starts_with("https://localhost:"));

  infra::graph_client_options o;
  o.base_url = fake->base_url();
  {
    auto client = make_client(o);
    auto res = client->request_blocking(get_phone());
    REQUIRE(res.error);
    CHECK(res.error->transport);
    CHECK(res.error->title.find("TLS handshake with localhost:") != std::string::npos);
    CHECK(res.error->title.find("certificate") != std::string::npos);
    CHECK_FALSE(res.request_sent);
  }
  CHECK(fake->call_count() == 0);

  o.ca_file = cert.cert_file.string();
  auto client = make_client(o);
  auto res = client->request_blocking(get_phone());
  REQUIRE(res.ok());
  CHECK(json::parse(res.body)["verified_name"] == "Acme Support");
  // Kept-alive TLS connections are reused too.
  REQUIRE(client->request_blocking(send_text()).ok());
  CHECK(client->connections_opened() == 1);
  CHECK(fake->calls().at(0).headers.at("authorization") == "Bearer test-token");
}

TEST_CASE("TLS: a trusted certificate for another host name is refused", "[graph][tls]") {
  test::temp_dir dir;
  auto cert = test::make_test_certificate("other.example", dir.path());
  test::fake_graph::options fo;
  fo.tls = cert.identity;
  fo.public_host = "localhost";
  auto fake = fake_with_phone(fo);

  infra::graph_client_options o;
  o.ca_file = cert.cert_file.string();
  SECTION("by name") {
    o.base_url = "https://localhost:" + std::to_string(fake->port());
    auto client = make_client(o);
    auto res = client->request_blocking(get_phone());
    REQUIRE(res.error);
    CHECK(res.error->transport);
    CHECK(res.error->title.find("hostname mismatch") != std::string::npos);
  }
  SECTION("by address") {
    o.base_url = "https://127.0.0.1:" + std::to_string(fake->port());
    auto client = make_client(o);
    auto res = client->request_blocking(get_phone());
    REQUIRE(res.error);
    CHECK(res.error->transport);
    CHECK(res.error->title.find("IP address mismatch") != std::string::npos);
  }
  CHECK(fake->call_count() == 0);
}

TEST_CASE("TLS: a certificate for the address itself is accepted", "[graph][tls]") {
  test::temp_dir dir;
  auto cert = test::make_test_certificate("127.0.0.1", dir.path());
  test::fake_graph::options fo;
  fo.tls = cert.identity;
  auto fake = fake_with_phone(fo);
  infra::graph_client_options o;
  o.base_url = fake->base_url();
  o.ca_file = cert.cert_file.string();
  auto client = make_client(o);
  CHECK(client->request_blocking(get_phone()).ok());
}

// What an agent's send request becomes: checked fields, Meta's body, the retry schedule.
#include <catch2/catch.hpp>
#include <string>

#include "domain/outbound.hpp"

using namespace wachat;
using nlohmann::json;

namespace {

domain::outbound_request ok(const std::string& body) {
  auto r = domain::parse_outbound(body);
  if (auto* p = std::get_if<domain::request_problem>(&r)) {
    FAIL("refused: " << p->code << " " << p->message);
  }
  return std::get<domain::outbound_request>(r);
}

domain::request_problem refused(const std::string& body) {
  auto r = domain::parse_outbound(body);
  REQUIRE(std::holds_alternative<domain::request_problem>(r));
  return std::get<domain::request_problem>(r);
}

const std::string agent = R"("sender_id": "a1", "sender_name": "Ann")";

}  // namespace

TEST_CASE("a text send becomes Meta's text body, to the phone, naming our message id") {
  auto r = ok(R"({"type": "text", "text": "Hello 👋", )" + agent + R"(, "client_message_id": "c-1"})");
  CHECK(r.kind == domain::outbound_kind::text);
  CHECK(r.client_message_id == "c-1");
  CHECK(domain::needs_open_window(r));
  auto b = domain::graph_send_body(r, {"260971234567", "ZM.123"}, 42, std::nullopt);
  CHECK(b["messaging_product"] == "whatsapp");
  CHECK(b["to"] == "260971234567");
  CHECK_FALSE(b.contains("recipient"));  // the phone wins when both are known
  CHECK(b["type"] == "text");
  CHECK(b["text"]["body"] == "Hello 👋");
  CHECK(b["biz_opaque_callback_data"] == "42");
  CHECK_FALSE(b.contains("context"));
  CHECK(domain::stored_content(r) == "Hello 👋");
  CHECK(domain::stored_content_type(r) == "text");
}

TEST_CASE("a customer known only by BSUID is sent to as the recipient; a reply carries context") {
  auto r = ok(R"({"type": "text", "text": "hi", "reply_to": "wamid.X", )" + agent + "}");
  auto b = domain::graph_send_body(r, {std::nullopt, "US.13491208655302741918"}, 7, std::string{"wamid.X"});
  CHECK_FALSE(b.contains("to"));
  CHECK(b["recipient"] == "US.13491208655302741918");
  CHECK(b["context"]["message_id"] == "wamid.X");
}

TEST_CASE("image and document sends carry the link, caption and filename") {
  auto img = ok(R"({"type": "image", "url": "https://cdn.example/a.png", "caption": "look", )" + agent + "}");
  auto b = domain::graph_send_body(img, {"1", std::nullopt}, 1, std::nullopt);
  CHECK(b["image"] == json{{"link", "https://cdn.example/a.png"}, {"caption", "look"}});
  CHECK(domain::stored_content(img) == "look");
  auto doc = ok(R"({"type": "document", "url": "http://x.example/r.pdf", "filename": "r.pdf", )" + agent + "}");
  b = domain::graph_send_body(doc, {"1", std::nullopt}, 1, std::nullopt);
  CHECK(b["document"] == json{{"link", "http://x.example/r.pdf"}, {"filename", "r.pdf"}});
  CHECK(domain::stored_content_type(doc) == "document");
}

TEST_CASE("a template is allowed with the window closed; its language becomes Meta's object") {
  auto t = ok(R"({"type": "template", "template": {"name": "hello_world", "language": "en_US",
      "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ann"}]}]}, )" + agent + "}");
  CHECK_FALSE(domain::needs_open_window(t));
  auto b = domain::graph_send_body(t, {"1", std::nullopt}, 9, std::nullopt);
  CHECK(b["template"]["name"] == "hello_world");
  CHECK(b["template"]["language"] == json{{"code", "en_US"}});
  CHECK(b["template"]["components"][0]["type"] == "body");
  CHECK(domain::stored_content_type(t) == "whatsapp_template");
}

TEST_CASE("bad requests are refused with API.md's codes and a message naming the field") {
  CHECK(refused("{").code == "invalid_json");
  CHECK(refused("[1]").code == "invalid_json");
  CHECK(refused(R"({"type": "text", "text": "x"})").message.find("sender_id") != std::string::npos);
  CHECK(refused(R"({"type": "fax", )" + agent + "}").message.find("type") != std::string::npos);
  CHECK(refused(R"({"type": "text", "text": "", )" + agent + "}").code == "invalid_field");
  CHECK(refused(R"({"type": "text", "text": 5, )" + agent + "}").message.find("string") != std::string::npos);
  // A 100 KB text is over Meta's 4,096 characters.
  auto big = json{{"type", "text"}, {"text", std::string(100 * 1024, 'a')}, {"sender_id", "a"}, {"sender_name", "b"}};
  CHECK(refused(big.dump()).message.find("4096") != std::string::npos);
  // NUL cannot be stored or sent (PostgreSQL text and jsonb refuse it), wherever it is.
  CHECK(refused(R"({"type": "text", "text": "a\u0000b", )" + agent + "}").message.find("NUL") != std::string::npos);
  CHECK(refused(R"({"type": "text", "text": "a", "sender_id": "a\u0000", "sender_name": "b"})").code == "invalid_field");
  CHECK(refused(R"({"type": "template", "template": {"name": "x", "language": "en", "components": [{"type": "body",)"
                R"( "parameters": [{"type": "text", "text": "\u0000"}]}]}, )" + agent + "}")
            .message.find("NUL") != std::string::npos);
  // 4,096 characters of 4 bytes each are fine: characters, not bytes.
  std::string emoji;
  for (int i = 0; i < 4096; ++i) emoji += "😀";
  CHECK(ok(json{{"type", "text"}, {"text", emoji}, {"sender_id", "a"}, {"sender_name", "b"}}.dump()).text == emoji);
  for (const auto* url : {"ftp://x.example/a.png", "file:///etc/passwd", "javascript:alert(1)", "https://",
                          "https:///path", "https://a b.example/x", "x.example/a.png"}) {
    INFO(url);
    CHECK(refused(json{{"type", "image"}, {"url", url}, {"sender_id", "a"}, {"sender_name", "b"}}.dump())
              .message.find("http") != std::string::npos);
  }
  CHECK(refused(R"({"type": "document", "url": "https://x.example/a", )" + agent + "}").message.find("filename") !=
        std::string::npos);
  CHECK(refused(R"({"type": "template", "template": {"name": "x"}, )" + agent + "}").message.find("language") !=
        std::string::npos);
  CHECK(refused(R"({"type": "reaction", "message_id": "5", "emoji": "👍", "reply_to": "6", )" + agent + "}").code ==
        "invalid_field");
  CHECK(refused(R"({"type": "reaction", "message_id": "5", )" + agent + "}").message.find("emoji") !=
        std::string::npos);
}

TEST_CASE("the fingerprint tells the same request from a different one, whatever the key order") {
  auto a = ok(R"({"type": "text", "text": "hi", "sender_id": "a1", "sender_name": "Ann", "client_message_id": "c"})");
  auto b = ok(R"({"client_message_id": "c", "sender_name": "Ann", "sender_id": "a1", "text": "hi", "type": "text"})");
  auto c = ok(R"({"type": "text", "text": "hi!", "sender_id": "a1", "sender_name": "Ann", "client_message_id": "c"})");
  CHECK(a.fingerprint == b.fingerprint);
  CHECK(a.fingerprint != c.fingerprint);
}

TEST_CASE("retries back off exponentially with jitter, throttling starts higher, and the wait is capped") {
  using domain::graph_error_action;
  using std::chrono::milliseconds;
  CHECK(domain::retry_delay(1, graph_error_action::retry_transient, 0.0) == milliseconds(500));
  CHECK(domain::retry_delay(1, graph_error_action::retry_transient, 0.999) < milliseconds(1000));
  CHECK(domain::retry_delay(3, graph_error_action::retry_transient, 0.0) == milliseconds(2000));
  CHECK(domain::retry_delay(1, graph_error_action::retry_throttled, 0.0) == milliseconds(2000));
  CHECK(domain::retry_delay(50, graph_error_action::retry_transient, 0.999) <= milliseconds(300000));
  CHECK(domain::retry_delay(50, graph_error_action::retry_transient, 0.0) == milliseconds(150000));
}

TEST_CASE("the window allows free-form sends only while its expiry is in the future") {
  CHECK(domain::window_open(2000, 1999));
  CHECK_FALSE(domain::window_open(2000, 2000));
  CHECK_FALSE(domain::window_open(std::nullopt, 0));
}

TEST_CASE("a failed attempt is retried, given up or held in doubt by Meta's code, never by its text") {
  using K = domain::failed_attempt_decision::kind;
  auto meta = [](int code, int http) {
    domain::graph_error e;
    e.code = code;
    e.http_status = http;
    e.title = "whatever Meta writes";
    return e;
  };
  auto d = domain::decide_failed_attempt(meta(131000, 500), true, 1, 0.0);
  CHECK(d.what == K::retry);
  CHECK(d.delay == std::chrono::milliseconds(500));
  d = domain::decide_failed_attempt(meta(130429, 429), true, 2, 0.0);
  CHECK(d.what == K::retry);
  CHECK(d.delay == std::chrono::milliseconds(4000));
  d = domain::decide_failed_attempt(meta(131026, 400), true, 1, 0.0);
  CHECK(d.what == K::give_up);
  CHECK_FALSE(d.retryable);
  d = domain::decide_failed_attempt(meta(190, 401), true, 1, 0.0);
  CHECK(d.what == K::give_up);
  CHECK(d.retryable);
  CHECK(d.action == domain::graph_error_action::credentials_broken);
  d = domain::decide_failed_attempt(meta(1, 500), true, domain::max_send_attempts, 0.0);
  CHECK(d.what == K::give_up);
  CHECK(d.retryable);
  domain::graph_error refused;
  refused.transport = true;
  refused.title = "connection refused";
  CHECK(domain::decide_failed_attempt(refused, false, 1, 0.0).what == K::retry);
  CHECK(domain::decide_failed_attempt(refused, true, 1, 0.0).what == K::doubt);
}

TEST_CASE("a send is decided: the same client_message_id first, then a recipient, then the window") {
  using V = domain::send_verdict;
  auto text = ok(R"({"type": "text", "text": "hi", "sender_id": "a", "sender_name": "b", "client_message_id": "c"})");
  auto tmpl = ok(R"({"type": "template", "template": {"name": "t", "language": "en"}, "sender_id": "a", "sender_name": "b"})");
  const std::int64_t now = 1'800'000'000;
  CHECK(domain::decide_send(text, std::nullopt, true, now + 10, now) == V::go);
  CHECK(domain::decide_send(text, std::nullopt, true, now - 1, now) == V::window_closed);
  CHECK(domain::decide_send(text, std::nullopt, true, std::nullopt, now) == V::window_closed);
  CHECK(domain::decide_send(tmpl, std::nullopt, true, std::nullopt, now) == V::go);
  CHECK(domain::decide_send(text, std::nullopt, false, now + 10, now) == V::no_recipient);
  // A replay gets its first outcome even once the window has closed.
  CHECK(domain::decide_send(text, text.fingerprint, true, now - 1, now) == V::replay);
  CHECK(domain::decide_send(text, std::string{"{}"}, true, now + 10, now) == V::idempotency_conflict);
}

TEST_CASE("a retry by hand is only for a given-up send, and keeps the window rule") {
  using V = domain::retry_verdict;
  const std::int64_t now = 1'800'000'000;
  CHECK(domain::decide_retry(false, false, true, now + 10, now) == V::invalid_state);
  CHECK(domain::decide_retry(true, false, true, now + 10, now) == V::go);
  CHECK(domain::decide_retry(true, false, true, now - 10, now) == V::window_closed);
  CHECK(domain::decide_retry(true, true, true, now - 10, now) == V::go);
  CHECK(domain::decide_retry(true, false, false, now + 10, now) == V::no_recipient);
}

TEST_CASE("a MARKETING template to a customer who stopped marketing messages is refused; others are not") {
  const std::int64_t now = 1'800'000'000;
  auto promo = ok(R"({"type": "template", "template": {"name": "promo", "language": "en"}, "sender_id": "a", "sender_name": "b"})");
  promo.template_category = "MARKETING";
  auto utility = promo;
  utility.template_category = "UTILITY";
  CHECK(domain::decide_send(promo, std::nullopt, true, std::nullopt, now, true) == domain::send_verdict::recipient_opted_out);
  CHECK(domain::decide_send(promo, std::nullopt, true, std::nullopt, now, false) == domain::send_verdict::go);
  CHECK(domain::decide_send(utility, std::nullopt, true, std::nullopt, now, true) == domain::send_verdict::go);
}

TEST_CASE("an image or document names exactly one of a link and an uploaded file") {
  auto img = ok(R"({"type": "image", "media_id": "chat/acme/x_a.jpg", "caption": "look", )" + agent + "}");
  CHECK(img.media_id == "chat/acme/x_a.jpg");
  CHECK(img.url.empty());
  auto b = domain::graph_send_body(img, {"1", std::nullopt}, 1, std::nullopt);
  // The sender puts Meta's id in at the attempt, guided by the marker.
  CHECK(b["image"] == json{{"id", ""}, {"caption", "look"}});
  CHECK(b[domain::upload_marker] == "chat/acme/x_a.jpg");
  auto doc = ok(R"({"type": "document", "media_id": "chat/acme/x_r.pdf", )" + agent + "}");
  CHECK(doc.filename.empty());  // the upload's own name is used
  CHECK(refused(R"({"type": "image", )" + agent + "}").code == "invalid_field");
  CHECK(refused(R"({"type": "image", "url": "https://x.example/a.png", "media_id": "k", )" + agent + "}").code ==
        "invalid_field");
  CHECK(refused(R"({"type": "document", "url": "https://x.example/a.pdf", )" + agent + "}").code == "invalid_field");
  auto other = ok(R"({"type": "image", "media_id": "chat/acme/y_b.jpg", "caption": "look", )" + agent + "}");
  CHECK(other.fingerprint != img.fingerprint);
}

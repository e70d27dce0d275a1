#include <catch2/catch.hpp>

#include "domain/graph_error_policy.hpp"

using namespace wachat::domain;

namespace {

graph_error meta_error(int code, int http_status = 400) {
  graph_error e;
  e.code = code;
  e.http_status = http_status;
  return e;
}

}  // namespace

TEST_CASE("Meta's error object is read field by field") {
  auto e = parse_graph_error(400, R"({"error":{
      "message":"(#131026) Message Undeliverable.","type":"OAuthException","code":131026,
      "error_subcode":2494010,
      "error_data":{"messaging_product":"whatsapp","details":"Message failed to send because the user is not on WhatsApp."},
      "fbtrace_id":"AbCdEf123"}})");
  CHECK(e.code == 131026);
  CHECK(e.subcode == 2494010);
  CHECK(e.type == "OAuthException");
  CHECK(e.title == "(#131026) Message Undeliverable.");
  CHECK(e.details == "Message failed to send because the user is not on WhatsApp.");
  CHECK(e.fbtrace_id == "AbCdEf123");
  CHECK(e.http_status == 400);
  CHECK_FALSE(e.transport);
}

TEST_CASE("fields arrive in any order and unknown ones are ignored") {
  auto e = parse_graph_error(
      400, R"({"other":[1,{"x":2}],"error":{"fbtrace_id":"T","is_transient":true,"code":100,"message":"(#100) Invalid parameter"}})");
  CHECK(e.code == 100);
  CHECK(e.title == "(#100) Invalid parameter");
  CHECK(e.fbtrace_id == "T");
}

TEST_CASE("the user-facing title and message fill in when message and details are missing") {
  auto e = parse_graph_error(
      400, R"({"error":{"code":132001,"error_user_title":"Template name does not exist","error_user_msg":"hello_world (en_US) does not exist"}})");
  CHECK(e.title == "Template name does not exist");
  CHECK(e.details == "hello_world (en_US) does not exist");
}

TEST_CASE("error_data given as a string is taken as the details") {
  auto e = parse_graph_error(400, R"({"error":{"code":100,"message":"m","error_data":"some detail"}})");
  CHECK(e.details == "some detail");
}

TEST_CASE("a body that is not Meta's error shape is titled after the HTTP status") {
  for (const char* body : {"", "<html>Bad Gateway</html>", "{\"data\":[]}", "{\"error\":\"x\"}",
                           "{\"error\":{\"code\":4,\"message\":\"trunc"}) {
    auto e = parse_graph_error(502, body);
    CHECK(e.code == 0);
    CHECK(e.http_status == 502);
    CHECK(e.title == "HTTP 502 from the Graph API");
  }
}

TEST_CASE("a code that is not an integer reads as 0") {
  auto e = parse_graph_error(400, R"({"error":{"code":"131026","message":"m"}})");
  CHECK(e.code == 0);
  CHECK(e.title == "m");
}

TEST_CASE("throughput and account rate limits are retried after slowing down") {
  for (int code : {130429, 4, 80007}) {
    CHECK(classify_graph_error(meta_error(code)) == graph_error_action::retry_throttled);
  }
  CHECK(classify_graph_error(meta_error(0, 429)) == graph_error_action::retry_throttled);
}

TEST_CASE("the pair rate limit is told apart: only that recipient backs off") {
  CHECK(classify_graph_error(meta_error(131056)) == graph_error_action::retry_pair_limit);
  CHECK(is_retryable(graph_error_action::retry_pair_limit));
}

TEST_CASE("transient and maintenance errors, transport failures and 5xx are retried") {
  for (int code : {1, 2, 131000, 131057}) {
    CHECK(classify_graph_error(meta_error(code, 500)) == graph_error_action::retry_transient);
  }
  graph_error transport;
  transport.transport = true;
  transport.title = "connecting to graph.facebook.com:443 failed: Connection refused";
  CHECK(classify_graph_error(transport) == graph_error_action::retry_transient);
  CHECK(classify_graph_error(meta_error(0, 502)) == graph_error_action::retry_transient);
  CHECK(classify_graph_error(meta_error(0, 503)) == graph_error_action::retry_transient);
  CHECK(classify_graph_error(meta_error(99999, 500)) == graph_error_action::retry_transient);
}

TEST_CASE("request and recipient errors fail for good") {
  for (int code : {131026, 131051, 131052, 131053, 100, 131008, 131009, 132000, 132012, 131050}) {
    INFO("code " << code);
    CHECK(classify_graph_error(meta_error(code)) == graph_error_action::fail);
  }
  CHECK(classify_graph_error(meta_error(99999, 400)) == graph_error_action::fail);
  CHECK_FALSE(is_retryable(graph_error_action::fail));
}

TEST_CASE("a template missing, paused or disabled fails and asks for a template refresh") {
  for (int code : {132001, 132015, 132016}) {
    CHECK(classify_graph_error(meta_error(code)) == graph_error_action::fail_template_stale);
  }
  CHECK_FALSE(is_retryable(graph_error_action::fail_template_stale));
}

TEST_CASE("131047 fails and closes the window") {
  CHECK(classify_graph_error(meta_error(131047)) == graph_error_action::fail_window_closed);
  CHECK_FALSE(is_retryable(graph_error_action::fail_window_closed));
}

TEST_CASE("spam and ecosystem limits are not retried soon") {
  CHECK(classify_graph_error(meta_error(131048)) == graph_error_action::hold_off);
  CHECK(classify_graph_error(meta_error(131049)) == graph_error_action::hold_off);
  CHECK_FALSE(is_retryable(graph_error_action::hold_off));
}

TEST_CASE("code 190 or HTTP 401 means the credentials are broken") {
  CHECK(classify_graph_error(meta_error(190, 401)) == graph_error_action::credentials_broken);
  CHECK(classify_graph_error(meta_error(190, 400)) == graph_error_action::credentials_broken);
  CHECK(classify_graph_error(meta_error(0, 401)) == graph_error_action::credentials_broken);
  CHECK_FALSE(is_retryable(graph_error_action::credentials_broken));
}

TEST_CASE("the code decides before the HTTP status") {
  // A 5xx carrying a permanent code is still permanent; a 400 carrying a transient one retries.
  CHECK(classify_graph_error(meta_error(131026, 500)) == graph_error_action::fail);
  CHECK(classify_graph_error(meta_error(131000, 400)) == graph_error_action::retry_transient);
}

TEST_CASE("every action has a stable name") {
  CHECK(to_string(graph_error_action::retry_pair_limit) == "retry_pair_limit");
  CHECK(to_string(graph_error_action::credentials_broken) == "credentials_broken");
  CHECK(to_string(graph_error_action::fail_template_stale) == "fail_template_stale");
}

TEST_CASE("a refused token is noted so that the site can tell it from any other failed check") {
  wachat::domain::graph_error e;
  e.code = 190;
  e.title = "Session has expired";
  auto note = wachat::domain::credentials_refused_note(e);
  CHECK(note == "WhatsApp refused the access token (190): Session has expired");
  CHECK(wachat::domain::says_credentials_refused(note));
  CHECK_FALSE(wachat::domain::says_credentials_refused("connection refused"));
}

#include <catch2/catch.hpp>

#include <variant>

#include "domain/inbound_units.hpp"
#include "domain/webhook_parser.hpp"

using namespace wachat::domain;

namespace {

webhook_delivery parse_ok(std::string_view body, const webhook_parse_limits& limits = {}) {
  auto result = parse_webhook(body, limits);
  REQUIRE(std::holds_alternative<webhook_delivery>(result));
  return std::get<webhook_delivery>(std::move(result));
}

// Two entries; the first has two changes (two customers on one number, then statuses), the
// second a change for another phone number id.
const char* const two_entries = R"({"object":"whatsapp_business_account","entry":[
 {"id":"1","changes":[
   {"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"111"},
     "contacts":[{"profile":{"name":"Ann"},"wa_id":"201"},{"profile":{"name":"Bob"},"wa_id":"202"}],
     "messages":[{"from":"201","id":"wamid.1","timestamp":"1700000000","type":"text","text":{"body":"hi"}},
                 {"from":"202","id":"wamid.2","timestamp":"1700000001","type":"text","text":{"body":"yo"}}]}},
   {"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"111"},
     "statuses":[{"id":"wamid.out","status":"read","timestamp":"1700000002","recipient_id":"201"}]}}]},
 {"id":"2","changes":[
   {"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"2","phone_number_id":"222"},
     "messages":[{"from":"301","id":"wamid.3","timestamp":"1700000003","type":"text","text":{"body":"x"}}]}},
   {"field":"message_template_status_update","value":{"event":"APPROVED","message_template_id":1}}]}]})";

}  // namespace

TEST_CASE("split_delivery yields every message and status of every entry and change, in order") {
  auto units = split_delivery(parse_ok(two_entries));
  REQUIRE(units.size() == 4);
  CHECK(units[0].what == inbound_unit::kind::message);
  CHECK(units[0].message.wamid == "wamid.1");
  CHECK(units[0].visitor_wa_id == "201");
  CHECK(units[0].profile_name == "Ann");
  CHECK(units[0].phone_number_id == "111");
  CHECK(units[1].visitor_wa_id == "202");
  CHECK(units[1].profile_name == "Bob");
  CHECK(units[2].what == inbound_unit::kind::status);
  CHECK(units[2].status.wamid == "wamid.out");
  CHECK(units[2].visitor_wa_id == "201");  // same actor as Ann's messages: kept in order
  CHECK(units[3].phone_number_id == "222");
  CHECK(units[3].profile_name.empty());
}

TEST_CASE("event_progress: complete only when every unit answered; verdict by precedence") {
  event_progress p;
  p.units = 3;
  unit_outcome ok;
  ok.stored = true;
  p.record(ok);
  CHECK_FALSE(p.complete());
  p.record(ok);
  p.record(ok);
  REQUIRE(p.complete());
  CHECK(p.verdict().status == "processed");
  CHECK_FALSE(p.verdict().error);

  SECTION("a failed unit fails the row with its reason") {
    event_progress q;
    q.units = 2;
    q.record(ok);
    unit_outcome bad;
    bad.error = "value too long";
    q.record(bad);
    CHECK(q.verdict().status == "failed");
    CHECK(q.verdict().error->find("value too long") != std::string::npos);
  }
  SECTION("a passing failure sends the row back to pending, even next to a hard failure") {
    event_progress q;
    q.units = 2;
    unit_outcome bad;
    bad.error = "boom";
    unit_outcome passing;
    passing.retryable = true;
    q.record(bad);
    q.record(passing);
    CHECK(q.verdict().status == "pending");
  }
  SECTION("units no site takes make it unroutable, naming their phone number ids once each") {
    event_progress q;
    q.units = 4;
    unit_outcome nowhere;
    nowhere.unroutable = "999";
    q.record(nowhere);
    q.record(ok);
    nowhere.unroutable = "888";
    q.record(nowhere);
    CHECK_FALSE(q.complete());
    q.record(nowhere);
    REQUIRE(q.complete());
    CHECK(q.verdict().status == "unroutable");
    CHECK(*q.verdict().error == "no site has phone_number_id 888, 999");
  }
  SECTION("skipped parts leave the row partial, not processed, and name the first") {
    event_progress q;
    q.problems.push_back({"entry[0].changes[0].messages[1]", "no id"});
    q.problems.push_back({"entry[0].changes[0].contacts[0]", "no identifier"});
    CHECK(q.verdict().status == "partial");
    CHECK(q.verdict().error->find("2 item(s) skipped; first: entry[0].changes[0].messages[1]: no id") !=
          std::string::npos);
  }
  SECTION("a unit that failed for good outranks skipped parts") {
    event_progress q;
    q.units = 1;
    q.problems.push_back({"entry[0]", "not an object"});
    unit_outcome bad;
    bad.error = "constraint";
    q.record(bad);
    CHECK(q.verdict().status == "failed");
  }
}

TEST_CASE("errors Meta reports in value.errors[] are kept on the processed row") {
  auto delivery = parse_ok(R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[
    {"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"111"},
     "errors":[{"code":131051,"title":"Message type unknown","message":"Message type unknown","error_data":{"details":"not supported"}}]}},
    {"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"111"},
     "errors":[{"code":131000,"title":"Something went wrong"}]}}]}]})");
  event_progress p;
  p.meta_errors = delivery_errors(delivery);
  REQUIRE(p.meta_errors.size() == 2);
  auto v = p.verdict();
  CHECK(v.status == "processed");
  REQUIRE(v.error);
  CHECK(v.error->find("131051 Message type unknown (not supported)") != std::string::npos);
  CHECK(v.error->find("131000 Something went wrong") != std::string::npos);
}

TEST_CASE("a delivery cut at the item limit is refused whole; one within it is not") {
  std::string messages;
  for (int i = 0; i < 10; ++i) {
    messages += (i == 0 ? "" : ",");
    messages += R"({"from":"1","id":"wamid.)" + std::to_string(i) + R"(","type":"text","text":{"body":"x"}})";
  }
  auto body = R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"111"},"messages":[)" +
              messages + "]}}]}]}";
  webhook_parse_limits small;
  small.max_items = 5;
  auto cut = parse_ok(body, small);
  auto reason = refusal_reason(cut, small.max_items);
  REQUIRE(reason);
  CHECK(*reason == "more than 5 items in one delivery (6 over the limit); not processed, the body is kept");
  CHECK_FALSE(refusal_reason(parse_ok(body), webhook_parse_limits{}.max_items));
}

TEST_CASE("only a failed status carrying Meta's 131047 closes the window") {
  message_status s;
  s.status = "failed";
  s.errors.push_back({131026, "Message undeliverable", "", ""});
  CHECK_FALSE(closes_window(s));
  s.errors.push_back({131047, "Re-engagement message", "", ""});
  CHECK(closes_window(s));  // any of its errors, not only the first
  s.status = "delivered";
  CHECK_FALSE(closes_window(s));
}

TEST_CASE("user_preferences items become units for their customer; stop and resume set the opt-out") {
  auto d = parse_ok(R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"user_preferences",
    "value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"PN"},
    "contacts":[{"profile":{"name":"Ann"},"wa_id":"16505551234"}],
    "user_preferences":[{"wa_id":"16505551234","detail":"User requested to stop marketing messages",
      "category":"marketing_messages","value":"stop","timestamp":1731705721},
      {"user_id":"US.1","category":"marketing_messages","value":"resume","timestamp":1731705722},
      {"wa_id":"1","category":"something_else","value":"stop"}]}}]}]})");
  auto units = split_delivery(d);
  REQUIRE(units.size() == 3);
  CHECK(units[0].what == inbound_unit::kind::preference);
  CHECK(units[0].phone_number_id == "PN");
  CHECK(units[0].visitor_wa_id == "16505551234");
  CHECK(preference_opt_out(units[0].preference) == true);
  CHECK(units[1].visitor_wa_id == "US.1");
  CHECK(preference_opt_out(units[1].preference) == false);
  CHECK_FALSE(preference_opt_out(units[2].preference).has_value());
}

TEST_CASE("a text that is one of the site's keywords, trimmed and in any case, opts out or back in") {
  std::vector<std::string> out{"STOP", "Unsubscribe"}, in{"START"};
  CHECK(keyword_opt_out("stop", out, in) == true);
  CHECK(keyword_opt_out("  UnSubScribe \n", out, in) == true);
  CHECK(keyword_opt_out("Start", out, in) == false);
  CHECK_FALSE(keyword_opt_out("please stop sending me these", out, in).has_value());
  CHECK_FALSE(keyword_opt_out("", out, in).has_value());
  CHECK_FALSE(keyword_opt_out("stop", {}, {}).has_value());
}

TEST_CASE("template webhooks name the WABAs whose templates changed, each once") {
  auto d = parse_ok(R"({"object":"whatsapp_business_account","entry":[
    {"id":"W1","changes":[{"field":"message_template_status_update","value":{"event":"APPROVED"}},
                          {"field":"template_category_update","value":{"new_category":"MARKETING"}}]},
    {"id":"W2","changes":[{"field":"message_template_quality_update","value":{"new_quality_score":"RED"}},
                          {"field":"account_update","value":{}}]}]})");
  CHECK(template_changes(d) == std::vector<std::string>{"W1", "W2"});
  CHECK(split_delivery(d).empty());
}

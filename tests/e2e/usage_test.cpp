// GET /api/sites/{site}/whatsapp/usage (API.md §3.6): counted from the `pricing` objects of
// Meta's status webhooks, each message once.
#include <catch2/catch.hpp>

#include <ctime>

#include "domain/usage.hpp"
#include "infra/chat_views.hpp"
#include "support/wachat_fixture.hpp"

using namespace wachat;
using nlohmann::json;

namespace {

json status(const std::string& wamid, const std::string& st, std::int64_t ts, const std::string& category,
            const std::string& type, bool billable) {
  return {{"id", wamid},
          {"status", st},
          {"timestamp", std::to_string(ts)},
          {"recipient_id", "16505551234"},
          {"pricing", {{"billable", billable}, {"pricing_model", "PMP"}, {"type", type}, {"category", category}}}};
}

std::string statuses_webhook(const json& list) {
  return test::envelope({{"messaging_product", "whatsapp"}, {"metadata", test::metadata("1065400001")}, {"statuses", list}});
}

}  // namespace

TEST_CASE("usage counts each priced message once, by Meta's category, type and billable flag, within the period") {
  test::wachat_fixture f;
  f.make_site("acme", "1065400001");
  const std::int64_t now = std::time(nullptr);
  const std::int64_t old = now - 40 * 86400;
  auto body = statuses_webhook(json::array({
      status("wamid.M1", "sent", now - 100, "marketing", "regular", true),
      status("wamid.M1", "delivered", now - 90, "marketing", "regular", true),  // same message again
      status("wamid.M2", "sent", now - 80, "marketing", "regular", true),
      status("wamid.U1", "sent", now - 70, "utility", "free_customer_service", false),
      status("wamid.OLD", "sent", old, "authentication", "regular", true),  // before the default period
  }));
  REQUIRE(f.post_webhook(body).status == 200);
  REQUIRE(f.post_webhook(body).status == 200);  // Meta delivers it twice
  // A status without pricing counts nothing.
  REQUIRE(f.post_webhook(statuses_webhook(json::array({{{"id", "wamid.R1"}, {"status", "read"},
                                                        {"timestamp", std::to_string(now)},
                                                        {"recipient_id", "16505551234"}}})))
              .status == 200);

  json usage;
  REQUIRE(test::eventually([&] {
    usage = f.call_json("GET", "/api/sites/acme/whatsapp/usage");
    return usage["by_category"].size() == 2;
  }));
  CHECK(usage["by_category"] == json::array({
                                   {{"category", "marketing"}, {"pricing_type", "regular"}, {"billable", true}, {"messages", 2}},
                                   {{"category", "utility"}, {"pricing_type", "free_customer_service"}, {"billable", false}, {"messages", 1}},
                               }));
  CHECK(*domain::parse_rfc3339(usage["to"].get<std::string>()) >= now);

  // A period that holds only the old one.
  auto from = infra::rfc3339(old - 10), to = infra::rfc3339(old + 10);
  auto past = f.call_json("GET", "/api/sites/acme/whatsapp/usage?from=" + from + "&to=" + to);
  CHECK(past["from"] == from);
  CHECK(past["to"] == to);
  CHECK(past["by_category"] == json::array({{{"category", "authentication"}, {"pricing_type", "regular"},
                                             {"billable", true}, {"messages", 1}}}));

  // Bad periods, other sites, unknown sites.
  CHECK(f.call("GET", "/api/sites/acme/whatsapp/usage?from=yesterday").status == 422);
  CHECK(f.call("GET", "/api/sites/acme/whatsapp/usage?from=" + to + "&to=" + from).status == 422);
  CHECK(f.call("GET", "/api/sites/nope/whatsapp/usage").status == 404);
  f.call_json("POST", "/api/sites", {{"id", "other"}}, 201);
  CHECK(f.call("GET", "/api/sites/acme/whatsapp/usage", "", f.site_token("other")).status == 404);
  CHECK(f.call_json("GET", "/api/sites/other/whatsapp/usage")["by_category"].empty());
  CHECK(f.call("GET", "/api/sites/acme/whatsapp/usage", "", "").status == 401);
}

#include <catch2/catch.hpp>

#include "domain/webhook_body.hpp"

using wachat::domain::classify_webhook_body;

TEST_CASE("JSON objects are processable") {
  CHECK(classify_webhook_body(R"({"object":"whatsapp_business_account","entry":[]})").processable);
}

TEST_CASE("everything else is kept with a reason") {
  auto empty = classify_webhook_body("");
  CHECK_FALSE(empty.processable);
  CHECK(empty.reason == "empty body");
  auto text = classify_webhook_body("hello");
  CHECK_FALSE(text.processable);
  CHECK(text.reason.rfind("not valid JSON", 0) == 0);
  CHECK(classify_webhook_body("[1]").reason == "JSON body is not an object");
  CHECK_FALSE(classify_webhook_body("{\"a\":\"\xff\"}").processable);
  CHECK_FALSE(classify_webhook_body("{} trailing").processable);
}

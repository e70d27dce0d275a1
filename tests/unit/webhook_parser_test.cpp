#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <variant>

#include "domain/inbound_units.hpp"
#include "domain/webhook_parser.hpp"

using namespace wachat::domain;

namespace {

webhook_delivery parse_ok(std::string_view body, const webhook_parse_limits& limits = {}) {
  auto result = parse_webhook(body, limits);
  if (auto* error = std::get_if<webhook_parse_error>(&result)) {
    FAIL("parse failed: " << error->reason);
  }
  return std::get<webhook_delivery>(std::move(result));
}

std::string parse_error(std::string_view body) {
  auto result = parse_webhook(body);
  if (std::holds_alternative<webhook_delivery>(result)) {
    FAIL("expected a parse error for: " << body.substr(0, 200));
  }
  return std::get<webhook_parse_error>(result).reason;
}

// One entry, one `messages` change, with `value_members` spliced into the value object.
std::string envelope(std::string_view value_members) {
  return std::string{R"({"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"})"} +
         (value_members.empty() ? "" : ",") + std::string{value_members} + "}}]}]}";
}

std::string one_message(std::string_view type_members) {
  return envelope(
      std::string{R"("contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}],"messages":[{"from":"16505551234","id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=","timestamp":"1749416383",)"} +
      std::string{type_members} + "}]");
}

inbound_message only_message(const webhook_delivery& delivery) {
  REQUIRE(delivery.changes.size() == 1);
  REQUIRE(delivery.changes[0].messages.size() == 1);
  return delivery.changes[0].messages[0];
}

message_status only_status(const webhook_delivery& delivery) {
  REQUIRE(delivery.changes.size() == 1);
  REQUIRE(delivery.changes[0].statuses.size() == 1);
  return delivery.changes[0].statuses[0];
}

bool has_problem(const webhook_delivery& delivery, std::string_view where, std::string_view reason) {
  for (const auto& problem : delivery.problems) {
    if (problem.where == where && problem.reason.find(reason) != std::string::npos) {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("a text message carries envelope, contact, sender, Meta's timestamp and body") {
  auto delivery = parse_ok(one_message(R"("type":"text","text":{"body":"Hola, ¿tienen envío? 👍"})"));
  CHECK(delivery.object == "whatsapp_business_account");
  CHECK(delivery.problems.empty());
  REQUIRE(delivery.changes.size() == 1);
  const auto& change = delivery.changes[0];
  CHECK(change.field == "messages");
  CHECK(change.entry_id == "102290129340398");
  CHECK(change.messaging_product == "whatsapp");
  CHECK(change.phone_number_id == "106540352242922");
  CHECK(change.display_phone_number == "15550783881");
  CHECK(change.raw_value.empty());
  REQUIRE(change.contacts.size() == 1);
  CHECK(change.contacts[0].wa_id == "16505551234");
  CHECK(change.contacts[0].profile_name == "Sheena Nelson");
  CHECK(profile_name_for(change, "16505551234") == "Sheena Nelson");
  CHECK(profile_name_for(change, "15550000000").empty());

  auto message = only_message(delivery);
  CHECK(message.wamid == "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=");
  CHECK(message.from == "16505551234");
  CHECK(message.timestamp == 1749416383);
  CHECK(message.type == "text");
  CHECK(message.content_type == "text");
  CHECK(message.content == "Hola, \xc2\xbftienen env\xc3\xado? \xf0\x9f\x91\x8d");
  CHECK(message.context.id.empty());
  CHECK_FALSE(message.media);
  CHECK_FALSE(message.reaction);
  CHECK_FALSE(message.reply);
  CHECK(message.errors.empty());
}

TEST_CASE("an image keeps its caption as content and its media fields") {
  auto message = only_message(parse_ok(one_message(
      R"("type":"image","image":{"caption":"the broken part","mime_type":"image/jpeg","sha256":"8eXdPmnU6c0Hx+ZWxMGj1yq8zQ3RKjS0zLp7WrHFJdY=","id":"1003383421387256"})")));
  CHECK(message.content_type == "image");
  CHECK(message.content == "the broken part");
  REQUIRE(message.media);
  CHECK(message.media->id == "1003383421387256");
  CHECK(message.media->mime_type == "image/jpeg");
  CHECK(message.media->sha256 == "8eXdPmnU6c0Hx+ZWxMGj1yq8zQ3RKjS0zLp7WrHFJdY=");
  CHECK(message.media->filename.empty());
  CHECK_FALSE(message.media->voice);
  CHECK_FALSE(message.media->animated);
}

TEST_CASE("a document keeps filename and caption") {
  auto message = only_message(parse_ok(one_message(
      R"("type":"document","document":{"caption":"invoice","filename":"INV-2025-001.pdf","mime_type":"application/pdf","sha256":"abc=","id":"2222"})")));
  CHECK(message.content_type == "document");
  CHECK(message.content == "invoice");
  REQUIRE(message.media);
  CHECK(message.media->id == "2222");
  CHECK(message.media->filename == "INV-2025-001.pdf");
  CHECK(message.media->mime_type == "application/pdf");
}

TEST_CASE("a voice note is audio with the voice flag and no caption") {
  auto message = only_message(parse_ok(one_message(
      R"("type":"audio","audio":{"mime_type":"audio/ogg; codecs=opus","sha256":"s=","id":"3333","voice":true})")));
  CHECK(message.content_type == "audio");
  CHECK(message.content.empty());
  REQUIRE(message.media);
  CHECK(message.media->id == "3333");
  CHECK(message.media->mime_type == "audio/ogg; codecs=opus");
  CHECK(message.media->voice);
}

TEST_CASE("video and animated sticker are media too") {
  auto video = only_message(parse_ok(one_message(
      R"("type":"video","video":{"caption":"look","mime_type":"video/mp4","sha256":"v=","id":"4444"})")));
  CHECK(video.content_type == "video");
  CHECK(video.content == "look");
  REQUIRE(video.media);
  CHECK(video.media->id == "4444");

  auto sticker = only_message(parse_ok(one_message(
      R"("type":"sticker","sticker":{"mime_type":"image/webp","sha256":"w=","id":"5555","animated":true})")));
  CHECK(sticker.content_type == "sticker");
  REQUIRE(sticker.media);
  CHECK(sticker.media->id == "5555");
  CHECK(sticker.media->animated);
}

TEST_CASE("a location becomes JSON with latitude, longitude, name and address") {
  auto message = only_message(parse_ok(one_message(
      R"("type":"location","location":{"address":"1 Hacker Way, Menlo Park, CA 94025","latitude":37.483307,"longitude":-122.148981,"name":"Main office","url":"https://example.com"})")));
  CHECK(message.content_type == "location");
  auto json = nlohmann::json::parse(message.content);
  CHECK(json.size() == 4);
  CHECK(json["latitude"].get<double>() == Approx(37.483307));
  CHECK(json["longitude"].get<double>() == Approx(-122.148981));
  CHECK(json["name"] == "Main office");
  CHECK(json["address"] == "1 Hacker Way, Menlo Park, CA 94025");
}

TEST_CASE("a shared pin without name or address has them null") {
  auto message = only_message(
      parse_ok(one_message(R"("type":"location","location":{"latitude":-33,"longitude":"151.2"})")));
  auto json = nlohmann::json::parse(message.content);
  CHECK(json["latitude"].get<double>() == Approx(-33.0));
  CHECK(json["longitude"].get<double>() == Approx(151.2));
  CHECK(json["name"].is_null());
  CHECK(json["address"].is_null());
}

TEST_CASE("shared contacts become a JSON array") {
  auto message = only_message(parse_ok(one_message(
      R"("type":"contacts","contacts":[{"name":{"formatted_name":"John Smith","first_name":"John"},"phones":[{"phone":"+1 (650) 555-1234","wa_id":"16505551234","type":"MOBILE"}],"emails":[{"email":"john@example.com","type":"WORK"}]},{"name":{"formatted_name":"Ana"}}])")));
  CHECK(message.content_type == "contacts");
  auto json = nlohmann::json::parse(message.content);
  REQUIRE(json.is_array());
  REQUIRE(json.size() == 2);
  CHECK(json[0]["name"]["formatted_name"] == "John Smith");
  CHECK(json[0]["phones"][0]["phone"] == "+1 (650) 555-1234");
  CHECK(json[0]["emails"][0]["email"] == "john@example.com");
  CHECK(json[1]["name"]["formatted_name"] == "Ana");
}

TEST_CASE("interactive button and list replies show their title and keep the id") {
  auto button = only_message(parse_ok(one_message(
      R"("type":"interactive","interactive":{"type":"button_reply","button_reply":{"id":"confirm-42","title":"Yes, confirm"}})")));
  CHECK(button.content_type == "interactive");
  CHECK(button.content == "Yes, confirm");
  REQUIRE(button.reply);
  CHECK(button.reply->kind == "button_reply");
  CHECK(button.reply->id == "confirm-42");
  CHECK(button.reply->title == "Yes, confirm");

  auto list = only_message(parse_ok(one_message(
      R"("type":"interactive","interactive":{"type":"list_reply","list_reply":{"id":"slot-3","title":"Tuesday 10:00","description":"Downtown branch"}})")));
  CHECK(list.content == "Tuesday 10:00");
  REQUIRE(list.reply);
  CHECK(list.reply->kind == "list_reply");
  CHECK(list.reply->id == "slot-3");
  CHECK(list.reply->description == "Downtown branch");
}

TEST_CASE("a flow reply keeps its response JSON") {
  auto message = only_message(parse_ok(one_message(
      R"("type":"interactive","interactive":{"type":"nfm_reply","nfm_reply":{"response_json":"{\"flow_token\":\"t\",\"rating\":5}","body":"Sent","name":"flow"}})")));
  CHECK(message.content_type == "interactive");
  CHECK(message.content == "Sent");
  REQUIRE(message.reply);
  CHECK(message.reply->kind == "nfm_reply");
  CHECK(message.reply->id == "flow");
  CHECK(message.reply->response_json == R"({"flow_token":"t","rating":5})");
}

TEST_CASE("a template quick-reply button shows its text and keeps the payload") {
  auto message = only_message(parse_ok(one_message(
      R"("context":{"from":"15550783881","id":"wamid.TEMPLATE"},"type":"button","button":{"payload":"STOP_PROMOS","text":"Stop promotions"})")));
  CHECK(message.content_type == "button");
  CHECK(message.content == "Stop promotions");
  REQUIRE(message.reply);
  CHECK(message.reply->kind == "button");
  CHECK(message.reply->id == "STOP_PROMOS");
  CHECK(message.context.id == "wamid.TEMPLATE");
}

TEST_CASE("an order becomes JSON with its items") {
  auto message = only_message(parse_ok(one_message(
      R"("type":"order","order":{"catalog_id":"194836987003835","text":"please hurry","product_items":[{"product_retailer_id":"di9ozbzfi4","quantity":2,"item_price":30.5,"currency":"USD"}]})")));
  CHECK(message.content_type == "order");
  auto json = nlohmann::json::parse(message.content);
  CHECK(json["catalog_id"] == "194836987003835");
  REQUIRE(json["product_items"].size() == 1);
  CHECK(json["product_items"][0]["product_retailer_id"] == "di9ozbzfi4");
  CHECK(json["product_items"][0]["quantity"] == 2);
  CHECK(json["product_items"][0]["item_price"].get<double>() == Approx(30.5));
}

TEST_CASE("a system message shows its body and keeps the new number") {
  auto message = only_message(parse_ok(one_message(
      R"("type":"system","system":{"body":"NAME changed from 16505551234 to 16505559999","new_wa_id":"16505559999","type":"customer_changed_number"})")));
  CHECK(message.content_type == "system");
  CHECK(message.content == "NAME changed from 16505551234 to 16505559999");
  REQUIRE(message.system);
  CHECK(message.system->type == "customer_changed_number");
  CHECK(message.system->new_wa_id == "16505559999");
  CHECK(message.system->moves_customer());
}

TEST_CASE("a reaction names its target and emoji") {
  auto message = only_message(parse_ok(
      one_message(R"("type":"reaction","reaction":{"message_id":"wamid.TARGET","emoji":"\u2764\ufe0f"})")));
  CHECK(message.content_type == "reaction");
  REQUIRE(message.reaction);
  CHECK(message.reaction->message_id == "wamid.TARGET");
  CHECK(message.reaction->emoji == "\xe2\x9d\xa4\xef\xb8\x8f");
  CHECK_FALSE(message.reaction->is_removal());
}

TEST_CASE("a reaction without emoji, or with an empty one, is a removal") {
  auto absent = only_message(parse_ok(one_message(R"("type":"reaction","reaction":{"message_id":"wamid.TARGET"})")));
  REQUIRE(absent.reaction);
  CHECK(absent.reaction->message_id == "wamid.TARGET");
  CHECK(absent.reaction->is_removal());

  auto empty = only_message(
      parse_ok(one_message(R"("type":"reaction","reaction":{"message_id":"wamid.TARGET","emoji":""})")));
  REQUIRE(empty.reaction);
  CHECK(empty.reaction->is_removal());
}

TEST_CASE("a reply names the replied-to wamid; forwarding flags are kept") {
  auto reply = only_message(parse_ok(one_message(
      R"("context":{"from":"15550783881","id":"wamid.ORIGINAL"},"type":"text","text":{"body":"yes that one"})")));
  CHECK(reply.context.id == "wamid.ORIGINAL");
  CHECK(reply.context.from == "15550783881");
  CHECK_FALSE(reply.context.forwarded);

  auto forwarded = only_message(parse_ok(one_message(
      R"("context":{"forwarded":true,"frequently_forwarded":true},"type":"text","text":{"body":"chain letter"})")));
  CHECK(forwarded.context.id.empty());
  CHECK(forwarded.context.forwarded);
  CHECK(forwarded.context.frequently_forwarded);
}

TEST_CASE("an unsupported message carries error 131051") {
  auto message = only_message(parse_ok(one_message(
      R"("type":"unsupported","errors":[{"code":131051,"title":"Message type unknown","message":"Message type unknown","error_data":{"details":"Message type is currently not supported."}}])")));
  CHECK(message.type == "unsupported");
  CHECK(message.content_type == "unsupported");
  CHECK(message.content.empty());
  REQUIRE(message.errors.size() == 1);
  CHECK(message.errors[0].code == 131051);
  CHECK(message.errors[0].title == "Message type unknown");
  CHECK(message.errors[0].message == "Message type unknown");
  CHECK(message.errors[0].details == "Message type is currently not supported.");
}

TEST_CASE("types this parser does not know are unsupported but keep Meta's name") {
  auto message = only_message(parse_ok(one_message(R"("type":"ephemeral","ephemeral":{"x":1})")));
  CHECK(message.type == "ephemeral");
  CHECK(message.content_type == "unsupported");

  auto untyped = only_message(parse_ok(one_message(R"("text":{"body":"no type"})")));
  CHECK(untyped.type.empty());
  CHECK(untyped.content_type == "unsupported");
}

TEST_CASE("a referral from an ad is kept as JSON") {
  auto message = only_message(parse_ok(one_message(
      R"("referral":{"source_url":"https://fb.me/x","source_type":"ad","source_id":"120"},"type":"text","text":{"body":"hi"})")));
  auto json = nlohmann::json::parse(message.referral_json);
  CHECK(json["source_type"] == "ad");
  CHECK(json["source_id"] == "120");
}

TEST_CASE("every entry, change, message and status of one delivery is read") {
  const std::string body = R"({"object":"whatsapp_business_account","entry":[
    {"id":"WABA1","changes":[
      {"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550000001","phone_number_id":"PN1"},
        "contacts":[{"profile":{"name":"A"},"wa_id":"111"},{"profile":{"name":"B"},"wa_id":"222"}],
        "messages":[
          {"from":"111","id":"wamid.1","timestamp":"1700000001","type":"text","text":{"body":"one"}},
          {"from":"222","id":"wamid.2","timestamp":"1700000002","type":"text","text":{"body":"two"}},
          {"from":"111","id":"wamid.3","timestamp":"1700000003","type":"reaction","reaction":{"message_id":"wamid.1","emoji":"X"}}]}},
      {"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550000001","phone_number_id":"PN1"},
        "statuses":[
          {"id":"wamid.out1","status":"delivered","timestamp":"1700000010","recipient_id":"111"},
          {"id":"wamid.out2","status":"read","timestamp":"1700000011","recipient_id":"222"}]}}]},
    {"id":"WABA2","changes":[
      {"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550000002","phone_number_id":"PN2"},
        "contacts":[{"profile":{"name":"C"},"wa_id":"333"}],
        "messages":[{"from":"333","id":"wamid.4","timestamp":"1700000004","type":"text","text":{"body":"four"}}],
        "statuses":[{"id":"wamid.out3","status":"sent","timestamp":"1700000012","recipient_id":"333"}]}}]}]})";
  auto delivery = parse_ok(body);
  CHECK(delivery.problems.empty());
  REQUIRE(delivery.changes.size() == 3);

  CHECK(delivery.changes[0].entry_id == "WABA1");
  CHECK(delivery.changes[0].phone_number_id == "PN1");
  REQUIRE(delivery.changes[0].messages.size() == 3);
  CHECK(delivery.changes[0].messages[0].wamid == "wamid.1");
  CHECK(delivery.changes[0].messages[1].wamid == "wamid.2");
  CHECK(delivery.changes[0].messages[1].content == "two");
  CHECK(delivery.changes[0].messages[2].content_type == "reaction");
  CHECK(delivery.changes[0].contacts.size() == 2);
  CHECK(profile_name_for(delivery.changes[0], "222") == "B");

  CHECK(delivery.changes[1].entry_id == "WABA1");
  CHECK(delivery.changes[1].messages.empty());
  REQUIRE(delivery.changes[1].statuses.size() == 2);
  CHECK(delivery.changes[1].statuses[0].wamid == "wamid.out1");
  CHECK(delivery.changes[1].statuses[1].status == "read");
  CHECK(delivery.changes[1].statuses[1].recipient_id == "222");

  CHECK(delivery.changes[2].entry_id == "WABA2");
  CHECK(delivery.changes[2].phone_number_id == "PN2");
  REQUIRE(delivery.changes[2].messages.size() == 1);
  CHECK(delivery.changes[2].messages[0].timestamp == 1700000004);
  REQUIRE(delivery.changes[2].statuses.size() == 1);
  CHECK(delivery.changes[2].statuses[0].status == "sent");
}

TEST_CASE("a sent status carries conversation, expiration and pricing") {
  auto status = only_status(parse_ok(envelope(
      R"("statuses":[{"id":"wamid.OUT","status":"sent","timestamp":"1750263773","recipient_id":"16505551234","conversation":{"id":"6ceb9d929c1a0dd2a8b1c7eb5b0da2a3","expiration_timestamp":"1750350180","origin":{"type":"service"}},"pricing":{"billable":true,"pricing_model":"CBP","category":"service","type":"regular"}}])")));
  CHECK(status.wamid == "wamid.OUT");
  CHECK(status.status == "sent");
  CHECK(status.timestamp == 1750263773);
  CHECK(status.recipient_id == "16505551234");
  CHECK(status.conversation_id == "6ceb9d929c1a0dd2a8b1c7eb5b0da2a3");
  REQUIRE(status.conversation_expiration);
  CHECK(*status.conversation_expiration == 1750350180);
  CHECK(status.conversation_origin_type == "service");
  REQUIRE(status.pricing);
  CHECK(status.pricing->billable);
  CHECK(status.pricing->pricing_model == "CBP");
  CHECK(status.pricing->category == "service");
  CHECK(status.pricing->type == "regular");
  CHECK(status.errors.empty());
}

TEST_CASE("a delivered status without conversation or pricing has neither") {
  auto status = only_status(
      parse_ok(envelope(R"("statuses":[{"id":"wamid.OUT","status":"delivered","timestamp":"1750263774","recipient_id":"1"}])")));
  CHECK(status.status == "delivered");
  CHECK(status.conversation_id.empty());
  CHECK_FALSE(status.conversation_expiration);
  CHECK_FALSE(status.pricing);
}

TEST_CASE("a failed status records every error with code, title, message and details") {
  auto status = only_status(parse_ok(envelope(
      R"("statuses":[{"id":"wamid.OUT","status":"failed","timestamp":"1750263800","recipient_id":"16505551234","errors":[{"code":131047,"title":"Re-engagement message","message":"Re-engagement message","error_data":{"details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."},"href":"https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"},{"code":"131026","title":"Message undeliverable"}]}])")));
  CHECK(status.status == "failed");
  REQUIRE(status.errors.size() == 2);
  CHECK(status.errors[0].code == 131047);
  CHECK(status.errors[0].title == "Re-engagement message");
  CHECK(status.errors[0].message == "Re-engagement message");
  CHECK(status.errors[0].details.find("more than 24 hours") != std::string::npos);
  CHECK(status.errors[1].code == 131026);
  CHECK(status.errors[1].title == "Message undeliverable");
  CHECK(status.errors[1].details.empty());
}

TEST_CASE("played and unknown statuses are kept as sent by Meta") {
  auto delivery = parse_ok(envelope(
      R"("statuses":[{"id":"wamid.A","status":"played","timestamp":"1"},{"id":"wamid.B","status":"deleted","timestamp":"2"}])"));
  REQUIRE(delivery.changes[0].statuses.size() == 2);
  CHECK(delivery.changes[0].statuses[0].status == "played");
  CHECK(delivery.changes[0].statuses[1].status == "deleted");
}

TEST_CASE("errors at the value level are read") {
  auto delivery = parse_ok(envelope(
      R"("errors":[{"code":131000,"title":"Something went wrong","message":"Something went wrong","error_data":{"details":"Unknown"}}])"));
  REQUIRE(delivery.changes.size() == 1);
  REQUIRE(delivery.changes[0].errors.size() == 1);
  CHECK(delivery.changes[0].errors[0].code == 131000);
  CHECK(delivery.changes[0].errors[0].details == "Unknown");
}

TEST_CASE("other fields are kept raw beside messages") {
  const std::string body = R"({"object":"whatsapp_business_account","entry":[{"id":"WABA","time":1700000000,"changes":[
    {"field":"message_template_status_update","value":{"event":"APPROVED","message_template_id":594425479261596,"message_template_name":"order_update","message_template_language":"en_US","reason":"NONE"}},
    {"field":"phone_number_quality_update","value":{"display_phone_number":"15550783881","event":"FLAGGED","current_limit":"TIER_10K"}},
    {"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"PN"},"messages":[{"from":"1","id":"wamid.X","timestamp":"5","type":"text","text":{"body":"b"}}]}},
    {"value":{"mystery":[1,2,{"deep":true}]}}]}]})";
  auto delivery = parse_ok(body);
  REQUIRE(delivery.changes.size() == 4);

  const auto& templates = delivery.changes[0];
  CHECK(templates.field == "message_template_status_update");
  CHECK(templates.entry_id == "WABA");
  CHECK(templates.messages.empty());
  auto raw = nlohmann::json::parse(templates.raw_value);
  CHECK(raw["event"] == "APPROVED");
  CHECK(raw["message_template_id"] == 594425479261596);
  CHECK(raw["message_template_name"] == "order_update");

  CHECK(delivery.changes[1].field == "phone_number_quality_update");
  CHECK(nlohmann::json::parse(delivery.changes[1].raw_value)["event"] == "FLAGGED");

  CHECK(delivery.changes[2].field == "messages");
  CHECK(delivery.changes[2].messages.size() == 1);

  CHECK(delivery.changes[3].field.empty());
  CHECK(nlohmann::json::parse(delivery.changes[3].raw_value)["mystery"][2]["deep"] == true);
  CHECK(has_problem(delivery, "entry[0].changes[3].field", "missing"));
}

TEST_CASE("a message missing id or from is skipped and reported; the rest still count") {
  auto delivery = parse_ok(envelope(R"("messages":[
      {"from":"1","timestamp":"5","type":"text","text":{"body":"no id"}},
      {"id":"wamid.NOFROM","timestamp":"5","type":"text","text":{"body":"no from"}},
      {"from":"1","id":"","type":"text"},
      {"from":"1","id":"wamid.OK","timestamp":"6","type":"text","text":{"body":"fine"}},
      42],
    "statuses":[{"status":"read"},{"id":"wamid.S"},{"id":"wamid.T","status":"read","timestamp":"7"}])"));
  REQUIRE(delivery.changes.size() == 1);
  const auto& change = delivery.changes[0];
  REQUIRE(change.messages.size() == 1);
  CHECK(change.messages[0].wamid == "wamid.OK");
  CHECK(change.messages[0].content == "fine");
  REQUIRE(change.statuses.size() == 1);
  CHECK(change.statuses[0].wamid == "wamid.T");

  CHECK(has_problem(delivery, "entry[0].changes[0].value.messages[0]", "without id"));
  CHECK(has_problem(delivery, "entry[0].changes[0].value.messages[1]", "without from"));
  CHECK(has_problem(delivery, "entry[0].changes[0].value.messages[2]", "without id"));
  CHECK(has_problem(delivery, "entry[0].changes[0].value.messages[4]", "not an object"));
  CHECK(has_problem(delivery, "entry[0].changes[0].value.statuses[0]", "without id"));
  CHECK(has_problem(delivery, "entry[0].changes[0].value.statuses[1]", "without status"));
  CHECK(delivery.problems.size() == 6);
}

TEST_CASE("timestamps are read from strings or numbers; anything else is 0") {
  auto delivery = parse_ok(envelope(R"("messages":[
      {"from":"1","id":"m1","timestamp":1749416383,"type":"text"},
      {"from":"1","id":"m2","timestamp":"1749416384","type":"text"},
      {"from":"1","id":"m3","timestamp":1749416385.0,"type":"text"},
      {"from":"1","id":"m4","timestamp":"17494x","type":"text"},
      {"from":"1","id":"m5","timestamp":"99999999999999999999","type":"text"},
      {"from":"1","id":"m6","timestamp":true,"type":"text"},
      {"from":"1","id":"m7","timestamp":1e300,"type":"text"},
      {"from":"1","id":"m8","timestamp":18446744073709551615,"type":"text"},
      {"from":"1","id":"m9","type":"text"}])"));
  const auto& messages = delivery.changes[0].messages;
  REQUIRE(messages.size() == 9);
  CHECK(messages[0].timestamp == 1749416383);
  CHECK(messages[1].timestamp == 1749416384);
  CHECK(messages[2].timestamp == 1749416385);
  for (std::size_t i = 3; i < messages.size(); ++i) {
    INFO("message " << messages[i].wamid);
    CHECK(messages[i].timestamp == 0);
  }
}

TEST_CASE("mistyped fields fall back to defaults instead of failing the delivery") {
  auto delivery = parse_ok(R"({"object":"whatsapp_business_account","entry":[{"id":102290129340398,"changes":[{"field":"messages","value":{
      "messaging_product":7,"metadata":"not an object",
      "contacts":[{"profile":"x","wa_id":16505551234},{"profile":{"name":5}}],
      "messages":[{"from":16505551234,"id":"wamid.A","type":"text","text":{"body":12},"context":{"id":["x"],"forwarded":"yes"},"errors":{"code":1}},
                  {"from":"1","id":"wamid.B","type":"image","image":"cat.jpg"},
                  {"from":"1","id":"wamid.C","type":"location","location":{"latitude":"north","longitude":null,"name":3}},
                  {"from":"1","id":"wamid.D","type":"contacts","contacts":{"not":"an array"}},
                  {"from":"1","id":"wamid.E","type":"interactive","interactive":{"type":["button_reply"]}},
                  {"from":"1","id":"wamid.F","type":7}],
      "statuses":[{"id":"wamid.S","status":"sent","conversation":[],"pricing":{"billable":"yes","category":1},"errors":[null,{"code":{}}]}]}}]}]})");
  REQUIRE(delivery.changes.size() == 1);
  const auto& change = delivery.changes[0];
  CHECK(change.entry_id == "102290129340398");
  CHECK(change.messaging_product.empty());
  CHECK(change.phone_number_id.empty());
  REQUIRE(change.contacts.size() == 1);
  CHECK(change.contacts[0].wa_id == "16505551234");
  CHECK(change.contacts[0].profile_name.empty());

  REQUIRE(change.messages.size() == 6);
  const auto& text = change.messages[0];
  CHECK(text.from == "16505551234");
  CHECK(text.content_type == "text");
  CHECK(text.content.empty());
  CHECK(text.context.id.empty());
  CHECK_FALSE(text.context.forwarded);
  CHECK(text.errors.empty());

  CHECK(change.messages[1].content_type == "image");
  CHECK_FALSE(change.messages[1].media);

  auto location = nlohmann::json::parse(change.messages[2].content);
  CHECK(location["latitude"].is_null());
  CHECK(location["longitude"].is_null());
  CHECK(location["name"].is_null());

  CHECK(change.messages[3].content == "[]");
  CHECK(change.messages[4].content.empty());
  REQUIRE(change.messages[4].reply);
  CHECK(change.messages[4].reply->kind.empty());
  CHECK(change.messages[5].content_type == "unsupported");

  REQUIRE(change.statuses.size() == 1);
  const auto& status = change.statuses[0];
  CHECK(status.conversation_id.empty());
  REQUIRE(status.pricing);
  CHECK_FALSE(status.pricing->billable);
  CHECK(status.pricing->category.empty());
  REQUIRE(status.errors.size() == 1);
  CHECK(status.errors[0].code == 0);

  CHECK(has_problem(delivery, "entry[0].changes[0].value.contacts[1]", "without wa_id"));
  CHECK(has_problem(delivery, "entry[0].changes[0].value.messages[0].errors", "not an array"));
  CHECK(has_problem(delivery, "entry[0].changes[0].value.statuses[0].errors[0]", "not an object"));
}

TEST_CASE("a broken envelope is reported, not fatal") {
  auto no_entry = parse_ok(R"({"object":"whatsapp_business_account"})");
  CHECK(no_entry.changes.empty());
  CHECK(has_problem(no_entry, "entry", "missing"));

  auto wrong_object = parse_ok(R"({"object":"page","entry":[]})");
  CHECK(wrong_object.object == "page");
  CHECK(has_problem(wrong_object, "object", "not whatsapp_business_account"));

  auto shapes = parse_ok(R"({"object":"whatsapp_business_account","entry":[
      "x", {"id":"1"}, {"id":"2","changes":{"field":"messages"}},
      {"id":"3","changes":[1,{"field":"messages"},{"field":"messages","value":[]},
        {"field":"messages","value":{"messages":{"id":"m"},"statuses":"s"}}]}]})");
  REQUIRE(shapes.changes.size() == 1);
  CHECK(shapes.changes[0].entry_id == "3");
  CHECK(shapes.changes[0].messages.empty());
  CHECK(has_problem(shapes, "entry[0]", "not an object"));
  CHECK(has_problem(shapes, "entry[1].changes", "missing"));
  CHECK(has_problem(shapes, "entry[2].changes", "not an array"));
  CHECK(has_problem(shapes, "entry[3].changes[0]", "not an object"));
  CHECK(has_problem(shapes, "entry[3].changes[1].value", "missing"));
  CHECK(has_problem(shapes, "entry[3].changes[2].value", "not an object"));
  CHECK(has_problem(shapes, "entry[3].changes[3].value.messages", "not an array"));
  CHECK(has_problem(shapes, "entry[3].changes[3].value.statuses", "not an array"));
}

TEST_CASE("bodies that are not one JSON object are errors") {
  CHECK_FALSE(parse_error("").empty());
  CHECK_FALSE(parse_error("{").empty());
  CHECK_FALSE(parse_error(R"({"entry":[]} trailing)").empty());
  CHECK(parse_error("[]") == "JSON body is not an object");
  CHECK(parse_error("\"text\"") == "JSON body is not an object");
  CHECK(parse_error("42") == "JSON body is not an object");
  CHECK(parse_error("null") == "JSON body is not an object");
}

TEST_CASE("invalid UTF-8 anywhere in the body is an error") {
  auto body = one_message("\"type\":\"text\",\"text\":{\"body\":\"caf\xc3\"}");
  CHECK(parse_error(body).find("UTF") != std::string::npos);
  CHECK_FALSE(parse_error("{\"object\":\"\xff\"}").empty());
  CHECK_FALSE(parse_error("{\"object\":\"\xed\xa0\x80\"}").empty());  // a lone surrogate
}

TEST_CASE("nesting beyond simdjson's depth limit is an error; within it, kept raw") {
  const std::size_t too_deep = 5000;
  std::string deep = R"({"entry":[{"changes":[{"field":"x","value":{"v":)";
  deep += std::string(too_deep, '[') + std::string(too_deep, ']') + "}}]}]}";
  CHECK_FALSE(parse_error(deep).empty());

  const std::size_t fine = 900;
  std::string nested = R"({"entry":[{"changes":[{"field":"x","value":{"v":)";
  nested += std::string(fine, '[') + std::string(fine, ']') + "}}]}]}";
  auto delivery = parse_ok(nested);
  REQUIRE(delivery.changes.size() == 1);
  CHECK(delivery.changes[0].raw_value == R"({"v":)" + std::string(fine, '[') + std::string(fine, ']') + "}");
}

TEST_CASE("huge strings are kept whole") {
  const std::string big(2 * 1024 * 1024, 'a');
  auto message = only_message(parse_ok(one_message("\"type\":\"text\",\"text\":{\"body\":\"" + big + "\"}")));
  CHECK(message.content.size() == big.size());
  CHECK(message.content == big);
}

TEST_CASE("items beyond the limit are dropped and reported once") {
  std::string messages;
  for (int i = 0; i < 10; ++i) {
    messages += (i == 0 ? "" : ",");
    messages += R"({"from":"1","id":"wamid.)" + std::to_string(i) + R"(","type":"text","text":{"body":"x"}})";
  }
  webhook_parse_limits limits;
  limits.max_items = 5;  // the change itself costs one
  auto delivery = parse_ok(envelope("\"messages\":[" + messages + "]"), limits);
  REQUIRE(delivery.changes.size() == 1);
  REQUIRE(delivery.changes[0].messages.size() == 4);
  CHECK(delivery.changes[0].messages[3].wamid == "wamid.3");
  REQUIRE(delivery.problems.size() == 1);
  CHECK(delivery.problems[0].reason == "6 items dropped over the limit of 5 per delivery");
}

TEST_CASE("problems beyond the limit are summed up") {
  std::string messages;
  for (int i = 0; i < 30; ++i) {
    messages += (i == 0 ? "{}" : ",{}");
  }
  webhook_parse_limits limits;
  limits.max_problems = 10;
  auto delivery = parse_ok(envelope("\"messages\":[" + messages + "]"), limits);
  REQUIRE(delivery.problems.size() == 11);
  CHECK(delivery.problems[9].where == "entry[0].changes[0].value.messages[9]");
  CHECK(delivery.problems[10].reason == "20 more problems not listed");
}

TEST_CASE("default limits hold a realistic large batch") {
  std::string statuses;
  for (int i = 0; i < 2000; ++i) {
    statuses += (i == 0 ? "" : ",");
    statuses += R"({"id":"wamid.)" + std::to_string(i) + R"(","status":"delivered","timestamp":"1700000000","recipient_id":"1"})";
  }
  auto delivery = parse_ok(envelope("\"statuses\":[" + statuses + "]"));
  CHECK(delivery.problems.empty());
  REQUIRE(delivery.changes.size() == 1);
  CHECK(delivery.changes[0].statuses.size() == 2000);
}

TEST_CASE("hostile identifiers too long for an index are skipped as problems, not stored") {
  const std::string long_id(300, 'w');
  auto delivery = parse_ok(envelope(
      R"("messages":[{"from":"16505551234","id":")" + long_id +
      R"(","timestamp":"1749416383","type":"text","text":{"body":"x"}},)"
      R"({"from":")" + long_id + R"(","id":"wamid.ok","timestamp":"1749416383","type":"text","text":{"body":"y"}},)"
      R"({"from":"16505551234","id":"wamid.fine","timestamp":"1749416383","type":"text","text":{"body":"z"}}],)"
      R"("statuses":[{"id":")" + long_id + R"(","status":"read","timestamp":"1749416383","recipient_id":"1"},)"
      R"({"id":"wamid.s","status":")" + std::string(100, 's') + R"(","timestamp":"1749416383","recipient_id":"1"}])"));
  REQUIRE(delivery.changes.size() == 1);
  REQUIRE(delivery.changes[0].messages.size() == 1);
  CHECK(delivery.changes[0].messages[0].wamid == "wamid.fine");
  CHECK(delivery.changes[0].statuses.empty());
  CHECK(delivery.problems.size() == 4);
}

TEST_CASE("a customer known only by a business-scoped user id is kept, not skipped") {
  // A username user: Meta withholds wa_id and from, and names the customer by BSUID.
  auto delivery = parse_ok(envelope(
      R"("contacts":[{"profile":{"name":"Pablo"},"user_id":"US.13491208655302741918"}],)"
      R"("messages":[{"from_user_id":"US.13491208655302741918","id":"wamid.bsuid.1","timestamp":"1749416383","type":"text","text":{"body":"hola"}}])"));
  CHECK(delivery.problems.empty());
  REQUIRE(delivery.changes[0].contacts.size() == 1);
  CHECK(delivery.changes[0].contacts[0].wa_id.empty());
  CHECK(delivery.changes[0].contacts[0].user_id == "US.13491208655302741918");
  auto m = only_message(delivery);
  CHECK(m.from.empty());
  CHECK(m.from_user_id == "US.13491208655302741918");
  CHECK(profile_name_for(delivery.changes[0], m.from, m.from_user_id) == "Pablo");
  auto units = split_delivery(delivery);
  REQUIRE(units.size() == 1);
  CHECK(units[0].visitor_wa_id == "US.13491208655302741918");
  CHECK(units[0].profile_name == "Pablo");
}

TEST_CASE("a delivery naming phone and BSUID keeps both; a status may name only the BSUID") {
  auto delivery = parse_ok(envelope(
      R"("contacts":[{"profile":{"name":"Ann"},"wa_id":"16505551234","user_id":"US.1"}],)"
      R"("messages":[{"from":"16505551234","from_user_id":"US.1","id":"wamid.both","timestamp":"1","type":"text","text":{"body":"x"}}],)"
      R"("statuses":[{"id":"wamid.out","status":"read","timestamp":"2","recipient_user_id":"US.1"}])"));
  CHECK(delivery.problems.empty());
  auto units = split_delivery(delivery);
  REQUIRE(units.size() == 2);
  CHECK(units[0].visitor_wa_id == "16505551234");  // the phone when known: as before the BSUID came
  CHECK(units[0].message.from_user_id == "US.1");
  CHECK(units[1].status.recipient_id.empty());
  CHECK(units[1].status.recipient_user_id == "US.1");
  CHECK(units[1].visitor_wa_id == "US.1");
}

TEST_CASE("a status keeps the biz_opaque_callback_data our send set; an over-long one is not ours") {
  auto delivery = parse_ok(envelope(
      R"("statuses":[{"id":"wamid.a","status":"sent","timestamp":"2","recipient_id":"1","biz_opaque_callback_data":"42"},)"
      R"({"id":"wamid.b","status":"sent","timestamp":"2","recipient_id":"1","biz_opaque_callback_data":")" +
      std::string(513, 'x') + R"("}])"));
  auto units = split_delivery(delivery);
  REQUIRE(units.size() == 2);
  CHECK(units[0].status.biz_opaque_callback_data == "42");
  CHECK(units[1].status.biz_opaque_callback_data.empty());
}

TEST_CASE("a message or contact without any customer id is still skipped and reported") {
  auto delivery = parse_ok(envelope(
      R"("contacts":[{"profile":{"name":"Nobody"}}],)"
      R"("messages":[{"id":"wamid.nobody","timestamp":"1","type":"text","text":{"body":"x"}}])"));
  CHECK(delivery.changes[0].messages.empty());
  CHECK(has_problem(delivery, "entry[0].changes[0].value.messages[0]", "without from or from_user_id"));
  CHECK(has_problem(delivery, "entry[0].changes[0].value.contacts[0]", "without wa_id or user_id"));
}

TEST_CASE("system notices carry the new phone, the new BSUID and the previous BSUID") {
  auto changed_id = only_message(parse_ok(envelope(
      R"("messages":[{"from_user_id":"US.new","id":"wamid.sys1","timestamp":"1","type":"system",)"
      R"("system":{"body":"User changed","type":"user_changed_user_id","user_id":"US.new","previous_user_id":"US.old"}}])")));
  REQUIRE(changed_id.system);
  CHECK(changed_id.system->type == "user_changed_user_id");
  CHECK(changed_id.system->new_user_id == "US.new");
  CHECK(changed_id.system->previous_user_id == "US.old");
  CHECK(changed_id.system->new_wa_id.empty());
  auto changed_number = only_message(parse_ok(envelope(
      R"("messages":[{"from":"16505551234","id":"wamid.sys2","timestamp":"1","type":"system",)"
      R"("system":{"body":"User A changed from 1 to 2","type":"user_changed_number","wa_id":"12195555358"}}])")));
  REQUIRE(changed_number.system);
  CHECK(changed_number.system->new_wa_id == "12195555358");
  CHECK(changed_number.system->new_user_id.empty());
  CHECK(changed_id.system->moves_customer());
  CHECK(changed_number.system->moves_customer());
  // Other system messages (Meta sends a few kinds) only tell; nobody moves.
  auto other = only_message(parse_ok(envelope(
      R"("messages":[{"from":"16505551234","id":"wamid.sys3","timestamp":"1","type":"system",)"
      R"("system":{"body":"Something happened","type":"customer_identity_changed"}}])")));
  REQUIRE(other.system);
  CHECK_FALSE(other.system->moves_customer());
}

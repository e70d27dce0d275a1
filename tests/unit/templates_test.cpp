// Template sends checked against Meta's definitions before anything is stored or paid for.
#include <catch2/catch.hpp>

#include "domain/templates.hpp"

using namespace wachat;
using nlohmann::json;

namespace {

std::vector<domain::template_def> catalogue() {
  auto page = domain::parse_template_page(R"({"data": [
    {"name": "order_update", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
     "components": [
       {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
       {"type": "BODY", "text": "Hi {{1}}, your order {{2}} ships {{3}}."},
       {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Track", "url": "https://t.example/{{1}}"},
                                       {"type": "QUICK_REPLY", "text": "Stop"}]}]},
    {"name": "order_update", "language": "fr", "status": "PAUSED", "category": "UTILITY",
     "components": [{"type": "BODY", "text": "Bonjour"}]},
    {"name": "promo", "language": "en_US", "status": "APPROVED", "category": "MARKETING",
     "quality_score": {"score": "GREEN"},
     "components": [{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "Hello {{first_name}}"}]},
    {"name": "hello_world", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
     "components": [{"type": "BODY", "text": "Hello World"}]}],
    "paging": {"cursors": {"before": "a", "after": "b"}, "next": "https://graph.example/v24.0/1/message_templates?after=b"}})");
  REQUIRE(page);
  CHECK(page->next == "https://graph.example/v24.0/1/message_templates?after=b");
  return page->templates;
}

json text_param(const std::string& t) { return {{"type", "text"}, {"text", t}}; }

json order(json components) { return {{"name", "order_update"}, {"language", "en_US"}, {"components", components}}; }

const json good_components = json::array(
    {{{"type", "header"}, {"parameters", {text_param("#42")}}},
     {{"type", "body"}, {"parameters", {text_param("Ann"), text_param("#42"), text_param("today")}}},
     {{"type", "button"}, {"sub_type", "url"}, {"index", "0"}, {"parameters", {text_param("42")}}}});

}  // namespace

TEST_CASE("a matching template send passes and its body is rendered with the parameters") {
  auto c = domain::check_template_send(catalogue(), order(good_components));
  CHECK(c.problem == "");
  CHECK(c.ok);
  CHECK(c.rendered_body == "Hi Ann, your order #42 ships today.");
  CHECK(c.category == "UTILITY");
  auto hello = domain::check_template_send(catalogue(), {{"name", "hello_world"}, {"language", "en_US"}});
  CHECK(hello.ok);
  CHECK(hello.rendered_body == "Hello World");
}

TEST_CASE("named parameters fill the placeholder they name; a media header needs its media") {
  json comps = json::array({{{"type", "header"}, {"parameters", {{{"type", "image"}, {"image", {{"link", "https://x.example/a.png"}}}}}}},
                            {{"type", "body"}, {"parameters", {{{"type", "text"}, {"parameter_name", "first_name"}, {"text", "Ann"}}}}}});
  auto c = domain::check_template_send(catalogue(), {{"name", "promo"}, {"language", "en_US"}, {"components", comps}});
  CHECK(c.ok);
  CHECK(c.rendered_body == "Hello Ann");
  CHECK(c.category == "MARKETING");
  json no_media = json::array({{{"type", "body"}, {"parameters", {text_param("Ann")}}}});
  auto m = domain::check_template_send(catalogue(), {{"name", "promo"}, {"language", "en_US"}, {"components", no_media}});
  CHECK_FALSE(m.ok);
  CHECK(m.problem.find("image") != std::string::npos);
}

TEST_CASE("unknown, not approved, or mismatched template sends are refused naming what is wrong") {
  auto unknown = domain::check_template_send(catalogue(), {{"name", "nope"}, {"language", "en_US"}});
  CHECK(unknown.problem == "Template 'nope' does not exist in language 'en_US'.");
  auto paused = domain::check_template_send(catalogue(), {{"name", "order_update"}, {"language", "fr"}});
  CHECK(paused.problem == "Template 'order_update' (fr) is PAUSED, not APPROVED.");

  auto missing = good_components;
  missing[1]["parameters"].erase(2);
  CHECK(domain::check_template_send(catalogue(), order(missing)).problem ==
        "Template 'order_update' body takes 3 parameter(s), 2 given.");
  auto extra = good_components;
  extra[1]["parameters"].push_back(text_param("x"));
  CHECK(domain::check_template_send(catalogue(), order(extra)).problem.find("3 parameter(s), 4 given") !=
        std::string::npos);
  auto wrong_type = good_components;
  wrong_type[1]["parameters"][0] = {{"type", "image"}, {"image", {{"link", "https://x"}}}};
  CHECK(domain::check_template_send(catalogue(), order(wrong_type)).problem.find("not allowed") != std::string::npos);
  auto no_text = good_components;
  no_text[1]["parameters"][0] = {{"type", "text"}, {"text", 5}};
  CHECK(domain::check_template_send(catalogue(), order(no_text)).problem.find("needs 'text'") != std::string::npos);
  auto bad_button = good_components;
  bad_button[2]["index"] = 5;
  CHECK(domain::check_template_send(catalogue(), order(bad_button)).problem ==
        "Template 'order_update' has no button at index 5.");
  auto wrong_sub = good_components;
  wrong_sub[2]["index"] = 1;
  CHECK(domain::check_template_send(catalogue(), order(wrong_sub)).problem.find("QUICK_REPLY") != std::string::npos);
  auto header_missing = good_components;
  header_missing.erase(0);
  CHECK(domain::check_template_send(catalogue(), order(header_missing)).problem.find("header takes 1") !=
        std::string::npos);
  auto odd = good_components;
  odd.push_back({{"type", "footer"}});
  CHECK(domain::check_template_send(catalogue(), order(odd)).problem.find("footer") != std::string::npos);
}

TEST_CASE("a value that looks like a placeholder is not filled in again") {
  json comps = json::array({{{"type", "header"}, {"parameters", {text_param("x")}}},
                            {{"type", "body"}, {"parameters", {text_param("{{2}}"), text_param("B"), text_param("C")}}},
                            {{"type", "button"}, {"sub_type", "url"}, {"index", 0}, {"parameters", {text_param("1")}}}});
  CHECK(domain::check_template_send(catalogue(), order(comps)).rendered_body == "Hi {{2}}, your order B ships C.");
}

TEST_CASE("a page that is not Meta's shape is refused; placeholders are counted once each") {
  CHECK_FALSE(domain::parse_template_page("<html>"));
  CHECK_FALSE(domain::parse_template_page(R"({"error": {}})"));
  CHECK(domain::placeholder_count("{{1}} and {{2}} and {{1}}") == 2);
  CHECK(domain::placeholder_count("no {{ placeholders }} here {{") == 0);
}

TEST_CASE("a welcome template is named by name (one approved language) or name@language, without parameters") {
  auto list = catalogue();
  list.push_back({"hello_world", "fr", "APPROVED", "UTILITY", "", json::array({{{"type", "BODY"}, {"text", "Bonjour"}}})});
  auto hello = domain::choose_template(list, "hello_world@fr", true);
  CHECK(hello.ok);
  CHECK(hello.language == "fr");
  CHECK(domain::choose_template(list, "hello_world", true).problem ==
        "Template 'hello_world' exists in several languages (en_US, fr); name one as name@language.");
  auto order = domain::choose_template(list, "order_update", true);
  CHECK_FALSE(order.ok);
  CHECK(order.problem.find("takes parameters") != std::string::npos);
  CHECK(domain::choose_template(list, "order_update", false).language == "en_US");  // fr is PAUSED
  CHECK(domain::choose_template(list, "order_update@fr", false).problem == "Template 'order_update@fr' is not APPROVED.");
  CHECK(domain::choose_template(list, "nope", true).problem == "Template 'nope' does not exist.");
}

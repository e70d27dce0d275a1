#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Message templates (META.md "Templates"): Meta's list as the site actor caches it, and the
// check of a template send against it before anything is stored or paid for. Pure.
namespace wachat::domain {

struct template_def {
  std::string name;
  std::string language;
  std::string status;    // APPROVED, PENDING, REJECTED, PAUSED, DISABLED, ...
  std::string category;  // MARKETING, UTILITY, AUTHENTICATION
  std::string quality;   // quality_score.score when Meta gives one, else ""
  nlohmann::json components = nlohmann::json::array();
};

struct template_page {
  std::vector<template_def> templates;
  std::optional<std::string> next;  // paging.next: the absolute URL of the next page
};

// One page of GET /{waba_id}/message_templates; nullopt when the body is not Meta's shape.
std::optional<template_page> parse_template_page(std::string_view body);

// The API's view of one template (API.md §3.2).
nlohmann::json template_json(const template_def& t);

struct template_check {
  bool ok = false;
  std::string problem;        // for people: what is wrong, naming the template and the part
  std::string rendered_body;  // the body text with the parameters filled in
  std::string category;
};

// Checks `requested` ({name, language, components?}, as parse_outbound left it) against the
// site's templates: it exists in that language, is APPROVED, and its header, body and button
// parameters match the definition in number and type (META.md 132000, 132001, 132012 made
// local, before the send is stored).
template_check check_template_send(const std::vector<template_def>& templates, const nlohmann::json& requested);

// A template named the way a site's settings name one (API.md §3.2 welcome_template): "name",
// which must have exactly one APPROVED language, or "name@language". A welcome message is sent
// without parameters, so one that takes any is refused too.
struct template_choice {
  bool ok = false;
  std::string name;
  std::string language;
  std::string problem;
};
template_choice choose_template(const std::vector<template_def>& templates, std::string_view spec,
                                bool without_parameters);

// The number of distinct placeholders ({{1}}, {{2}}, or named {{first_name}}) in a text.
std::size_t placeholder_count(std::string_view text);

}  // namespace wachat::domain

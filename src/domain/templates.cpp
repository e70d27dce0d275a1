#include "domain/templates.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace wachat::domain {
namespace {

using nlohmann::json;

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string text_of(const json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

// The placeholders of a text in order of first appearance: "1", "2" or names.
std::vector<std::string> placeholders(std::string_view text) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (std::size_t i = text.find("{{"); i != std::string_view::npos; i = text.find("{{", i + 2)) {
    auto end = text.find("}}", i + 2);
    if (end == std::string_view::npos) {
      break;
    }
    std::string name{text.substr(i + 2, end - i - 2)};
    bool valid = !name.empty() && name.size() <= 64 &&
                 std::all_of(name.begin(), name.end(), [](unsigned char c) { return std::isalnum(c) || c == '_'; });
    if (valid && seen.insert(name).second) {
      out.push_back(name);
    }
  }
  return out;
}

const json* component(const json& components, const std::string& type) {
  for (const auto& c : components) {
    if (c.is_object() && upper(text_of(c, "type")) == type) {
      return &c;
    }
  }
  return nullptr;
}

struct problem {
  std::string what;
};

// A text parameter's value, checked.
std::string text_parameter(const json& p, const std::string& where) {
  auto type = text_of(p, "type");
  if (type == "text") {
    if (!p.contains("text") || !p["text"].is_string()) {
      throw problem{where + ": a text parameter needs 'text'."};
    }
    return p["text"].get<std::string>();
  }
  if (type == "currency") {
    if (!p.contains("currency") || !p["currency"].is_object()) {
      throw problem{where + ": a currency parameter needs 'currency'."};
    }
    return text_of(p["currency"], "fallback_value");
  }
  if (type == "date_time") {
    if (!p.contains("date_time") || !p["date_time"].is_object()) {
      throw problem{where + ": a date_time parameter needs 'date_time'."};
    }
    return text_of(p["date_time"], "fallback_value");
  }
  throw problem{where + ": parameter type '" + type + "' is not allowed here (text, currency or date_time)."};
}

const json& parameters_of(const json& c, const std::string& where) {
  static const json none = json::array();
  auto it = c.find("parameters");
  if (it == c.end() || it->is_null()) {
    return none;
  }
  if (!it->is_array()) {
    throw problem{where + ": 'parameters' must be an array."};
  }
  return *it;
}

// Fills the body's placeholders in one pass (a value that looks like a placeholder stays as it
// is): positional ones in order, a parameter with `parameter_name` the placeholder it names.
std::string render(const std::string& text, const std::vector<std::string>& names, const json& params,
                   const std::vector<std::string>& values) {
  std::map<std::string, std::string> by_name;
  for (std::size_t i = 0; i < values.size() && i < names.size(); ++i) {
    auto named = text_of(params[i], "parameter_name");
    by_name[named.empty() ? names[i] : named] = values[i];
  }
  std::string out;
  std::size_t at = 0;
  while (at < text.size()) {
    auto open = text.find("{{", at);
    auto close = open == std::string::npos ? std::string::npos : text.find("}}", open + 2);
    if (close == std::string::npos) {
      out.append(text, at, std::string::npos);
      break;
    }
    out.append(text, at, open - at);
    auto it = by_name.find(text.substr(open + 2, close - open - 2));
    out += it != by_name.end() ? it->second : text.substr(open, close + 2 - open);
    at = close + 2;
  }
  return out;
}

void check_header(const json* def, const json* req, const std::string& name) {
  if (def == nullptr) {
    if (req != nullptr) {
      throw problem{"Template '" + name + "' has no header, but header parameters were given."};
    }
    return;
  }
  auto format = upper(text_of(*def, "format"));
  const json& params = req ? parameters_of(*req, "header") : json::array();
  if (format == "TEXT" || format.empty()) {
    auto want = placeholders(text_of(*def, "text")).size();
    if (params.size() != want) {
      throw problem{"Template '" + name + "' header takes " + std::to_string(want) + " parameter(s), " +
                    std::to_string(params.size()) + " given."};
    }
    for (const auto& p : params) {
      text_parameter(p, "header");
    }
    return;
  }
  if (format == "IMAGE" || format == "VIDEO" || format == "DOCUMENT") {
    auto kind = lower(format);
    if (params.size() != 1 || text_of(params[0], "type") != kind || !params[0].contains(kind) ||
        !params[0][kind].is_object() || (text_of(params[0][kind], "link").empty() && text_of(params[0][kind], "id").empty())) {
      throw problem{"Template '" + name + "' header needs one " + kind + " parameter with a link or id."};
    }
    return;
  }
  // LOCATION and formats Meta adds later: passed through as given.
}

void check_buttons(const json* def, const json& requested, const std::string& name) {
  const json empty = json::array();
  const json& buttons = def ? (def->contains("buttons") && (*def)["buttons"].is_array() ? (*def)["buttons"] : empty)
                            : empty;
  for (const auto& c : requested) {
    if (!c.is_object() || lower(text_of(c, "type")) != "button") {
      continue;
    }
    std::int64_t index = -1;
    if (c.contains("index") && c["index"].is_number_integer()) {
      index = c["index"].get<std::int64_t>();
    } else if (c.contains("index") && c["index"].is_string()) {
      auto s = c["index"].get<std::string>();
      if (!s.empty() && s.size() < 4 && std::all_of(s.begin(), s.end(), ::isdigit)) index = std::stoll(s);
    }
    if (index < 0 || index >= static_cast<std::int64_t>(buttons.size())) {
      throw problem{"Template '" + name + "' has no button at index " +
                    (c.contains("index") ? c["index"].dump() : std::string{"(none)"}) + "."};
    }
    const auto& b = buttons[static_cast<std::size_t>(index)];
    auto sub = lower(text_of(c, "sub_type"));
    auto type = upper(text_of(b, "type"));
    if ((sub == "url" && type != "URL") || (sub == "quick_reply" && type != "QUICK_REPLY") ||
        (sub != "url" && sub != "quick_reply" && sub != "copy_code" && sub != "flow")) {
      throw problem{"Template '" + name + "' button " + std::to_string(index) + " is " + type +
                    ", not sub_type '" + sub + "'."};
    }
    const auto& params = parameters_of(c, "button " + std::to_string(index));
    if (type == "URL") {
      auto want = placeholders(text_of(b, "url")).size();
      if (params.size() != want) {
        throw problem{"Template '" + name + "' button " + std::to_string(index) + " takes " + std::to_string(want) +
                      " parameter(s), " + std::to_string(params.size()) + " given."};
      }
    }
  }
}

}  // namespace

std::size_t placeholder_count(std::string_view text) { return placeholders(text).size(); }

template_choice choose_template(const std::vector<template_def>& templates, std::string_view spec,
                                bool without_parameters) {
  template_choice out;
  auto at = spec.rfind('@');
  out.name = std::string{spec.substr(0, at)};
  std::string language = at == std::string_view::npos ? std::string{} : std::string{spec.substr(at + 1)};
  std::vector<const template_def*> approved;
  bool known = false;
  for (const auto& t : templates) {
    if (t.name != out.name || (!language.empty() && t.language != language)) {
      continue;
    }
    known = true;
    if (upper(t.status) == "APPROVED") {
      approved.push_back(&t);
    }
  }
  const std::string named = "Template '" + std::string{spec} + "'";
  if (approved.empty()) {
    out.problem = known ? named + " is not APPROVED." : named + " does not exist.";
    return out;
  }
  if (approved.size() > 1) {
    std::string langs;
    for (const auto* t : approved) langs += (langs.empty() ? "" : ", ") + t->language;
    out.problem = named + " exists in several languages (" + langs + "); name one as name@language.";
    return out;
  }
  const auto* t = approved.front();
  if (without_parameters) {
    std::size_t n = 0;
    for (const auto& c : t->components) {
      if (c.is_object()) n += placeholder_count(text_of(c, "text"));
    }
    if (n > 0) {
      out.problem = named + " takes parameters; a welcome message is sent without any.";
      return out;
    }
  }
  out.language = t->language;
  out.ok = true;
  return out;
}

std::optional<template_page> parse_template_page(std::string_view body) {
  auto j = json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array()) {
    return std::nullopt;
  }
  template_page page;
  for (const auto& t : j["data"]) {
    if (!t.is_object()) {
      continue;
    }
    template_def d;
    d.name = text_of(t, "name");
    d.language = text_of(t, "language");
    d.status = text_of(t, "status");
    d.category = text_of(t, "category");
    if (t.contains("quality_score") && t["quality_score"].is_object()) {
      d.quality = text_of(t["quality_score"], "score");
    }
    if (t.contains("components") && t["components"].is_array()) {
      d.components = t["components"];
    }
    if (!d.name.empty()) {
      page.templates.push_back(std::move(d));
    }
  }
  if (j.contains("paging") && j["paging"].is_object()) {
    auto next = text_of(j["paging"], "next");
    if (!next.empty()) {
      page.next = next;
    }
  }
  return page;
}

json template_json(const template_def& t) {
  return {{"name", t.name},
          {"language", t.language},
          {"status", t.status},
          {"category", t.category},
          {"quality", t.quality.empty() ? json(nullptr) : json(t.quality)},
          {"components", t.components}};
}

template_check check_template_send(const std::vector<template_def>& templates, const json& requested) {
  template_check out;
  const auto name = text_of(requested, "name");
  const auto language = text_of(requested, "language");
  const template_def* def = nullptr;
  for (const auto& t : templates) {
    if (t.name == name && t.language == language) {
      def = &t;
      break;
    }
  }
  if (def == nullptr) {
    out.problem = "Template '" + name + "' does not exist in language '" + language + "'.";
    return out;
  }
  if (upper(def->status) != "APPROVED") {
    out.problem = "Template '" + name + "' (" + language + ") is " + def->status + ", not APPROVED.";
    return out;
  }
  try {
    const json& req = requested.contains("components") ? requested["components"] : json::array();
    const json* req_header = nullptr;
    const json* req_body = nullptr;
    for (const auto& c : req) {
      if (!c.is_object()) {
        throw problem{"Each template component must be an object."};
      }
      auto type = lower(text_of(c, "type"));
      if (type == "header") {
        req_header = &c;
      } else if (type == "body") {
        req_body = &c;
      } else if (type != "button") {
        throw problem{"Template component type '" + text_of(c, "type") + "' is not header, body or button."};
      }
    }
    check_header(component(def->components, "HEADER"), req_header, name);
    const json* body = component(def->components, "BODY");
    const auto body_text = body ? text_of(*body, "text") : std::string{};
    const auto names = placeholders(body_text);
    const json& params = req_body ? parameters_of(*req_body, "body") : json::array();
    if (params.size() != names.size()) {
      throw problem{"Template '" + name + "' body takes " + std::to_string(names.size()) + " parameter(s), " +
                    std::to_string(params.size()) + " given."};
    }
    std::vector<std::string> values;
    for (const auto& p : params) {
      if (!p.is_object()) {
        throw problem{"body: each parameter must be an object."};
      }
      values.push_back(text_parameter(p, "body"));
    }
    check_buttons(component(def->components, "BUTTONS"), req, name);
    out.rendered_body = render(body_text, names, params, values);
  } catch (const problem& p) {
    out.problem = p.what;
    return out;
  }
  out.ok = true;
  out.category = def->category;
  return out;
}

}  // namespace wachat::domain

#include "domain/outbound.hpp"

#include <algorithm>
#include <cctype>

namespace wachat::domain {
namespace {

using nlohmann::json;

struct problem_error {
  request_problem p;
};

[[noreturn]] void invalid(std::string message) { throw problem_error{{"invalid_field", std::move(message)}}; }

// Characters as people count them: UTF-8 code points (the body was valid UTF-8 to parse).
std::size_t chars(const std::string& s) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

const json* field(const json& o, const char* key) {
  auto it = o.find(key);
  return it == o.end() || it->is_null() ? nullptr : &*it;
}

std::optional<std::string> opt_text(const json& o, const char* key, std::size_t max_chars) {
  const auto* v = field(o, key);
  if (v == nullptr) {
    return std::nullopt;
  }
  if (!v->is_string()) {
    invalid(std::string{"Field '"} + key + "' must be a string.");
  }
  auto s = v->get<std::string>();
  if (chars(s) > max_chars) {
    invalid(std::string{"Field '"} + key + "' must be at most " + std::to_string(max_chars) + " characters.");
  }
  return s;
}

std::string req_text(const json& o, const char* key, std::size_t max_chars) {
  auto s = opt_text(o, key, max_chars);
  if (!s || s->empty()) {
    invalid(std::string{"Field '"} + key + "' is required.");
  }
  return *s;
}

// An id given as a string or a whole number (ours are numbers, Meta's wamids strings).
std::optional<std::string> opt_ref(const json& o, const char* key) {
  const auto* v = field(o, key);
  if (v == nullptr) {
    return std::nullopt;
  }
  if (v->is_number_integer()) {
    return std::to_string(v->get<std::int64_t>());
  }
  if (!v->is_string() || v->get<std::string>().empty() || v->get<std::string>().size() > 512) {
    invalid(std::string{"Field '"} + key + "' must be a message id or a wamid.");
  }
  return v->get<std::string>();
}

bool is_http_url(const std::string& url) {
  auto lower = url.substr(0, 8);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  std::size_t host = lower.starts_with("https://") ? 8 : lower.starts_with("http://") ? 7 : 0;
  if (host == 0 || url.size() <= host || url[host] == '/') {
    return false;
  }
  return std::none_of(url.begin(), url.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7F; });
}

std::string req_url(const json& o) {
  auto url = req_text(o, "url", 2048);
  if (!is_http_url(url)) {
    invalid("Field 'url' must be an http:// or https:// URL.");
  }
  return url;
}

// An image's or document's file: a link Meta fetches (`url`) or a file uploaded to wachat
// (`media_id`), exactly one of them.
void read_file_source(const json& o, outbound_request& r) {
  const bool has_url = field(o, "url") != nullptr;
  const bool has_upload = field(o, "media_id") != nullptr;
  if (has_url == has_upload) {
    invalid("Give exactly one of 'url' (a link WhatsApp fetches) and 'media_id' (a file uploaded with"
            " POST /api/sites/{site}/media).");
  }
  if (has_url) {
    r.url = req_url(o);
  } else {
    r.media_id = req_text(o, "media_id", 512);
  }
}

outbound_kind kind_of(const std::string& type) {
  if (type == "text") return outbound_kind::text;
  if (type == "image") return outbound_kind::image;
  if (type == "document") return outbound_kind::document;
  if (type == "template") return outbound_kind::template_message;
  if (type == "reaction") return outbound_kind::reaction;
  invalid("Field 'type' must be text, image, document, template or reaction.");
}

json checked_template(const json& o) {
  const auto* t = field(o, "template");
  if (t == nullptr || !t->is_object()) {
    invalid("Field 'template' must be an object with name and language.");
  }
  const auto* name = field(*t, "name");
  if (name == nullptr || !name->is_string() || name->get<std::string>().empty() ||
      name->get<std::string>().size() > 512) {
    invalid("Field 'template.name' is required.");
  }
  const auto* lang = field(*t, "language");
  std::string code;
  if (lang != nullptr && lang->is_string()) {
    code = lang->get<std::string>();
  } else if (lang != nullptr && lang->is_object() && lang->contains("code") && (*lang)["code"].is_string()) {
    code = (*lang)["code"].get<std::string>();
  }
  if (code.empty() || code.size() > 32) {
    invalid("Field 'template.language' is required (a code such as en_US).");
  }
  json out{{"name", *name}, {"language", code}};
  if (const auto* comps = field(*t, "components")) {
    if (!comps->is_array()) {
      invalid("Field 'template.components' must be an array.");
    }
    out["components"] = *comps;
  }
  return out;
}

std::string type_name(outbound_kind k) {
  switch (k) {
    case outbound_kind::text: return "text";
    case outbound_kind::image: return "image";
    case outbound_kind::document: return "document";
    case outbound_kind::template_message: return "template";
    case outbound_kind::reaction: return "reaction";
  }
  return "text";
}

outbound_request parse_object(const json& o) {
  outbound_request r;
  const auto* type = field(o, "type");
  if (type == nullptr || !type->is_string()) {
    invalid("Field 'type' is required.");
  }
  r.kind = kind_of(type->get<std::string>());
  r.sender_id = req_text(o, "sender_id", max_id_chars);
  r.sender_name = req_text(o, "sender_name", max_id_chars);
  r.client_message_id = opt_text(o, "client_message_id", max_id_chars);
  if (r.client_message_id && r.client_message_id->empty()) {
    invalid("Field 'client_message_id' must not be empty.");
  }
  r.reply_to = opt_ref(o, "reply_to");
  switch (r.kind) {
    case outbound_kind::text:
      r.text = req_text(o, "text", max_text_chars);
      break;
    case outbound_kind::image:
      read_file_source(o, r);
      r.caption = opt_text(o, "caption", max_caption_chars);
      break;
    case outbound_kind::document:
      read_file_source(o, r);
      // An upload has its own name; a link needs one.
      if (r.media_id.empty() || field(o, "filename") != nullptr) {
        r.filename = req_text(o, "filename", 240);
      }
      r.caption = opt_text(o, "caption", max_caption_chars);
      break;
    case outbound_kind::template_message:
      r.template_object = checked_template(o);
      break;
    case outbound_kind::reaction: {
      if (r.reply_to) {
        invalid("A reaction takes no 'reply_to'.");
      }
      auto target = opt_ref(o, "message_id");
      if (!target) {
        invalid("Field 'message_id' is required.");
      }
      r.reaction_target = *target;
      auto emoji = opt_text(o, "emoji", 16);
      if (!emoji) {
        invalid("Field 'emoji' is required (empty removes the reaction).");
      }
      r.emoji = *emoji;
      break;
    }
  }
  // json objects keep their keys sorted: the dump is canonical.
  json fp{{"type", type_name(r.kind)}, {"sender_id", r.sender_id}};
  auto put = [&fp](const char* k, const std::string& v) {
    if (!v.empty()) fp[k] = v;
  };
  put("text", r.text);
  put("url", r.url);
  put("media_id", r.media_id);
  put("filename", r.filename);
  put("message_id", r.reaction_target);
  if (r.kind == outbound_kind::reaction) fp["emoji"] = r.emoji;
  if (r.caption) fp["caption"] = *r.caption;
  if (r.reply_to) fp["reply_to"] = *r.reply_to;
  if (!r.template_object.is_null()) fp["template"] = r.template_object;
  r.fingerprint = fp.dump();
  return r;
}

// The path of the first string (or key) holding U+0000, e.g. "template.components[0]...".
std::optional<std::string> nul_in(const json& j, const std::string& path) {
  if (j.is_string()) {
    return j.get_ref<const std::string&>().find('\0') != std::string::npos ? std::optional{path} : std::nullopt;
  }
  if (j.is_array()) {
    for (std::size_t i = 0; i < j.size(); ++i) {
      if (auto p = nul_in(j[i], path + "[" + std::to_string(i) + "]")) {
        return p;
      }
    }
  }
  if (j.is_object()) {
    for (const auto& [key, value] : j.items()) {
      const auto here = path.empty() ? key : path + "." + key;
      if (key.find('\0') != std::string::npos) {
        return here;
      }
      if (auto p = nul_in(value, here)) {
        return p;
      }
    }
  }
  return std::nullopt;
}

}  // namespace

std::variant<outbound_request, request_problem> parse_outbound(std::string_view body) {
  json doc;
  try {
    doc = json::parse(body);
  } catch (const json::exception&) {
    return request_problem{"invalid_json", "Request body is not valid JSON."};
  }
  if (!doc.is_object()) {
    return request_problem{"invalid_json", "Request body must be a JSON object."};
  }
  if (auto where = nul_in(doc, "")) {
    // PostgreSQL's text and jsonb cannot hold it, and no message needs it.
    return request_problem{"invalid_field", "Field '" + *where + "' must not contain NUL characters (\\u0000)."};
  }
  try {
    return parse_object(doc);
  } catch (const problem_error& e) {
    return e.p;
  }
}

bool needs_open_window(const outbound_request& r) { return r.kind != outbound_kind::template_message; }

send_verdict decide_send(const outbound_request& r, const std::optional<std::string>& earlier_fingerprint,
                         bool has_recipient, std::optional<std::int64_t> window_expires_at, std::int64_t now,
                         bool marketing_opt_out) {
  if (earlier_fingerprint) {
    return *earlier_fingerprint == r.fingerprint ? send_verdict::replay : send_verdict::idempotency_conflict;
  }
  if (!has_recipient) {
    return send_verdict::no_recipient;
  }
  if (needs_open_window(r) && !window_open(window_expires_at, now)) {
    return send_verdict::window_closed;
  }
  if (marketing_opt_out && r.kind == outbound_kind::template_message && r.template_category == "MARKETING") {
    return send_verdict::recipient_opted_out;
  }
  return send_verdict::go;
}

retry_verdict decide_retry(bool failed_send, bool is_template, bool has_recipient,
                           std::optional<std::int64_t> window_expires_at, std::int64_t now) {
  if (!failed_send) {
    return retry_verdict::invalid_state;
  }
  if (!has_recipient) {
    return retry_verdict::no_recipient;
  }
  if (!is_template && !window_open(window_expires_at, now)) {
    return retry_verdict::window_closed;
  }
  return retry_verdict::go;
}

json graph_send_body(const outbound_request& r, const recipient& to, std::int64_t message_id,
                     const std::optional<std::string>& reply_wamid) {
  json b{{"messaging_product", "whatsapp"}, {"recipient_type", "individual"}, {"type", type_name(r.kind)}};
  if (to.phone) {
    b["to"] = *to.phone;
  } else if (to.user_id) {
    b["recipient"] = *to.user_id;
  }
  switch (r.kind) {
    case outbound_kind::text:
      b["text"] = {{"body", r.text}};
      break;
    case outbound_kind::image:
      b["image"] = r.media_id.empty() ? json{{"link", r.url}} : json{{"id", ""}};
      if (r.caption) b["image"]["caption"] = *r.caption;
      break;
    case outbound_kind::document:
      b["document"] = r.media_id.empty() ? json{{"link", r.url}} : json{{"id", ""}};
      b["document"]["filename"] = r.filename;
      if (r.caption) b["document"]["caption"] = *r.caption;
      break;
    case outbound_kind::template_message: {
      json t{{"name", r.template_object["name"]}, {"language", {{"code", r.template_object["language"]}}}};
      if (r.template_object.contains("components")) t["components"] = r.template_object["components"];
      b["template"] = std::move(t);
      break;
    }
    case outbound_kind::reaction:
      b["reaction"] = {{"message_id", r.reaction_target}, {"emoji", r.emoji}};
      break;
  }
  if (reply_wamid && r.kind != outbound_kind::reaction) {
    b["context"] = {{"message_id", *reply_wamid}};
  }
  if (!r.media_id.empty()) {
    b[upload_marker] = r.media_id;
  }
  b["biz_opaque_callback_data"] = std::to_string(message_id);
  return b;
}

std::string stored_content(const outbound_request& r) {
  switch (r.kind) {
    case outbound_kind::text: return r.text;
    case outbound_kind::image:
    case outbound_kind::document: return r.caption.value_or("");
    case outbound_kind::template_message:
      return r.rendered_text.value_or(r.template_object["name"].get<std::string>());
    case outbound_kind::reaction: return r.emoji;
  }
  return {};
}

std::string stored_content_type(const outbound_request& r) {
  return r.kind == outbound_kind::template_message ? "whatsapp_template" : type_name(r.kind);
}

std::chrono::milliseconds retry_delay(int attempt, graph_error_action action, double jitter) {
  using std::chrono::milliseconds;
  const std::int64_t base = action == graph_error_action::retry_throttled ||
                                    action == graph_error_action::retry_pair_limit
                                ? 4000
                                : 1000;
  const std::int64_t cap = 300000;
  std::int64_t step = base;
  for (int i = 1; i < attempt && step < cap; ++i) {
    step *= 2;
  }
  step = std::min(step, cap);
  jitter = std::clamp(jitter, 0.0, 0.999999);
  return milliseconds(step / 2 + static_cast<std::int64_t>(jitter * static_cast<double>(step / 2)));
}

failed_attempt_decision decide_failed_attempt(const graph_error& error, bool request_sent, int attempt,
                                              double jitter) {
  failed_attempt_decision d;
  d.action = classify_graph_error(error);
  // A transport failure after the request left: Meta may have taken it.
  if (error.transport && request_sent) {
    d.what = failed_attempt_decision::kind::doubt;
    d.retryable = true;
    return d;
  }
  switch (d.action) {
    case graph_error_action::retry_transient:
    case graph_error_action::retry_throttled:
    case graph_error_action::retry_pair_limit:
      d.retryable = true;
      if (attempt >= max_send_attempts) {
        return d;  // given up; an agent may retry it by hand
      }
      d.what = failed_attempt_decision::kind::retry;
      d.delay = retry_delay(attempt, d.action, jitter);
      return d;
    case graph_error_action::hold_off:            // spam limits: surfaced, not retried soon
    case graph_error_action::credentials_broken:  // sendable once the settings are fixed
      d.retryable = true;
      return d;
    case graph_error_action::fail:
    case graph_error_action::fail_window_closed:
    case graph_error_action::fail_template_stale:
      return d;
  }
  return d;
}

}  // namespace wachat::domain

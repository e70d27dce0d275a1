#include "infra/inbound_values.hpp"

namespace wachat::infra {

using nlohmann::json;

std::string pg_text(std::string_view s) {
  std::string out{s};
  std::erase(out, '\0');
  return out;
}

std::optional<std::string> non_empty(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string>{pg_text(s)};
}

json errors_value(const std::vector<domain::webhook_error>& errors) {
  json arr = json::array();
  for (const auto& e : errors) {
    arr.push_back({{"code", e.code},
                   {"title", pg_text(e.title)},
                   {"message", pg_text(e.message)},
                   {"details", pg_text(e.details)}});
  }
  return arr;
}

json extra_value(const domain::inbound_message& m) {
  json j = json::object();
  if (m.reply) {
    j["reply"] = {{"kind", pg_text(m.reply->kind)},
                  {"id", pg_text(m.reply->id)},
                  {"title", pg_text(m.reply->title)}};
    if (!m.reply->description.empty()) {
      j["reply"]["description"] = pg_text(m.reply->description);
    }
    if (!m.reply->response_json.empty()) {
      j["reply"]["response_json"] = pg_text(m.reply->response_json);
    }
  }
  if (m.context.forwarded || m.context.frequently_forwarded) {
    j["forwarded"] = true;
    j["frequently_forwarded"] = m.context.frequently_forwarded;
  }
  if (!m.referral_json.empty()) {
    // Minified JSON from the parser; \u0000 inside it would make jsonb refuse the whole row.
    auto referral = json::parse(m.referral_json, nullptr, false);
    if (!referral.is_discarded() && pg_json(referral).find("\\u0000") == std::string::npos) {
      j["referral"] = std::move(referral);
    }
  }
  if (m.system) {
    j["system"] = {{"type", pg_text(m.system->type)}, {"new_wa_id", pg_text(m.system->new_wa_id)}};
  }
  if (m.media) {
    if (m.media->voice) {
      j["voice"] = true;
    }
    if (m.media->animated) {
      j["animated"] = true;
    }
  }
  if (!m.errors.empty()) {
    j["errors"] = errors_value(m.errors);
  }
  if (m.type != m.content_type) {
    j["type"] = pg_text(m.type);
  }
  return j.empty() ? json(nullptr) : j;
}

std::string pg_json(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace wachat::infra

#include "webhook_generator.hpp"

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string_view>

namespace wachat::bench {
namespace {

// Placeholder runs made of characters that JSON does not escape and that neither a run id nor
// the filler text can contain, so every run found in the dumped template is one of ours.
constexpr std::size_t seq_width = 12;
constexpr std::size_t phone_width = 8;
constexpr std::size_t time_width = 10;
const std::string seq_placeholder(seq_width, '~');
const std::string phone_placeholder(phone_width, '^');
const std::string time_placeholder(time_width, '|');

// What customers write; a non-ASCII letter keeps the server's UTF-8 path honest.
constexpr std::string_view filler_words[] = {
    "Olá,", "preciso", "de",    "ajuda",     "com", "o",      "meu", "pedido",  "que", "ainda",
    "não",  "chegou.", "Podem", "verificar", "o",   "status", "da",  "entrega", "por", "favor?"};

std::vector<std::size_t> find_all(const std::string& text, const std::string& needle) {
  std::vector<std::size_t> out;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    out.push_back(at);
    at += needle.size() - 1;
  }
  return out;
}

void write_digits(std::string& out, std::size_t at, std::size_t width, std::uint64_t value) {
  for (std::size_t i = width; i-- > 0;) {
    out[at + i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

}  // namespace

bool webhook_generator::valid_run_id(const std::string& run_id) {
  if (run_id.empty() || run_id.size() > 64) {
    return false;
  }
  for (char c : run_id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) {
      return false;
    }
  }
  return true;
}

webhook_generator::webhook_generator(std::string run_id, std::size_t approx_bytes,
                                     std::uint64_t visitors)
    : run_id_(std::move(run_id)), visitors_(visitors) {
  if (!valid_run_id(run_id_)) {
    throw std::invalid_argument("run id must be 1-64 characters of [A-Za-z0-9_-]");
  }
  if (visitors_ > 100000000ULL) {
    throw std::invalid_argument("at most 10^8 visitors (8 digits of phone number)");
  }
  // Size the customer's text so that the whole body lands near the requested size.
  // The bare template already holds one word of text (a body is never empty).
  auto bare = build_template(0).size() - filler_words[0].size();
  template_ = build_template(approx_bytes > bare ? approx_bytes - bare : 0);
  locate_placeholders();
}

std::string webhook_generator::build_template(std::size_t filler_bytes) const {
  std::string text;
  for (std::size_t i = 0; text.size() < filler_bytes || text.empty(); ++i) {
    if (!text.empty()) {
      text += ' ';
    }
    text += filler_words[i % std::size(filler_words)];
  }
  // A Brazilian mobile number (13 digits), as WhatsApp ids are: country code, area, number.
  const std::string phone = "55119" + phone_placeholder;
  // Field order and ids as in Meta's documented example of a text message notification. The
  // profile name is the customer's, so it stays the same across their messages.
  nlohmann::ordered_json doc = {
      {"object", "whatsapp_business_account"},
      {"entry",
       {{{"id", "102290129340398"},
         {"changes",
          {{{"value",
             {{"messaging_product", "whatsapp"},
              {"metadata",
               {{"display_phone_number", "15550783881"}, {"phone_number_id", "106540352242922"}}},
              {"contacts",
               {{{"profile", {{"name", "Cliente " + phone_placeholder}}}, {"wa_id", phone}}}},
              {"messages",
               {{{"from", phone},
                 {"id", "wamid." + run_id_ + "." + seq_placeholder},
                 {"timestamp", time_placeholder},
                 {"type", "text"},
                 {"text", {{"body", text}}}}}}}},
            {"field", "messages"}}}}}}}};
  return doc.dump();
}

void webhook_generator::locate_placeholders() {
  seq_at_ = find_all(template_, seq_placeholder);
  phone_at_ = find_all(template_, phone_placeholder);
  time_at_ = find_all(template_, time_placeholder);
  if (seq_at_.size() != 1 || phone_at_.size() != 3 || time_at_.size() != 1) {
    throw std::logic_error("webhook template placeholders not where expected");
  }
}

void webhook_generator::render(std::uint64_t seq, std::int64_t unix_time, std::string& out) const {
  out.assign(template_);
  for (auto at : seq_at_) {
    write_digits(out, at, seq_width, seq);
  }
  const auto tail = phone_tail(seq);
  for (auto at : phone_at_) {
    write_digits(out, at, phone_width, tail);
  }
  for (auto at : time_at_) {
    write_digits(out, at, time_width, static_cast<std::uint64_t>(unix_time));
  }
}

// Spread senders over many numbers, as many customers write to one business at once. The
// multiplier is odd and not a multiple of 5, so distinct visitors below 10^8 get distinct numbers.
std::uint64_t webhook_generator::phone_tail(std::uint64_t seq) const {
  const std::uint64_t who = visitors_ > 0 ? seq % visitors_ : seq;
  return (who * 2654435761ULL) % 100000000ULL;
}

std::string webhook_generator::wa_id(std::uint64_t seq) const {
  std::string out = "55119" + std::string(phone_width, '0');
  write_digits(out, 5, phone_width, phone_tail(seq));
  return out;
}

std::string webhook_generator::run_marker() const {
  return "wamid." + run_id_ + ".";
}

}  // namespace wachat::bench

#include "domain/media.hpp"

#include <algorithm>
#include <array>
#include <charconv>

namespace wachat::domain {
namespace {

constexpr std::uint64_t mb = 1024 * 1024;

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// RFC 9110 token characters: what a type and a subtype are made of.
bool token_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
    return true;
  }
  return std::string_view{"!#$%&'*+-.^_`|~"}.find(c) != std::string_view::npos;
}

bool well_formed_essence(std::string_view essence) {
  auto slash = essence.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == essence.size()) {
    return false;
  }
  return std::all_of(essence.begin(), essence.begin() + static_cast<std::ptrdiff_t>(slash), token_char) &&
         std::all_of(essence.begin() + static_cast<std::ptrdiff_t>(slash) + 1, essence.end(), token_char);
}

struct known_type {
  std::string_view mime;
  std::string_view extension;
};
constexpr std::array<known_type, 23> known_types{{
    {"image/jpeg", "jpg"},
    {"image/png", "png"},
    {"image/webp", "webp"},
    {"image/gif", "gif"},
    {"video/mp4", "mp4"},
    {"video/3gpp", "3gp"},
    {"audio/aac", "aac"},
    {"audio/amr", "amr"},
    {"audio/mpeg", "mp3"},
    {"audio/mp4", "m4a"},
    {"audio/ogg", "ogg"},
    {"audio/opus", "opus"},
    {"application/pdf", "pdf"},
    {"text/plain", "txt"},
    {"text/csv", "csv"},
    {"application/msword", "doc"},
    {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"},
    {"application/vnd.ms-excel", "xls"},
    {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"},
    {"application/vnd.ms-powerpoint", "ppt"},
    {"application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx"},
    {"application/zip", "zip"},
    {"application/octet-stream", "bin"},
}};

// The length of the valid UTF-8 sequence at `s[i]` (no overlongs, no surrogates); 0 if invalid.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  auto cont = [&](std::size_t k) { return k < s.size() && (b(k) & 0xC0) == 0x80; };
  unsigned char c = b(i);
  if (c < 0x80) {
    return 1;
  }
  if (c >= 0xC2 && c <= 0xDF) {
    return cont(i + 1) ? 2 : 0;
  }
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(i + 1) || !cont(i + 2)) {
      return 0;
    }
    if ((c == 0xE0 && b(i + 1) < 0xA0) || (c == 0xED && b(i + 1) >= 0xA0)) {
      return 0;
    }
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) {
      return 0;
    }
    if ((c == 0xF0 && b(i + 1) < 0x90) || (c == 0xF4 && b(i + 1) >= 0x90)) {
      return 0;
    }
    return 4;
  }
  return 0;
}

// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
std::string_view utf8_prefix(std::string_view s, std::size_t max) {
  if (s.size() <= max) {
    return s;
  }
  std::size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) {
    --end;
  }
  return s.substr(0, end);
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  if (s.empty()) {
    return std::nullopt;
  }
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || ptr != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

}  // namespace

std::uint64_t media_size_limit(std::string_view content_type, bool animated_sticker) {
  if (content_type == "image") {
    return 5 * mb;
  }
  if (content_type == "video" || content_type == "audio") {
    return 16 * mb;
  }
  if (content_type == "document") {
    return 100 * mb;
  }
  if (content_type == "sticker") {
    return animated_sticker ? 500 * 1024 : 100 * 1024;
  }
  return 0;
}

std::string mime_essence(std::string_view mime) {
  auto semi = mime.find(';');
  auto essence = trim(mime.substr(0, semi));
  std::string out;
  out.reserve(essence.size());
  for (char c : essence) {
    out += lower(c);
  }
  return out;
}

bool media_mime_accepted(std::string_view content_type, std::string_view mime) {
  // The whole value is kept and served as a Content-Type: nothing but printable ASCII in it.
  if (mime.size() > 255 || std::any_of(mime.begin(), mime.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7E;
      })) {
    return false;
  }
  auto e = mime_essence(mime);
  if (!well_formed_essence(e)) {
    return false;
  }
  auto one_of = [&](std::initializer_list<std::string_view> list) {
    return std::find(list.begin(), list.end(), e) != list.end();
  };
  if (content_type == "image") {
    return one_of({"image/jpeg", "image/png"});
  }
  if (content_type == "video") {
    return one_of({"video/mp4", "video/3gpp"});
  }
  if (content_type == "audio") {
    return one_of({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg", "audio/opus"});
  }
  if (content_type == "sticker") {
    return e == "image/webp";
  }
  return content_type == "document";
}

std::string extension_for_mime(std::string_view mime) {
  auto e = mime_essence(mime);
  for (const auto& k : known_types) {
    if (k.mime == e) {
      return std::string{k.extension};
    }
  }
  return "bin";
}

std::string media_file_name(std::string_view given, std::string_view content_type,
                            std::int64_t message_id, std::string_view mime) {
  constexpr std::size_t max_bytes = 120;
  // The last path component: a name is never a path, whoever wrote it.
  if (auto cut = given.find_last_of("/\\"); cut != std::string_view::npos) {
    given.remove_prefix(cut + 1);
  }
  std::string clean;
  for (std::size_t i = 0; i < given.size();) {
    auto n = utf8_length(given, i);
    if (n == 0) {
      clean += '_';  // a byte that is not UTF-8
      ++i;
      continue;
    }
    auto c = static_cast<unsigned char>(given[i]);
    if (n == 1 && (c < 0x20 || c == 0x7F || c == '"' || c == ':' || c == '*' || c == '?' ||
                   c == '<' || c == '>' || c == '|')) {
      if (c != 0) {
        clean += '_';
      }
      ++i;
      continue;
    }
    clean.append(given.substr(i, n));
    i += n;
  }
  auto body = std::string_view{clean};
  while (!body.empty() && (body.front() == '.' || body.front() == ' ')) {
    body.remove_prefix(1);  // no hidden files, no "..", no leading blanks
  }
  while (!body.empty() && (body.back() == ' ' || body.back() == '.')) {
    body.remove_suffix(1);
  }
  bool meaningful = std::any_of(body.begin(), body.end(), [](char c) { return c != '_'; });
  if (!meaningful) {
    return std::string{content_type} + "_" + std::to_string(message_id) + "." + extension_for_mime(mime);
  }
  if (body.size() <= max_bytes) {
    return std::string{body};
  }
  // Too long: keep a short extension and as much of the name as fits before it.
  std::string_view ext;
  if (auto dot = body.rfind('.'); dot != std::string_view::npos && body.size() - dot <= 16) {
    ext = body.substr(dot);
  }
  auto stem = utf8_prefix(body.substr(0, body.size() - ext.size()), max_bytes - ext.size());
  return std::string{stem} + std::string{ext};
}

byte_range_answer read_byte_range(std::string_view header, std::uint64_t size) {
  byte_range_answer whole;
  header = trim(header);
  if (header.size() < 6 || !std::equal(header.begin(), header.begin() + 6, "bytes=",
                                       [](char a, char b) { return lower(a) == b; })) {
    return whole;
  }
  auto spec = trim(header.substr(6));
  if (spec.find(',') != std::string_view::npos) {
    return whole;  // several ranges: the whole file is a valid answer
  }
  auto dash = spec.find('-');
  if (dash == std::string_view::npos) {
    return whole;
  }
  auto first_text = trim(spec.substr(0, dash));
  auto last_text = trim(spec.substr(dash + 1));
  byte_range_answer out;
  out.what = byte_range_answer::kind::partial;
  if (first_text.empty()) {
    auto suffix = parse_u64(last_text);
    if (!suffix) {
      return whole;
    }
    if (*suffix == 0 || size == 0) {
      out.what = byte_range_answer::kind::unsatisfiable;
      return out;
    }
    out.first = *suffix >= size ? 0 : size - *suffix;
    out.last = size - 1;
    return out;
  }
  auto first = parse_u64(first_text);
  if (!first) {
    return whole;
  }
  std::uint64_t last = size == 0 ? 0 : size - 1;
  if (!last_text.empty()) {
    auto l = parse_u64(last_text);
    if (!l || *l < *first) {
      return whole;
    }
    last = std::min(*l, last);
  }
  if (*first >= size) {
    out.what = byte_range_answer::kind::unsatisfiable;
    return out;
  }
  out.first = *first;
  out.last = last;
  return out;
}

std::string media_signature_payload(std::string_view key, std::int64_t expires) {
  return "wachat-media-v1\n" + std::string{key} + "\n" + std::to_string(expires);
}

bool sha256_names(std::string_view sha256, std::string_view digest_hex, std::string_view digest_base64) {
  sha256 = trim(sha256);
  if (sha256.size() == digest_hex.size() &&
      std::equal(sha256.begin(), sha256.end(), digest_hex.begin(),
                 [](char a, char b) { return lower(a) == lower(b); })) {
    return true;
  }
  auto unpadded = [](std::string_view s) {
    while (!s.empty() && s.back() == '=') {
      s.remove_suffix(1);
    }
    return s;
  };
  return !sha256.empty() && unpadded(sha256) == unpadded(digest_base64);
}

bool media_lookup_failed_for_good(const graph_error& e) {
  if (e.transport) {
    return false;
  }
  if (e.code == 100 || e.http_status == 404) {
    return true;
  }
  return classify_graph_error(e) == graph_error_action::fail;
}

}  // namespace wachat::domain

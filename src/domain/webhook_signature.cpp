#include "domain/webhook_signature.hpp"

#include <cstdint>

namespace wachat::domain {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

void append_unit(std::string& out, std::uint32_t unit) {
  static constexpr char digits[] = "0123456789abcdef";
  out += "\\u";
  out.push_back(digits[(unit >> 12) & 0xf]);
  out.push_back(digits[(unit >> 8) & 0xf]);
  out.push_back(digits[(unit >> 4) & 0xf]);
  out.push_back(digits[unit & 0xf]);
}

}  // namespace

std::optional<std::array<unsigned char, 32>> parse_signature_header(std::string_view header) {
  constexpr std::string_view prefix = "sha256=";
  if (!header.starts_with(prefix) || header.size() != prefix.size() + 64) {
    return std::nullopt;
  }
  header.remove_prefix(prefix.size());
  std::array<unsigned char, 32> out{};
  for (std::size_t i = 0; i < 32; ++i) {
    int hi = hex_value(header[2 * i]);
    int lo = hex_value(header[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return std::nullopt;
    }
    out[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  return out;
}

std::optional<std::string> meta_unicode_escaped(std::string_view body) {
  std::size_t i = 0;
  while (i < body.size() && static_cast<unsigned char>(body[i]) < 0x80) {
    ++i;
  }
  if (i == body.size()) {
    return std::nullopt;
  }
  std::string out;
  out.reserve(body.size() + body.size() / 4);
  out.append(body.substr(0, i));
  while (i < body.size()) {
    auto c = static_cast<unsigned char>(body[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    std::size_t len = 0;
    std::uint32_t cp = 0;
    std::uint32_t min = 0;
    if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return std::nullopt;
    }
    if (i + len > body.size()) {
      return std::nullopt;
    }
    for (std::size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(body[i + k]);
      if ((cc & 0xc0) != 0x80) {
        return std::nullopt;
      }
      cp = cp << 6 | (cc & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return std::nullopt;
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      append_unit(out, 0xd800 + (cp >> 10));
      append_unit(out, 0xdc00 + (cp & 0x3ff));
    } else {
      append_unit(out, cp);
    }
    i += len;
  }
  return out;
}

}  // namespace wachat::domain

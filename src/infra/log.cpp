#include "infra/log.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <mutex>

namespace wachat::infra {
namespace {

std::mutex log_mutex;

void append_value(std::string& out, std::string_view v) {
  bool plain = !v.empty();
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
      plain = false;
      break;
    }
  }
  if (plain) {
    out.append(v);
    return;
  }
  out.push_back('"');
  for (char c : v) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out.append(fmt::format("\\x{:02x}", static_cast<unsigned char>(c)));
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

void emit(std::string_view level, std::string_view event, std::initializer_list<log_field> f) {
  auto line = format_log_line(level, event, f);
  line.push_back('\n');
  std::lock_guard lock{log_mutex};
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace

std::string format_log_line(std::string_view level, std::string_view event,
                            std::initializer_list<log_field> fields) {
  auto now = std::chrono::time_point_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now());
  std::string out = fmt::format("ts={:%Y-%m-%dT%H:%M:%S}Z level={} event=", now, level);
  append_value(out, event);
  for (const auto& [k, v] : fields) {
    out.push_back(' ');
    out.append(k);
    out.push_back('=');
    append_value(out, v);
  }
  return out;
}

void log_info(std::string_view e, std::initializer_list<log_field> f) { emit("info", e, f); }
void log_warn(std::string_view e, std::initializer_list<log_field> f) { emit("warn", e, f); }
void log_error(std::string_view e, std::initializer_list<log_field> f) { emit("error", e, f); }

}  // namespace wachat::infra

#pragma once
#include <span>
#include <string_view>

namespace wachat::http {

// One file of the console (src/console), compiled in by cmake/embed_console.cmake.
struct console_asset {
  std::string_view name;  // file name, no directories
  std::string_view body;
  std::string_view etag;  // quoted, from the file's SHA-256
};

std::span<const console_asset> console_assets();

}  // namespace wachat::http

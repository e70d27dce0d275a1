#include "cli_args.hpp"

#include <fmt/format.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <charconv>
#include <cstdio>
#include <string_view>

namespace wachat::bench {

cli_args::cli_args(int argc, char** argv, const std::vector<std::string>& known) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg{argv[i]};
    if (arg == "--help" || arg == "-h") {
      help_ = true;
      continue;
    }
    if (!arg.starts_with("--")) {
      throw usage_error(fmt::format("unexpected argument '{}' (see --help)", arg));
    }
    std::string name;
    std::string value;
    if (auto eq = arg.find('='); eq != std::string_view::npos) {
      name = std::string{arg.substr(2, eq - 2)};
      value = std::string{arg.substr(eq + 1)};
    } else {
      name = std::string{arg.substr(2)};
      if (i + 1 >= argc) {
        throw usage_error(fmt::format("option --{} needs a value", name));
      }
      value = argv[++i];
    }
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      throw usage_error(fmt::format("unknown option --{} (see --help)", name));
    }
    values_[name] = value;
  }
}

std::string cli_args::text(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

std::uint64_t cli_args::number(const std::string& name, std::uint64_t fallback, std::uint64_t min,
                               std::uint64_t max) const {
  auto it = values_.find(name);
  if (it == values_.end()) {
    return fallback;
  }
  const auto& s = it->second;
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || ptr != s.data() + s.size() || value < min || value > max) {
    throw usage_error(
        fmt::format("--{} must be a whole number from {} to {}, got '{}'", name, min, max, s));
  }
  return value;
}

double cli_args::seconds(const std::string& name, double fallback, double min, double max) const {
  return parse_real(name, fallback, min, max, "a number of seconds");
}

double cli_args::real(const std::string& name, double fallback, double min, double max) const {
  return parse_real(name, fallback, min, max, "a number");
}

double cli_args::parse_real(const std::string& name, double fallback, double min, double max,
                            const char* what) const {
  auto it = values_.find(name);
  if (it == values_.end()) {
    return fallback;
  }
  const auto& s = it->second;
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != s.size() || !(value >= min && value <= max)) {
    throw usage_error(
        fmt::format("--{} must be {} from {} to {}, got '{}'", name, what, min, max, s));
  }
  return value;
}

double own_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto sec = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
  return sec(usage.ru_utime) + sec(usage.ru_stime);
}

std::int64_t unix_us_now() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int run_tool(const char* name, int argc, char** argv, int (*run)(int, char**)) {
  try {
    return run(argc, argv);
  } catch (const usage_error& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 1;
  }
}

}  // namespace wachat::bench

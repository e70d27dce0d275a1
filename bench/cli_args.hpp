#pragma once
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace wachat::bench {

// A bad command line: main() prints what() as one line and exits 2.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// CPU seconds (user + system) this process has used so far.
double own_cpu_seconds();
// Wall-clock time in Unix microseconds, comparable across the tools of one run.
std::int64_t unix_us_now();

// A tool's main(): runs `run`, and reports what it throws as one line `name: what` on stderr,
// exiting 2 for a usage_error and 1 for anything else.
int run_tool(const char* name, int argc, char** argv, int (*run)(int, char**));

// `--name value` / `--name=value` options, each known in advance; `--help` is a flag.
class cli_args {
 public:
  // Throws usage_error on an unknown option or a missing value.
  cli_args(int argc, char** argv, const std::vector<std::string>& known);

  bool help() const { return help_; }
  bool has(const std::string& name) const { return values_.contains(name); }
  std::string text(const std::string& name, const std::string& fallback) const;
  // Throws usage_error unless the value is a whole number in [min, max].
  std::uint64_t number(const std::string& name, std::uint64_t fallback, std::uint64_t min,
                       std::uint64_t max) const;
  // Seconds, fractions allowed; throws usage_error unless in [min, max].
  double seconds(const std::string& name, double fallback, double min, double max) const;
  // Any number, fractions allowed; throws usage_error unless in [min, max].
  double real(const std::string& name, double fallback, double min, double max) const;

 private:
  double parse_real(const std::string& name, double fallback, double min, double max,
                    const char* what) const;

  std::map<std::string, std::string> values_;
  bool help_ = false;
};

}  // namespace wachat::bench

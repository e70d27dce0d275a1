#pragma once
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace wachat::test {

// A child process with the given environment (nothing inherited but PATH and HOME) whose
// stderr goes to a file the test can read.
class child_process {
 public:
  // `file_size_limit`: RLIMIT_FSIZE for the child, so that its writes past that size fail as
  // on a full disk (EFBIG; wachatd ignores SIGXFSZ).
  child_process(const std::string& path, const std::vector<std::string>& args,
                const std::map<std::string, std::string>& env,
                std::optional<std::uint64_t> file_size_limit = std::nullopt);
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  void signal(int sig);
  // The exit code once the process exits within `timeout_ms`; nullopt if it did not.
  std::optional<int> wait_exit(int timeout_ms);
  std::string stderr_text() const;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::string stderr_path_;
  std::optional<int> status_;
};

// wachatd started on a free port against `database_url` with extra settings; waits until
// /healthz answers (or throws with its stderr).
class wachatd {
 public:
  // `binary` defaults to the wachatd under test; faults_binary() is the one whose fault points
  // WACHAT_FAULT_INJECT can trigger (src/faults/from_env.cpp).
  // Unless `extra_env` names one, WACHAT_MEDIA_DIR is a fresh directory removed with the
  // object. `TEST_FILE_SIZE_LIMIT` in `extra_env` is no setting: it becomes the child's
  // RLIMIT_FSIZE (a disk that fills up).
  explicit wachatd(const std::string& database_url,
                   std::map<std::string, std::string> extra_env = {}, std::string binary = {});
  ~wachatd();
  wachatd(const wachatd&) = delete;
  wachatd& operator=(const wachatd&) = delete;
  const std::string& media_dir() const { return media_dir_; }
  static std::string faults_binary();
  std::uint16_t port() const { return port_; }
  child_process& process() { return *proc_; }

 private:
  std::uint16_t port_;
  std::string media_dir_;
  bool own_media_dir_ = false;
  std::unique_ptr<child_process> proc_;
};

}  // namespace wachat::test

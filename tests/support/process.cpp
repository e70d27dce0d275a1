#include "support/process.hpp"

#include <cstdlib>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "infra/crypto.hpp"
#include "support/http_client.hpp"
#include "support/test_env.hpp"

#ifndef WACHATD_PATH
#define WACHATD_PATH "wachatd"
#endif
#ifndef WACHATD_FAULTS_PATH
#define WACHATD_FAULTS_PATH "wachatd_faults"
#endif

namespace wachat::test {

child_process::child_process(const std::string& path, const std::vector<std::string>& args,
                             const std::map<std::string, std::string>& env,
                             std::optional<std::uint64_t> file_size_limit) {
  stderr_path_ = "/tmp/wachat-test-" + infra::random_hex(6) + ".log";
  std::vector<std::string> env_strings;
  for (const char* keep : {"PATH", "HOME", "ASAN_OPTIONS", "UBSAN_OPTIONS"}) {
    if (const char* v = std::getenv(keep)) {
      env_strings.push_back(std::string{keep} + "=" + v);
    }
  }
  for (const auto& [k, v] : env) {
    env_strings.push_back(k + "=" + v);
  }
  std::vector<char*> argv{const_cast<char*>(path.c_str())};
  for (const auto& a : args) {
    argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : env_strings) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ < 0) {
    throw std::runtime_error("fork failed");
  }
  if (pid_ == 0) {
    int fd = ::open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, 2);
    ::dup2(fd, 1);
    if (file_size_limit) {
      rlimit lim{*file_size_limit, *file_size_limit};
      ::setrlimit(RLIMIT_FSIZE, &lim);
    }
    ::execve(path.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
}

child_process::~child_process() {
  if (!status_) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
  ::unlink(stderr_path_.c_str());
}

void child_process::signal(int sig) { ::kill(pid_, sig); }

std::optional<int> child_process::wait_exit(int timeout_ms) {
  if (status_) {
    return status_;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return status_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return std::nullopt;
}

std::string child_process::stderr_text() const {
  std::ifstream in{stderr_path_};
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string wachatd::faults_binary() { return WACHATD_FAULTS_PATH; }

wachatd::~wachatd() {
  proc_.reset();
  if (own_media_dir_) {
    std::error_code ec;
    std::filesystem::remove_all(media_dir_, ec);
  }
}

wachatd::wachatd(const std::string& database_url, std::map<std::string, std::string> extra_env,
                 std::string binary)
    : port_(free_port()) {
  std::map<std::string, std::string> env = {
      {"WACHAT_DATABASE_URL", database_url},
      {"WACHAT_LISTEN", "127.0.0.1:" + std::to_string(port_)},
  };
  std::optional<std::uint64_t> fsize;
  if (auto it = extra_env.find("TEST_FILE_SIZE_LIMIT"); it != extra_env.end()) {
    fsize = std::stoull(it->second);
    extra_env.erase(it);
  }
  for (auto& [k, v] : extra_env) {
    env[k] = v;
  }
  if (!env.contains("WACHAT_MEDIA_DIR")) {
    // WACHAT_TEST_MEDIA_ROOT puts the files elsewhere (a benchmark comparing disks).
    const char* root = std::getenv("WACHAT_TEST_MEDIA_ROOT");
    media_dir_ = std::string{root != nullptr && *root != '\0' ? root : "/tmp"} + "/wachat-media-" + infra::random_hex(6);
    own_media_dir_ = true;
    env["WACHAT_MEDIA_DIR"] = media_dir_;
  } else {
    media_dir_ = env["WACHAT_MEDIA_DIR"];
  }
  // WACHAT_TEST_WACHATD runs another build's wachatd (a benchmark comparing builds: its tools
  // are linked against this build, whose path is compiled in).
  std::string path = binary;
  if (path.empty()) {
    const char* other = std::getenv("WACHAT_TEST_WACHATD");
    path = other != nullptr && *other != '\0' ? other : WACHATD_PATH;
  }
  proc_ = std::make_unique<child_process>(path, std::vector<std::string>{}, env, fsize);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto code = proc_->wait_exit(0)) {
      throw std::runtime_error("wachatd exited with " + std::to_string(*code) + ": " +
                               proc_->stderr_text());
    }
    try {
      if (http_get(port_, "/healthz").status == 200) {
        return;
      }
    } catch (const std::exception&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("wachatd did not come up: " + proc_->stderr_text());
}

}  // namespace wachat::test

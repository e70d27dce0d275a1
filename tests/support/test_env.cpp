#include "support/test_env.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>
#include <pqxx/pqxx>
#include <stdexcept>

#include "infra/crypto.hpp"

namespace wachat::test {
namespace {

std::mutex created_mutex;
std::vector<std::string> created;  // by fresh_database(), in this process

}  // namespace

std::string admin_database_url() {
  const char* url = std::getenv("WACHAT_TEST_DATABASE_URL");
  if (url == nullptr || *url == '\0') {
    throw std::runtime_error(
        "WACHAT_TEST_DATABASE_URL is not set: run the tests through scripts/test.sh");
  }
  return url;
}

std::string fresh_database() {
  auto admin = admin_database_url();
  auto name = "wachat_t_" + infra::random_hex(6);
  pqxx::connection conn{admin};
  pqxx::nontransaction nt{conn};
  nt.exec("CREATE DATABASE " + name);
  {
    std::lock_guard lock{created_mutex};
    created.push_back(name);
  }
  // Replace the database name: the admin URL ends in /<db> (optionally followed by ?params).
  auto q = admin.find('?');
  auto base = admin.substr(0, q);
  auto params = q == std::string::npos ? std::string{} : admin.substr(q);
  auto slash = base.rfind('/');
  if (slash == std::string::npos || slash < 12) {
    throw std::runtime_error("WACHAT_TEST_DATABASE_URL must name a database");
  }
  return base.substr(0, slash + 1) + name + params;
}

void drop_fresh_databases(bool run_passed) {
  std::vector<std::string> names;
  {
    std::lock_guard lock{created_mutex};
    names.swap(created);
  }
  if (names.empty()) {
    return;
  }
  const char* keep = std::getenv("WACHAT_TEST_KEEP_DATABASES");
  if (!run_passed || (keep != nullptr && std::string{keep} == "1")) {
    std::cerr << "test databases kept:";
    for (const auto& n : names) {
      std::cerr << ' ' << n;
    }
    std::cerr << '\n';
    return;
  }
  try {
    pqxx::connection conn{admin_database_url()};
    pqxx::nontransaction nt{conn};
    for (const auto& n : names) {
      // FORCE: a wachatd a test left running must not keep its database.
      nt.exec("DROP DATABASE IF EXISTS " + n + " WITH (FORCE)");
    }
  } catch (const std::exception& e) {
    std::cerr << "could not drop the test databases: " << e.what() << '\n';
  }
}

std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  auto port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

}  // namespace wachat::test

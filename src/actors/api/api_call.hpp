#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace pqxx {
class connection_base;
}

// The one request interface between the HTTP layer and the actors for dashboard calls. No CAF
// here: the HTTP layer builds these, the API gateway's workers carry them out.
namespace wachat::actors {

// One dashboard API request, plain data. Which code runs it is `operation`, an index into the
// table the HTTP layer fills before serving: no closure travels with the request.
struct api_call {
  std::uint64_t ticket = 0;     // the HTTP layer's: how the answer finds its connection
  std::uint32_t operation = 0;  // the registered operation that carries it out
  std::string authorization;    // the Authorization header as sent
  std::map<std::string, std::string> params;  // `{name}` path segments, and what the route adds
  std::vector<std::pair<std::string, std::string>> query;
  std::string body;
  std::string content_type;  // the Content-Type header as sent (uploads)
};

// What the gateway's workers run a call with: authentication, the operation table and the
// answering, which are the HTTP layer's. Called on a worker's thread, one call at a time per
// worker.
class api_executor {
 public:
  virtual ~api_executor() = default;
  // Carries out `call` on `conn` (nullptr: the database cannot be reached now) and answers its
  // ticket, at once or later (after asking a site actor). Throws pqxx::broken_connection, after
  // answering, when the connection broke, so the worker opens a new one.
  virtual void execute(pqxx::connection_base* conn, const api_call& call) = 0;
};

}  // namespace wachat::actors

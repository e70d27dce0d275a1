#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <simdjson.h>
#include <string>

#include "http/auth.hpp"
#include "http/responses.hpp"
#include "http/router.hpp"
#include "infra/chat_views.hpp"
#include "infra/config.hpp"
#include "infra/metrics.hpp"

namespace pqxx {
class connection_base;
}

namespace wachat::actors {
class db_pool;
class event_hub;
class site_client;
}

namespace wachat::http {

// What every dashboard handler needs. Lives as long as the server.
struct api_context {
  const infra::config* cfg = nullptr;
  actors::db_pool* db = nullptr;
  actors::site_client* sites = nullptr;  // settings changes go through the site actors
  std::shared_ptr<infra::metrics> metrics;
  actors::event_hub* events = nullptr;
  // Nudges the inbox dispatcher (e.g. after a site gained a phone number id).
  std::function<void()> wake_dispatcher;
};

// An error a handler raises to answer with the JSON error shape.
struct api_error {
  bhttp::status status;
  std::string code;
  std::string message;
};

enum class access { any_principal, admin_only };

using db_handler = std::function<response(pqxx::connection_base&, const principal&)>;

// Authenticates and runs `fn` on a database worker, answering what it returns. Maps api_error
// to its status, an unreachable database to 503, and any other failure to 500 (logged).
void run_authenticated(api_context& api, request_context& rc, responder respond, access level,
                       db_handler fn);

// Like run_authenticated, but `fn` answers through `done` when it is ready, possibly later and
// from another thread (after a Graph API call). Exceptions `fn` throws are answered as above;
// the 20 s timeout still applies.
using deferred_db_handler =
    std::function<void(pqxx::connection_base&, const principal&, responder done)>;
void run_authenticated_deferred(api_context& api, request_context& rc, responder respond,
                                access level, deferred_db_handler fn);

// Runs `fn` on a database worker for a caller already authenticated (a second step after an
// asynchronous call), answering what it returns or the mapped failure.
void run_db(api_context& api, responder done, std::function<response(pqxx::connection_base&)> fn);

// Parses a request body as a JSON object; throws api_error 400 invalid_json otherwise.
// The returned document must stay alive while the object is used.
struct json_body_doc {
  simdjson::dom::parser parser;
  simdjson::dom::object object;
};
std::unique_ptr<json_body_doc> parse_json_object(const std::string& body);

// Optional typed fields: absent or null → nullopt; wrong type → api_error 422 invalid_field.
std::optional<std::string> opt_string(const simdjson::dom::object& o, std::string_view key);
std::optional<bool> opt_bool(const simdjson::dom::object& o, std::string_view key);
std::optional<std::int64_t> opt_int(const simdjson::dom::object& o, std::string_view key);
std::string req_string(const simdjson::dom::object& o, std::string_view key);

[[noreturn]] void fail(bhttp::status status, std::string code, std::string message);
[[noreturn]] void not_found();

using infra::dump;
using infra::parse_id;
using infra::rfc3339;

}  // namespace wachat::http

#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <simdjson.h>
#include <string>

#include "actors/api/api_call.hpp"
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
class api_gateway;
class event_hub;
class site_client;
}

namespace wachat::http {

// `stream_reader`: any principal, or (without an Authorization header) a stream ticket in the
// `ticket` query parameter, redeemed once; only the event stream accepts that.
enum class access { any_principal, admin_only, stream_reader };

using actors::api_call;
// An operation answering at once with what it returns.
using api_handler = std::function<response(pqxx::connection_base&, const principal&, const api_call&)>;
// An operation answering through `done` when it is ready, possibly later and from another
// thread (after asking a site actor).
using deferred_api_handler =
    std::function<void(pqxx::connection_base&, const principal&, const api_call&, responder done)>;

// An operation that needs no database connection once its caller is known: it asks the actors.
// Called with `conn` null on the HTTP thread for the admin token (known without the database);
// it returns false, having answered nothing, when it needs a connection after all, and then
// runs again on a gateway worker with one. Every other caller is authenticated by a worker,
// which runs it with its connection.
using actor_api_handler =
    std::function<bool(pqxx::connection_base* conn, const principal&, const api_call&, responder done)>;

// The HTTP side of the API gateway (actors/api): the table of operations, filled while the
// routes are added and fixed before serving, and the requests waiting for their answer. A route
// files its request under a ticket and submits an `api_call` naming its operation; a gateway
// worker runs it through execute(), which authenticates, runs the operation and answers the
// ticket. Maps api_error to its status, an unreachable database to 503 and any other failure to
// 500 (logged). A call not answered within 20 s is answered 503.
class api_calls final : public actors::api_executor, public std::enable_shared_from_this<api_calls> {
 public:
  explicit api_calls(std::optional<std::string> admin_token);
  ~api_calls() override;
  // The gateway the calls go to; set before serving.
  void connect(actors::api_gateway* gateway);
  // `timeout`: how long a call may take before it is answered 503.
  std::uint32_t add(access level, deferred_api_handler h,
                    std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // `extra` goes into the call's params beside the route's own.
  void submit(request_context& rc, std::uint32_t operation, responder respond,
              std::map<std::string, std::string> extra = {});
  // As submit(), but an admin's call runs `direct` at once on this thread, without a gateway
  // worker; `operation` (the same handler, registered) is what a worker runs otherwise.
  void submit_direct(request_context& rc, std::uint32_t operation, const actor_api_handler& direct,
                     responder respond);
  void execute(pqxx::connection_base* conn, const api_call& call) override;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  // The call of `rc` under a new ticket with its timer; none when it was answered 401 already.
  std::optional<api_call> file(request_context& rc, std::uint32_t operation, responder respond,
                               std::map<std::string, std::string> extra);
  // Answers `ticket` once (or not at all when the timer did first).
  responder answer_of(std::uint64_t ticket);
};

// What every dashboard handler needs. Lives as long as the server.
struct api_context {
  const infra::config* cfg = nullptr;
  std::shared_ptr<api_calls> calls;
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

// Adds a route whose requests run `h` through the API gateway.
void add_api_route(router& r, api_context& api, bhttp::verb method, std::string pattern,
                   std::size_t max_body, access level, api_handler h);
void add_deferred_api_route(router& r, api_context& api, bhttp::verb method, std::string pattern,
                            std::size_t max_body, access level, deferred_api_handler h,
                            std::chrono::milliseconds timeout = std::chrono::seconds(20));

// Adds a route run by `h` without a database connection of its own where the caller allows
// (actor_api_handler): the admin's requests skip the gateway's hop and worker.
void add_actor_api_route(router& r, api_context& api, bhttp::verb method, std::string pattern,
                         std::size_t max_body, access level, actor_api_handler h,
                         std::chrono::milliseconds timeout = std::chrono::seconds(20));

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

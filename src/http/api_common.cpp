#include "http/api_common.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <ctime>
#include <fmt/format.h>
#include <pqxx/pqxx>

#include "actors/api/api_gateway.hpp"
#include "infra/log.hpp"
#include "infra/stream_tickets.hpp"
#include "infra/ticket_map.hpp"
#include "infra/url.hpp"

namespace wachat::http {

void fail(bhttp::status status, std::string code, std::string message) {
  throw api_error{status, std::move(code), std::move(message)};
}

void not_found() { fail(bhttp::status::not_found, "not_found", "No such resource."); }

namespace {

// Maps what a handler throws to the JSON error answer. broken_connection is rethrown after
// answering so the pool worker reconnects.
void answer_failure(const responder& done, std::exception_ptr failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const api_error& e) {
    done(json_error(e.status, e.code, e.message));
  } catch (const pqxx::broken_connection&) {
    done(json_error(bhttp::status::service_unavailable, "unavailable",
                    "The database connection was lost."));
    throw;
  } catch (const pqxx::sql_error& e) {
    infra::log_error("api_sql_error", {{"error", e.what()}, {"sqlstate", e.sqlstate()}});
    done(json_error(bhttp::status::internal_server_error, "internal",
                    "Internal error; see the server log."));
  } catch (const std::exception& e) {
    infra::log_error("api_error", {{"error", e.what()}});
    done(json_error(bhttp::status::internal_server_error, "internal",
                    "Internal error; see the server log."));
  }
}

}  // namespace

struct api_calls::impl {
  struct operation {
    access level;
    deferred_api_handler run;
    std::chrono::milliseconds timeout;
  };
  struct waiting {
    responder respond;
    std::shared_ptr<boost::asio::steady_timer> timer;
  };
  std::optional<std::string> admin_token;
  actors::api_gateway* gateway = nullptr;
  std::vector<operation> operations;
  infra::ticket_map<waiting> waiting;
};

api_calls::api_calls(std::optional<std::string> admin_token) : impl_(std::make_unique<impl>()) {
  impl_->admin_token = std::move(admin_token);
}

api_calls::~api_calls() = default;

void api_calls::connect(actors::api_gateway* gateway) { impl_->gateway = gateway; }

std::uint32_t api_calls::add(access level, deferred_api_handler h, std::chrono::milliseconds timeout) {
  impl_->operations.push_back({level, std::move(h), timeout});
  return static_cast<std::uint32_t>(impl_->operations.size() - 1);
}

std::optional<api_call> api_calls::file(request_context& rc, std::uint32_t operation, responder respond,
                                        std::map<std::string, std::string> extra) {
  api_call call;
  call.authorization = std::string{rc.req[bhttp::field::authorization]};
  if (call.authorization.empty() &&
      !(impl_->operations.at(operation).level == access::stream_reader && infra::query_value(rc.query, "ticket"))) {
    respond(json_error(bhttp::status::unauthorized, "unauthorized", "Missing bearer token."));
    return std::nullopt;
  }
  call.operation = operation;
  call.params = rc.params;
  call.params.merge(extra);
  call.query = rc.query;
  call.body = std::move(rc.req.body());
  call.content_type = std::string{rc.req[bhttp::field::content_type]};
  // A stuck database (or site actor, or Graph API) must still get the caller an answer.
  auto timer = std::make_shared<boost::asio::steady_timer>(rc.executor, impl_->operations.at(operation).timeout);
  call.ticket = impl_->waiting.add({std::move(respond), timer});
  timer->async_wait([weak = weak_from_this(), ticket = call.ticket](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self) {
      return;
    }
    if (auto w = self->impl_->waiting.take(ticket)) {
      w->respond(json_error(bhttp::status::service_unavailable, "unavailable",
                            "The request did not finish in time (the database or WhatsApp was too slow); it may still take effect, so repeat it with the same client_message_id where it has one."));
    }
  });
  return call;
}

responder api_calls::answer_of(std::uint64_t ticket) {
  // Whoever answers first (the operation or the timer) wins; the answer stops the timer.
  return responder{[weak = weak_from_this(), ticket](response res) {
    auto self = weak.lock();
    if (!self) {
      return;
    }
    if (auto w = self->impl_->waiting.take(ticket)) {
      w->respond(std::move(res));
      boost::asio::post(w->timer->get_executor(), [timer = w->timer] { timer->cancel(); });
    }
  }};
}

void api_calls::submit(request_context& rc, std::uint32_t operation, responder respond,
                       std::map<std::string, std::string> extra) {
  if (auto call = file(rc, operation, std::move(respond), std::move(extra))) {
    impl_->gateway->submit(std::move(*call));
  }
}

void api_calls::submit_direct(request_context& rc, std::uint32_t operation, const actor_api_handler& direct,
                              responder respond) {
  auto call = file(rc, operation, std::move(respond), {});
  if (!call) {
    return;
  }
  if (is_admin(call->authorization, impl_->admin_token)) {
    auto done = answer_of(call->ticket);
    try {
      if (direct(nullptr, principal{true, {}, std::nullopt}, *call, done)) {
        return;
      }
    } catch (...) {
      try {
        answer_failure(done, std::current_exception());
      } catch (...) {  // a broken connection, which this thread has none of
      }
      return;
    }
  }
  impl_->gateway->submit(std::move(*call));
}

void api_calls::execute(pqxx::connection_base* conn, const api_call& call) {
  auto done = answer_of(call.ticket);
  if (conn == nullptr) {
    return done(json_error(bhttp::status::service_unavailable, "unavailable",
                           "The database is unavailable."));
  }
  if (call.operation >= impl_->operations.size()) {
    infra::log_error("api_call_unknown_operation", {{"operation", std::to_string(call.operation)}});
    return done(json_error(bhttp::status::internal_server_error, "internal",
                           "Internal error; see the server log."));
  }
  const auto& op = impl_->operations[call.operation];
  try {
    std::optional<principal> who;
    if (call.authorization.empty() && op.level == access::stream_reader) {
      if (auto site = infra::redeem_stream_ticket(*conn, infra::query_value(call.query, "ticket").value_or(""))) {
        who = principal{false, *site, std::nullopt};
      } else {
        return done(json_error(bhttp::status::unauthorized, "unauthorized",
                               "Unknown, used or expired stream ticket; ask for a new one."));
      }
    } else {
      who = authenticate(*conn, call.authorization, impl_->admin_token);
    }
    if (!who) {
      return done(json_error(bhttp::status::unauthorized, "unauthorized", "Unknown bearer token."));
    }
    if (op.level == access::admin_only && !who->admin) {
      return done(json_error(bhttp::status::forbidden, "forbidden", "This call needs the admin token."));
    }
    op.run(*conn, *who, call, done);
  } catch (...) {
    answer_failure(done, std::current_exception());
  }
}

void add_deferred_api_route(router& r, api_context& api, bhttp::verb method, std::string pattern,
                            std::size_t max_body, access level, deferred_api_handler h,
                            std::chrono::milliseconds timeout) {
  auto op = api.calls->add(level, std::move(h), timeout);
  auto calls = api.calls;
  r.add(method, std::move(pattern), max_body, [calls, op](request_context& rc, responder respond) {
    calls->submit(rc, op, std::move(respond));
  });
}

void add_actor_api_route(router& r, api_context& api, bhttp::verb method, std::string pattern,
                         std::size_t max_body, access level, actor_api_handler h,
                         std::chrono::milliseconds timeout) {
  auto op = api.calls->add(
      level,
      [h](pqxx::connection_base& c, const principal& who, const api_call& call, responder done) {
        if (!h(&c, who, call, done)) {
          throw std::logic_error("an operation asked for a connection while it had one");
        }
      },
      timeout);
  auto calls = api.calls;
  r.add(method, std::move(pattern), max_body, [calls, op, h = std::move(h)](request_context& rc, responder respond) {
    calls->submit_direct(rc, op, h, std::move(respond));
  });
}

void add_api_route(router& r, api_context& api, bhttp::verb method, std::string pattern,
                   std::size_t max_body, access level, api_handler h) {
  add_deferred_api_route(r, api, method, std::move(pattern), max_body, level,
                         [h = std::move(h)](pqxx::connection_base& c, const principal& who,
                                            const api_call& call, responder done) { done(h(c, who, call)); });
}

std::unique_ptr<json_body_doc> parse_json_object(const std::string& body) {
  auto doc = std::make_unique<json_body_doc>();
  simdjson::dom::element root;
  if (doc->parser.parse(body).get(root) != simdjson::SUCCESS) {
    fail(bhttp::status::bad_request, "invalid_json", "Request body is not valid JSON.");
  }
  if (root.get_object().get(doc->object) != simdjson::SUCCESS) {
    fail(bhttp::status::bad_request, "invalid_json", "Request body must be a JSON object.");
  }
  return doc;
}

namespace {
[[noreturn]] void wrong_type(std::string_view key, std::string_view type) {
  fail(bhttp::status::unprocessable_entity, "invalid_field",
       fmt::format("Field '{}' must be {}.", key, type));
}
}  // namespace

std::optional<std::string> opt_string(const simdjson::dom::object& o, std::string_view key) {
  simdjson::dom::element e;
  if (o.at_key(key).get(e) != simdjson::SUCCESS || e.is_null()) {
    return std::nullopt;
  }
  std::string_view v;
  if (e.get_string().get(v) != simdjson::SUCCESS) {
    wrong_type(key, "a string");
  }
  // PostgreSQL text cannot hold NUL; libpq would cut the value there without a word.
  if (v.find('\0') != std::string_view::npos) {
    wrong_type(key, "a string without NUL characters");
  }
  return std::string{v};
}

std::optional<bool> opt_bool(const simdjson::dom::object& o, std::string_view key) {
  simdjson::dom::element e;
  if (o.at_key(key).get(e) != simdjson::SUCCESS || e.is_null()) {
    return std::nullopt;
  }
  bool v = false;
  if (e.get_bool().get(v) != simdjson::SUCCESS) {
    wrong_type(key, "true or false");
  }
  return v;
}

std::optional<std::int64_t> opt_int(const simdjson::dom::object& o, std::string_view key) {
  simdjson::dom::element e;
  if (o.at_key(key).get(e) != simdjson::SUCCESS || e.is_null()) {
    return std::nullopt;
  }
  std::int64_t v = 0;
  if (e.get_int64().get(v) != simdjson::SUCCESS) {
    wrong_type(key, "a whole number");
  }
  return v;
}

std::string req_string(const simdjson::dom::object& o, std::string_view key) {
  auto v = opt_string(o, key);
  if (!v) {
    fail(bhttp::status::unprocessable_entity, "invalid_field",
         fmt::format("Field '{}' is required.", key));
  }
  return *v;
}

}  // namespace wachat::http

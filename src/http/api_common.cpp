#include "http/api_common.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <ctime>
#include <fmt/format.h>
#include <pqxx/pqxx>

#include "actors/db/db_pool.hpp"
#include "infra/log.hpp"

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

void run_authenticated_deferred(api_context& api, request_context& rc, responder respond,
                                access level, deferred_db_handler fn) {
  auto authorization = std::string{rc.req[bhttp::field::authorization]};
  if (authorization.empty()) {
    return respond(json_error(bhttp::status::unauthorized, "unauthorized",
                              "Missing bearer token."));
  }
  // A stuck database (or Graph API) must still get the caller an answer.
  auto timer = std::make_shared<boost::asio::steady_timer>(rc.executor, std::chrono::seconds(20));
  timer->async_wait([respond, timer](boost::system::error_code ec) {
    if (!ec) {
      respond(json_error(bhttp::status::service_unavailable, "unavailable",
                         "The database did not answer in time."));
    }
  });
  // Whoever answers first (handler or timer) wins; the answer stops the timer.
  responder done{[respond, timer](response res) {
    respond(std::move(res));
    boost::asio::post(timer->get_executor(), [timer] { timer->cancel(); });
  }};
  const auto* admin_token = &api.cfg->admin_token;
  api.db->run([done, authorization, admin_token, level,
               fn = std::move(fn)](pqxx::connection_base* conn) {
    if (conn == nullptr) {
      return done(json_error(bhttp::status::service_unavailable, "unavailable",
                             "The database is unavailable."));
    }
    try {
      auto who = authenticate(*conn, authorization, *admin_token);
      if (!who) {
        return done(json_error(bhttp::status::unauthorized, "unauthorized",
                               "Unknown bearer token."));
      }
      if (level == access::admin_only && !who->admin) {
        return done(json_error(bhttp::status::forbidden, "forbidden",
                               "This call needs the admin token."));
      }
      fn(*conn, *who, done);
    } catch (...) {
      answer_failure(done, std::current_exception());
    }
  });
}

void run_authenticated(api_context& api, request_context& rc, responder respond, access level,
                       db_handler fn) {
  run_authenticated_deferred(
      api, rc, std::move(respond), level,
      [fn = std::move(fn)](pqxx::connection_base& c, const principal& who, responder done) {
        done(fn(c, who));
      });
}

void run_db(api_context& api, responder done,
            std::function<response(pqxx::connection_base&)> fn) {
  api.db->run([done, fn = std::move(fn)](pqxx::connection_base* conn) {
    if (conn == nullptr) {
      return done(json_error(bhttp::status::service_unavailable, "unavailable",
                             "The database is unavailable."));
    }
    try {
      done(fn(*conn));
    } catch (...) {
      answer_failure(done, std::current_exception());
    }
  });
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

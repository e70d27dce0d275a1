#include "http/api_common.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <ctime>
#include <fmt/format.h>
#include <pqxx/pqxx>

#include "actors/db_pool.hpp"
#include "infra/log.hpp"

namespace wachat::http {

void fail(bhttp::status status, std::string code, std::string message) {
  throw api_error{status, std::move(code), std::move(message)};
}

void not_found() { fail(bhttp::status::not_found, "not_found", "No such resource."); }

void run_authenticated(api_context& api, request_context& rc, responder respond, access level,
                       db_handler fn) {
  auto authorization = std::string{rc.req[bhttp::field::authorization]};
  if (authorization.empty()) {
    return respond(json_error(bhttp::status::unauthorized, "unauthorized",
                              "Missing bearer token."));
  }
  // A stuck database must still get the caller an answer.
  auto timer = std::make_shared<boost::asio::steady_timer>(rc.executor, std::chrono::seconds(20));
  timer->async_wait([respond, timer](boost::system::error_code ec) {
    if (!ec) {
      respond(json_error(bhttp::status::service_unavailable, "unavailable",
                         "The database did not answer in time."));
    }
  });
  const auto* admin_token = &api.cfg->admin_token;
  api.db->run([respond, timer, authorization, admin_token, level,
               fn = std::move(fn)](pqxx::connection_base* conn) {
    auto finish = [&](response res) {
      respond(std::move(res));
      boost::asio::post(timer->get_executor(), [timer] { timer->cancel(); });
    };
    if (conn == nullptr) {
      return finish(json_error(bhttp::status::service_unavailable, "unavailable",
                               "The database is unavailable."));
    }
    try {
      auto who = authenticate(*conn, authorization, *admin_token);
      if (!who) {
        return finish(json_error(bhttp::status::unauthorized, "unauthorized",
                                 "Unknown bearer token."));
      }
      if (level == access::admin_only && !who->admin) {
        return finish(json_error(bhttp::status::forbidden, "forbidden",
                                 "This call needs the admin token."));
      }
      finish(fn(*conn, *who));
    } catch (const api_error& e) {
      finish(json_error(e.status, e.code, e.message));
    } catch (const pqxx::broken_connection& e) {
      finish(json_error(bhttp::status::service_unavailable, "unavailable",
                        "The database connection was lost."));
      throw;
    } catch (const pqxx::sql_error& e) {
      infra::log_error("api_sql_error", {{"error", e.what()}, {"sqlstate", e.sqlstate()}});
      finish(json_error(bhttp::status::internal_server_error, "internal",
                        "Internal error; see the server log."));
    } catch (const std::exception& e) {
      infra::log_error("api_error", {{"error", e.what()}});
      finish(json_error(bhttp::status::internal_server_error, "internal",
                        "Internal error; see the server log."));
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

std::string rfc3339(std::int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace wachat::http

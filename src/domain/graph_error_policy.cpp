#include "domain/graph_error_policy.hpp"

#include <simdjson.h>

#include <cstdint>
#include <limits>
#include <utility>

namespace wachat::domain {
namespace {

namespace od = simdjson::ondemand;

// Meta sends codes as JSON numbers; anything else (absent, a string, out of range) reads as 0.
int read_int(od::value value) {
  std::int64_t n = 0;
  if (value.get_int64().get(n) || n < std::numeric_limits<int>::min() ||
      n > std::numeric_limits<int>::max()) {
    return 0;
  }
  return static_cast<int>(n);
}

std::string read_string(od::value value) {
  std::string_view s;
  if (value.get_string().get(s)) {
    return {};
  }
  return std::string{s};
}

bool is_type(od::value& value, od::json_type wanted) {
  od::json_type t;
  return !value.type().get(t) && t == wanted;
}

// error_data is an object `{"messaging_product", "details"}` on WhatsApp endpoints, but older
// Graph endpoints send it as a string; take either.
std::string read_details(od::value value) {
  if (is_type(value, od::json_type::string)) {
    return read_string(value);
  }
  od::object data;
  if (value.get_object().get(data)) {
    return {};
  }
  for (auto field_result : data) {
    od::field field;
    std::string_view key;
    if (std::move(field_result).get(field) || field.unescaped_key().get(key)) {
      return {};
    }
    if (key == "details") {
      return read_string(field.value());
    }
  }
  return {};
}

// Reads Meta's `error` object into `out`; false when it is not an object.
bool read_error_object(od::value value, graph_error& out) {
  od::object error;
  if (value.get_object().get(error)) {
    return false;
  }
  std::string user_title;
  std::string user_message;
  for (auto field_result : error) {
    od::field field;
    std::string_view key;
    if (std::move(field_result).get(field) || field.unescaped_key().get(key)) {
      return false;
    }
    if (key == "message") {
      out.title = read_string(field.value());
    } else if (key == "type") {
      out.type = read_string(field.value());
    } else if (key == "code") {
      out.code = read_int(field.value());
    } else if (key == "error_subcode") {
      out.subcode = read_int(field.value());
    } else if (key == "error_user_title") {
      user_title = read_string(field.value());
    } else if (key == "error_user_msg") {
      user_message = read_string(field.value());
    } else if (key == "error_data") {
      out.details = read_details(field.value());
    } else if (key == "fbtrace_id") {
      out.fbtrace_id = read_string(field.value());
    }
  }
  if (out.title.empty()) {
    out.title = std::move(user_title);
  }
  if (out.details.empty()) {
    out.details = std::move(user_message);
  }
  return true;
}

bool parse_meta_error(std::string_view body, graph_error& out) {
  if (body.empty()) {
    return false;
  }
  // One parser per thread: it keeps its buffers between calls.
  thread_local od::parser parser;
  // The body is not padded, so it is copied once into a padded buffer (error bodies are small).
  simdjson::padded_string padded{body};
  od::document doc;
  od::object root;
  if (parser.iterate(padded).get(doc) || doc.get_object().get(root)) {
    return false;
  }
  for (auto field_result : root) {
    od::field field;
    std::string_view key;
    if (std::move(field_result).get(field) || field.unescaped_key().get(key)) {
      return false;
    }
    if (key == "error") {
      return read_error_object(field.value(), out);
    }
  }
  return false;
}

}  // namespace

graph_error parse_graph_error(int http_status, std::string_view body) {
  graph_error out;
  if (!parse_meta_error(body, out)) {
    // Half-read fields of a malformed body would mislead: keep none of them.
    out = graph_error{};
  }
  out.http_status = http_status;
  if (out.title.empty()) {
    out.title = "HTTP " + std::to_string(http_status) + " from the Graph API";
  }
  return out;
}

graph_error_action classify_graph_error(const graph_error& error) {
  if (error.transport) {
    return graph_error_action::retry_transient;
  }
  switch (error.code) {
    case 190:
      return graph_error_action::credentials_broken;
    case 130429:
    case 4:
    case 80007:
      return graph_error_action::retry_throttled;
    case 131056:
      return graph_error_action::retry_pair_limit;
    case 1:
    case 2:
    case 131000:
    case 131057:
      return graph_error_action::retry_transient;
    case 131048:
    case 131049:
      return graph_error_action::hold_off;
    case 131047:
      return graph_error_action::fail_window_closed;
    case 132001:
    case 132015:
    case 132016:
      return graph_error_action::fail_template_stale;
    case 131026:
    case 131051:
    case 131052:
    case 131053:
    case 100:
    case 131008:
    case 131009:
    case 132000:
    case 132012:
    case 131050:
      return graph_error_action::fail;
    default:
      break;
  }
  // Codes outside the table: judge by the HTTP status alone.
  if (error.http_status == 401) {
    return graph_error_action::credentials_broken;
  }
  if (error.http_status == 429) {
    return graph_error_action::retry_throttled;
  }
  if (error.http_status >= 500 || error.http_status == 408) {
    return graph_error_action::retry_transient;
  }
  return graph_error_action::fail;
}

std::string credentials_refused_note(const graph_error& error) {
  return std::string{credentials_refused} + (error.title.empty() ? "" : ": " + error.title);
}

bool says_credentials_refused(std::string_view last_check_error) {
  return last_check_error.starts_with(credentials_refused);
}

bool is_retryable(graph_error_action action) {
  switch (action) {
    case graph_error_action::retry_transient:
    case graph_error_action::retry_throttled:
    case graph_error_action::retry_pair_limit:
      return true;
    case graph_error_action::hold_off:
    case graph_error_action::fail:
    case graph_error_action::fail_window_closed:
    case graph_error_action::fail_template_stale:
    case graph_error_action::credentials_broken:
      return false;
  }
  return false;
}

std::string_view to_string(graph_error_action action) {
  switch (action) {
    case graph_error_action::retry_transient:
      return "retry_transient";
    case graph_error_action::retry_throttled:
      return "retry_throttled";
    case graph_error_action::retry_pair_limit:
      return "retry_pair_limit";
    case graph_error_action::hold_off:
      return "hold_off";
    case graph_error_action::fail:
      return "fail";
    case graph_error_action::fail_window_closed:
      return "fail_window_closed";
    case graph_error_action::fail_template_stale:
      return "fail_template_stale";
    case graph_error_action::credentials_broken:
      return "credentials_broken";
  }
  return "unknown";
}

}  // namespace wachat::domain

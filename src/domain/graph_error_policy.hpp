#pragma once
#include <string>
#include <string_view>

namespace wachat::domain {

// One failed Graph API call, as a value: Meta's error object (META.md "Errors"), or a transport
// failure (DNS, refused connection, TLS, timeout) with `transport` set and a readable `title`.
// Never carries the access token.
struct graph_error {
  int code = 0;       // error.code; 0 when Meta sent none (transport, proxy page)
  int subcode = 0;    // error.error_subcode
  std::string type;   // error.type, e.g. "OAuthException"; "transport" for transport failures
  std::string title;  // error.message, else error.error_user_title
  std::string details;     // error.error_data.details, else error.error_user_msg
  std::string fbtrace_id;  // for Meta support tickets
  int http_status = 0;     // 0 for transport failures
  bool transport = false;
};

// Meta's error object out of a non-2xx answer. A body that is not Meta's shape (a proxy's HTML
// page, an empty 502) still yields an error, titled after the HTTP status.
graph_error parse_graph_error(int http_status, std::string_view body);

// What a caller does about a failed call (META.md's table). Branches on `code`, never on text.
enum class graph_error_action {
  retry_transient,     // 1, 2, 131000, 131057, transport failures, HTTP 5xx: back off, retry
  retry_throttled,     // 130429, 4, 80007, HTTP 429: the number / app is over its rate; slow down
  retry_pair_limit,    // 131056: too many to this one recipient; back off that recipient only
  hold_off,            // 131048, 131049: spam / ecosystem limits; do not retry soon, surface it
  fail,                // the request itself is wrong or undeliverable; retrying cannot help
  fail_window_closed,  // 131047: the 24-hour window is over; close it, a template is needed
  fail_template_stale,  // 132001, 132015, 132016: template gone / paused; refresh the template cache
  credentials_broken,  // 190 or HTTP 401: mark the site's credentials broken
};

graph_error_action classify_graph_error(const graph_error& error);

// True for the actions whose request may succeed if sent again later.
bool is_retryable(graph_error_action action);

// How a site's last check reads when Meta refused its access token (a send or a test got 190 or
// HTTP 401): the site then refuses sends at once until working credentials are saved (or a test
// passes), instead of failing every message at Meta.
inline constexpr std::string_view credentials_refused = "WhatsApp refused the access token (190)";
std::string credentials_refused_note(const graph_error& error);
bool says_credentials_refused(std::string_view last_check_error);

// Stable name for logs and metrics ("retry_transient", "fail", ...).
std::string_view to_string(graph_error_action action);

}  // namespace wachat::domain

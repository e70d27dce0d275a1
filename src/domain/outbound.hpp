#pragma once
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "domain/graph_error_policy.hpp"

// What an agent asks to send (API.md §3.4 "POST /api/conversations/{id}/messages"), checked and
// turned into Meta's request body (META.md "Sending"). Pure: no I/O, no clock.
namespace wachat::domain {

enum class outbound_kind { text, image, document, template_message, reaction };

struct outbound_request {
  outbound_kind kind = outbound_kind::text;
  std::string text;                    // text: the body
  std::string url;                     // image, document: the link Meta fetches, or
  std::string media_id;                // a file uploaded to wachat (POST /api/sites/{site}/media)
  std::string filename;                // document
  std::optional<std::string> caption;  // image, document
  nlohmann::json template_object;      // template: {name, language, components?} as given
  std::string reaction_target;         // reaction: message id or wamid
  std::string emoji;                   // reaction: empty removes
  std::string sender_id;
  std::string sender_name;
  std::optional<std::string> client_message_id;
  std::optional<std::string> reply_to;  // message id or wamid of this conversation
  // A template's, once the site actor checked it against Meta's definition
  // (domain::check_template_send): its body with the parameters filled in, and its category.
  std::optional<std::string> rendered_text;
  std::string template_category;
  // A `media_id`'s file, as the handler found it among the site's uploads.
  struct uploaded_file {
    std::string file_name;
    std::string mime_type;
    std::int64_t size = 0;
  };
  std::optional<uploaded_file> upload;
  // What identifies the request for idempotency: every field above but the sender's name,
  // canonical, so the same request with keys in another order is still the same.
  std::string fingerprint;
};

// In the outbox's copy of Meta's body: the upload whose Meta media id the sender puts into
// `image.id` / `document.id` at the attempt (uploading the file to Meta first if needed).
inline constexpr const char* upload_marker = "wachat_upload";

// Why a request cannot be taken: `code` is API.md's (invalid_json, invalid_field).
struct request_problem {
  std::string code;
  std::string message;
};

// Meta's limits (text body 4,096 characters, caption 1,024) are checked here, so an agent gets a
// clear 422 rather than Meta's 100 after the message was stored.
constexpr std::size_t max_text_chars = 4096;
constexpr std::size_t max_caption_chars = 1024;
constexpr std::size_t max_id_chars = 200;

std::variant<outbound_request, request_problem> parse_outbound(std::string_view body);

// A message to a closed 24-hour window must be a template (API.md §3.4, META.md 131047).
bool needs_open_window(const outbound_request& r);

// The window allows a free-form send while its expiry is in the future.
constexpr bool window_open(std::optional<std::int64_t> expires_at, std::int64_t now) {
  return expires_at && *expires_at > now;
}

// What the conversation actor does with a send request, given what the store knows (API.md
// §3.4): an earlier request with the same client_message_id decides first (the same body gets
// the first outcome again, another body is a conflict), then whether there is anyone to send
// to, then the window (templates only when it is closed).
// A MARKETING template to a customer who stopped marketing messages is refused.
enum class send_verdict { go, replay, idempotency_conflict, no_recipient, window_closed, recipient_opted_out };
send_verdict decide_send(const outbound_request& r, const std::optional<std::string>& earlier_fingerprint,
                         bool has_recipient, std::optional<std::int64_t> window_expires_at, std::int64_t now,
                         bool marketing_opt_out = false);

// A retry by hand of an earlier send (API.md §3.4 ".../retry"): only an agent's send that was
// given up, then the same rules as a send (a recipient, the window unless it is a template).
enum class retry_verdict { go, invalid_state, no_recipient, window_closed };
retry_verdict decide_retry(bool failed_send, bool is_template, bool has_recipient,
                           std::optional<std::int64_t> window_expires_at, std::int64_t now);

// Where a send goes: the customer's phone when known, else their business-scoped user id.
struct recipient {
  std::optional<std::string> phone;
  std::optional<std::string> user_id;
};

// Meta's request body for `r` (META.md "Sending"): `to` the phone (else `recipient` the BSUID),
// `context.message_id` for a reply, and `biz_opaque_callback_data` = our message id, so a status
// can name a send whose answer was lost.
nlohmann::json graph_send_body(const outbound_request& r, const recipient& to, std::int64_t message_id,
                               const std::optional<std::string>& reply_wamid);

// What the message row shows: its content and content_type.
std::string stored_content(const outbound_request& r);
std::string stored_content_type(const outbound_request& r);

// How long to wait before sending again after a failed attempt (`attempt` counts from 1):
// exponential from 1 s (throttling from 4 s), doubling up to 5 minutes, with `jitter` in
// [0, 1) spreading retries over the upper half of each step so that many sends do not come
// back at once.
std::chrono::milliseconds retry_delay(int attempt, graph_error_action action, double jitter);

// After this many attempts a send that still fails for a passing reason is given up (failed,
// retryable, so an agent can retry it by hand).
constexpr int max_send_attempts = 12;

// What becomes of a send after a failed attempt (META.md's table, through
// classify_graph_error): given up (`retryable` says whether an agent's retry can help), tried
// again after `delay`, or in doubt — the request may have reached Meta and its answer was lost,
// so it must not be sent again while a status naming it may still come.
struct failed_attempt_decision {
  enum class kind { give_up, retry, doubt } what = kind::give_up;
  bool retryable = false;
  std::chrono::milliseconds delay{0};
  graph_error_action action = graph_error_action::fail;
};
failed_attempt_decision decide_failed_attempt(const graph_error& error, bool request_sent, int attempt,
                                              double jitter);

}  // namespace wachat::domain

#pragma once
#include <optional>
#include <string>

#include "domain/graph_error_policy.hpp"
#include "infra/conversation_writes.hpp"
#include "infra/site_settings.hpp"

// What the site actors answer the HTTP layer. No CAF here: the handlers read it.
namespace wachat::actors {

struct site_answer {
  enum class kind {
    ok,
    not_found,          // no such site
    invalid,            // the request cannot be carried out as given (`message` says why)
    conflict,           // another site has this phone number id
    unavailable,        // the database or the actor could not be reached
    graph_refused,      // Meta answered and refused the credentials; nothing saved
    graph_unreachable,  // Meta could not be asked; nothing saved
    template_invalid,   // a template send does not match the site's templates (`message` says why)
  };
  kind what = kind::ok;
  std::string message;
  std::optional<domain::graph_error> graph;  // Meta's error, when Graph answered one
  // Graph's fields of the phone number (a JSON object's text), after a successful check.
  std::string phone_json;
  // For a test of the credentials: whether Graph accepted them (`what` stays ok either way).
  bool check_ok = false;
  // The site's settings as its actor holds them (reads and writes answer with them).
  std::optional<infra::site_settings> settings;
  // GET .../whatsapp/templates: the API's body (JSON text).
  std::string templates_json;
  // POST .../whatsapp/test-message: what Meta answered.
  std::string whatsapp_message_id;
};

// How a dashboard write to a conversation ended (its conversation actor's answer).
struct conversation_reply {
  infra::conversation_write result = infra::conversation_write::done;
  bool failed = false;  // not written: the database or an actor could not be reached
  std::string error;
  std::string conversation;  // when done: the conversation as stored after it (API JSON text)
  std::string newest_inbound_wamid;  // when mark_read: the customer's newest message, if any
};

}  // namespace wachat::actors

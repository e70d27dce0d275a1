#pragma once
#include <caf/fwd.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "actors/outbound/outbound_messages.hpp"
#include "actors/site/site_answer.hpp"

// How the HTTP layer reaches the site actors: each call is one request to the site directory,
// answered once (an actor that cannot be reached answers `unavailable`). Light on purpose: no
// CAF in the handlers' translation units.
namespace wachat::actors {

class site_client {
 public:
  using reply = std::function<void(site_answer)>;  // runs on an actor's thread; must not block

  // `directory` is the site_directory_actor, passed untyped to keep this header light.
  site_client(caf::actor_system& sys, const caf::actor& directory);
  ~site_client();
  site_client(const site_client&) = delete;
  site_client& operator=(const site_client&) = delete;

  void read(const std::string& site, reply done);
  void change(const std::string& site, infra::site_settings_update update, reply done);
  void remove(const std::string& site, reply done);
  void check(const std::string& site, reply done);
  // A test message to `to` (digits) through the site's credentials; nothing is stored.
  void test_message(const std::string& site, std::string to, domain::outbound_request request, reply done);
  // The site's message templates (`refresh`: fetched from Graph again first).
  void templates(const std::string& site, bool refresh, reply done);
  // Whether some site has this webhook verify token (false when it cannot be told now).
  void knows_verify_token(const std::string& token, std::function<void(bool)> done);
  // A dashboard write to a conversation, through the actor of its customer `key` (their phone,
  // else their BSUID), in turn with that customer's messages.
  void patch(const std::string& site, const std::string& key, infra::conversation_change change,
             std::function<void(conversation_reply)> done);

  // An agent's send to the conversation `s.conversation_id` (not_found unless it is of
  // `caller_site`; empty: any site), answered with its outcome or, after the send wait, as
  // queued; `within` bounds the whole ask. Needs no database connection of the caller's: the
  // directory finds the conversation's site and customer.
  void send(const std::string& caller_site, outbound_send s, std::chrono::milliseconds within,
            std::function<void(send_reply)> done);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace wachat::actors

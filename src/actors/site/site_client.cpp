#include "actors/site/site_client.hpp"

#include <caf/all.hpp>

#include "actors/ask.hpp"
#include "actors/site/site_interfaces.hpp"
#include "actors/supervision/stop_and_wait.hpp"
#include "infra/ticket_map.hpp"

namespace wachat::actors {
namespace {

// Longer than a Graph call may take (the HTTP layer answers its own timeout first).
constexpr auto answer_within = std::chrono::milliseconds(40000);

template <class Answer>
Answer unanswered(const std::string& why);

template <>
site_answer unanswered<site_answer>(const std::string& why) {
  site_answer a;
  a.what = site_answer::kind::unavailable;
  a.message = "The site's actor did not answer: " + why;
  return a;
}

template <>
conversation_reply unanswered<conversation_reply>(const std::string& why) {
  conversation_reply r;
  r.failed = true;
  r.error = "The conversation's actor did not answer: " + why;
  return r;
}

template <>
send_reply unanswered<send_reply>(const std::string& why) {
  send_reply r;
  r.what = send_reply::kind::unavailable;
  r.error = "The conversation's actor did not answer: " + why;
  return r;
}

template <>
bool unanswered<bool>(const std::string&) {
  return false;
}

template <class Answer, class... Ts>
void ask_directory(caf::actor_system& sys, const site_directory_actor& dir, std::function<void(Answer)> done,
         Ts... xs) {
  actors::ask<Answer>(sys, dir, answer_within, std::move(done), unanswered<Answer>, xs...);
}

using clock = std::chrono::steady_clock;

// The sends waiting for their answer: each one's `done` and the time it is given up, under the
// ticket that travels with it (no closure travels as a message).
struct send_waiting {
  std::function<void(send_reply)> done;
  clock::time_point deadline;
};
using send_answers = infra::ticket_map<send_waiting>;

// How often the bridge looks for sends not answered in time.
constexpr auto expiry_sweep = std::chrono::seconds(1);
// A send is given up this long after its `within`: the HTTP layer's own timeout has answered its
// caller by then (that the send may still take effect), so the sweep only frees the entry.
constexpr auto expiry_grace = std::chrono::seconds(10);

// Agents' sends, the dashboard's commonest write, cross into the actors through this one
// long-lived actor rather than through a short-lived one each (ask()): a send then costs neither
// an actor's spawn and end nor two operations on CAF's clock (a request timeout set, and the
// timeouts cancelled as the asker ends), each of which wakes the clock's thread (bench/RESULTS.md,
// set 15). Its requests wait without a timeout; a periodic sweep frees the entry of a send not
// answered in time. A conversation actor answers every send it takes: after the send wait at
// the latest, and on `stop` (it decides with `await`, so a stop waits for the decision). Only
// one that died while deciding a send would not answer; its response handler then stays here,
// as CAF 0.17 cannot drop one: rare, and a few hundred bytes each.
using send_bridge_actor =
    caf::typed_actor<caf::reacts_to<send_atom, std::uint64_t, std::string, outbound_send>, caf::reacts_to<tick_atom>,
                     caf::reacts_to<stop_atom>>;

struct bridge_state {
  static inline const char* name = "site_send_bridge";
};

void answer(send_answers& answers, std::uint64_t ticket, send_reply r) {
  if (auto w = answers.take(ticket)) {
    w->done(std::move(r));
  }
}

send_bridge_actor::behavior_type send_bridge(send_bridge_actor::stateful_pointer<bridge_state> self,
                                             site_directory_actor directory, std::shared_ptr<send_answers> answers) {
  self->delayed_send(self, expiry_sweep, tick_atom::value);
  return {
      [=](send_atom, std::uint64_t ticket, std::string& caller_site, outbound_send& s) {
        self->request(directory, caf::infinite, send_atom::value, std::move(caller_site), std::move(s))
            .then([=](send_reply& r) { answer(*answers, ticket, std::move(r)); },
                  [=](caf::error& e) { answer(*answers, ticket, unanswered<send_reply>(to_string(e))); });
      },
      [=](tick_atom) {
        const auto now = clock::now();
        for (auto& w : answers->take_if([now](const send_waiting& w) { return w.deadline <= now; })) {
          w.done(unanswered<send_reply>("no answer in time"));
        }
        self->delayed_send(self, expiry_sweep, tick_atom::value);
      },
      [=](stop_atom) { self->quit(); },
  };
}

}  // namespace

struct site_client::impl {
  caf::actor_system* sys = nullptr;
  site_directory_actor directory;
  std::shared_ptr<send_answers> answers = std::make_shared<send_answers>();
  caf::actor bridge;
};

site_client::site_client(caf::actor_system& sys, const caf::actor& directory)
    : impl_(std::make_unique<impl>()) {
  impl_->sys = &sys;
  impl_->directory = caf::actor_cast<site_directory_actor>(directory);
  impl_->bridge = caf::actor_cast<caf::actor>(sys.spawn(send_bridge, impl_->directory, impl_->answers));
}

site_client::~site_client() { stop_and_wait(*impl_->sys, impl_->bridge); }

void site_client::read(const std::string& site, reply done) {
  ask_directory(*impl_->sys, impl_->directory, std::move(done), read_atom::value, site);
}

void site_client::change(const std::string& site, infra::site_settings_update update, reply done) {
  ask_directory(*impl_->sys, impl_->directory, std::move(done), change_atom::value, site, std::move(update));
}

void site_client::remove(const std::string& site, reply done) {
  ask_directory(*impl_->sys, impl_->directory, std::move(done), remove_atom::value, site);
}

void site_client::check(const std::string& site, reply done) {
  ask_directory(*impl_->sys, impl_->directory, std::move(done), check_atom::value, site);
}

void site_client::knows_verify_token(const std::string& token, std::function<void(bool)> done) {
  ask_directory(*impl_->sys, impl_->directory, std::move(done), verify_atom::value, token);
}

void site_client::patch(const std::string& site, const std::string& key, infra::conversation_change change,
                        std::function<void(conversation_reply)> done) {
  ask_directory(*impl_->sys, impl_->directory, std::move(done), patch_atom::value, site, key, std::move(change));
}

void site_client::test_message(const std::string& site, std::string to, domain::outbound_request request,
                               reply done) {
  ask_directory(*impl_->sys, impl_->directory, std::move(done), testmsg_atom::value, site, std::move(to),
                std::move(request));
}

void site_client::templates(const std::string& site, bool refresh, reply done) {
  ask_directory(*impl_->sys, impl_->directory, std::move(done), templates_atom::value, site, refresh);
}

void site_client::send(const std::string& caller_site, outbound_send s, std::chrono::milliseconds within,
                       std::function<void(send_reply)> done) {
  auto ticket = impl_->answers->add(send_waiting{std::move(done), clock::now() + within + expiry_grace});
  caf::anon_send(caf::actor_cast<send_bridge_actor>(impl_->bridge), send_atom::value, ticket, caller_site,
                 std::move(s));
}

}  // namespace wachat::actors

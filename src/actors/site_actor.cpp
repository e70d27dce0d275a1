#include "actors/site_actor.hpp"

#include <caf/all.hpp>
#include <ctime>
#include <unordered_map>

#include "actors/atoms.hpp"
#include "actors/inbound_messages.hpp"
#include "domain/window.hpp"

namespace wachat::actors {
namespace {

struct conversation_state {
  std::size_t in_flight = 0;
  std::uint64_t received = 0;  // units taken, so the site can tell whether its idle ask is stale
  // The window's end as this actor last decided it (unix s; 0: not known). Another process may
  // have moved it further: the store keeps the greater of the two.
  std::int64_t window_expiry = 0;
  static inline const char* name = "conversation";
};

// The conversation's rules, applied to one unit before it is stored (DESIGN.md §3.4, API.md
// §3.4): a customer message moves the window (reactions do not), Meta's 131047 shuts it.
void decide(conversation_state& st, unit_job& job) {
  const auto& u = *job.unit;
  if (u.what == domain::inbound_unit::kind::status) {
    job.closes_window = domain::closes_window(u.status);
    if (job.closes_window) {
      st.window_expiry = 0;  // shut as of the status's time, unless a later message is stored
    }
    return;
  }
  if (u.message.reaction) {
    return;
  }
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  st.window_expiry =
      domain::window_expiry_after(st.window_expiry, domain::plausible_timestamp(u.message.timestamp, now));
  job.window_expiry = st.window_expiry;
}

// The single writer of one customer's conversation within this process: units are stored one
// after another, in the order they arrived, each waiting for the previous one's commit. Other
// processes are kept in line by row locks and ON CONFLICT (DESIGN.md §4.4).
caf::behavior conversation(caf::stateful_actor<conversation_state>* self, caf::actor writer,
                           caf::actor site, std::string key, std::chrono::milliseconds idle) {
  return {
      [=](store_atom, unit_job& job) -> caf::result<domain::unit_outcome> {
        auto rp = self->make_response_promise<domain::unit_outcome>();
        ++self->state.in_flight;
        ++self->state.received;
        decide(self->state, job);
        // await, not then: the next unit waits until this one is committed.
        self->request(writer, caf::infinite, write_atom::value, std::move(job))
            .await(
                [=](domain::unit_outcome& o) mutable {
                  --self->state.in_flight;
                  rp.deliver(std::move(o));
                },
                [=](caf::error& e) mutable {
                  --self->state.in_flight;
                  domain::unit_outcome o;
                  o.retryable = true;
                  o.error = "writer unavailable: " + to_string(e);
                  rp.deliver(std::move(o));
                });
        return rp;
      },
      [=](stop_atom) { self->quit(); },
      caf::after(idle) >>
          [=] {
            if (self->state.in_flight == 0) {
              // The site decides: units it already forwarded are in our mailbox before its stop.
              self->send(site, idle_atom::value, key, self->id(), self->state.received);
            }
          },
  };
}

struct live_conversation {
  caf::actor actor;
  std::uint64_t forwarded = 0;  // units handed to it so far
};

struct site_state {
  site_actor_settings settings;
  std::unordered_map<std::string, live_conversation> conversations;
  static inline const char* name = "site";
};

caf::behavior site(caf::stateful_actor<site_state>* self, site_actor_settings settings) {
  self->state.settings = std::move(settings);
  return {
      [=](store_atom, unit_job& job) -> caf::result<domain::unit_outcome> {
        auto& st = self->state;
        const auto& key = job.unit->visitor_wa_id;
        auto it = st.conversations.find(key);
        if (it == st.conversations.end()) {
          auto actor = self->spawn(conversation, st.settings.writer, caf::actor{self}, key,
                                   st.settings.conversation_idle);
          it = st.conversations.emplace(key, live_conversation{actor, 0}).first;
          if (auto* g = st.settings.live_conversations) {
            g->fetch_add(1);
          }
        }
        // The conversation actor answers the dispatcher directly.
        ++it->second.forwarded;
        self->delegate(it->second.actor, store_atom::value, std::move(job));
        return caf::delegated<domain::unit_outcome>{};
      },
      [=](idle_atom, const std::string& key, caf::actor_id who, std::uint64_t received) {
        auto& st = self->state;
        auto it = st.conversations.find(key);
        // Retire it only if it has taken every unit we sent it: a unit still on its way means
        // it is not idle, and a replacement could otherwise run beside it, out of order.
        if (it != st.conversations.end() && it->second.actor.id() == who &&
            it->second.forwarded == received) {
          auto actor = it->second.actor;
          st.conversations.erase(it);
          self->send(actor, stop_atom::value);
          if (auto* g = st.settings.live_conversations) {
            g->fetch_sub(1);
          }
        }
      },
      [=](count_atom) -> std::size_t { return self->state.conversations.size(); },
      [=](stop_atom) {
        // The children are stopped here, from the behaviour: a functor attached for this would
        // run after CAF 0.17 destroyed the state, reach no child, and a child never told to
        // stop keeps ~actor_system (and so the process) waiting for ever.
        auto& st = self->state;
        for (auto& [key, conv] : st.conversations) {
          self->send(conv.actor, stop_atom::value);
        }
        if (auto* g = st.settings.live_conversations) {
          g->fetch_sub(static_cast<std::int64_t>(st.conversations.size()));
        }
        st.conversations.clear();
        self->quit();
      },
  };
}

}  // namespace

caf::actor spawn_site_actor(caf::actor_system& sys, site_actor_settings settings) {
  return sys.spawn(site, std::move(settings));
}

}  // namespace wachat::actors

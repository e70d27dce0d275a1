#include "actors/site/site_actor.hpp"

#include <caf/all.hpp>
#include <unordered_map>

#include "actors/site/conversation_actor.hpp"

namespace wachat::actors {
namespace {

struct live_conversation {
  conversation_actor actor;
  std::uint64_t forwarded = 0;  // units handed to it so far
};

struct site_state {
  site_actor_settings settings;
  std::unordered_map<std::string, live_conversation> conversations;
  static inline const char* name = "site";
};

site_actor::behavior_type site(site_actor::stateful_pointer<site_state> self, site_actor_settings settings) {
  self->state.settings = std::move(settings);
  return {
      [=](store_atom, unit_job& job) -> caf::result<domain::unit_outcome> {
        auto& st = self->state;
        const auto& key = job.unit->visitor_wa_id;
        auto it = st.conversations.find(key);
        if (it == st.conversations.end()) {
          auto actor = self->spawn(conversation, st.settings.writer, site_actor{self}, key,
                                   st.settings.conversation_idle);
          it = st.conversations.emplace(key, live_conversation{actor, 0}).first;
          if (auto* g = st.settings.live_conversations) {
            g->fetch_add(1);
          }
        }
        // The conversation actor answers the dispatcher directly.
        ++it->second.forwarded;
        return self->delegate(it->second.actor, store_atom::value, std::move(job));
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

site_actor spawn_site_actor(caf::actor_system& sys, site_actor_settings settings) {
  return sys.spawn(site, std::move(settings));
}

}  // namespace wachat::actors

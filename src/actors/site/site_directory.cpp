#include "actors/site/site_directory.hpp"

#include <caf/all.hpp>
#include <pqxx/pqxx>
#include <stdexcept>
#include <unordered_map>

#include "actors/site/site_actor.hpp"
#include "infra/conversation_owners.hpp"
#include "infra/log.hpp"
#include "infra/outbound_store.hpp"
#include "infra/site_settings.hpp"

namespace wachat::actors {
namespace {

// Distinct phone number ids remembered at most; many more (a flood of unknown ids) start over.
constexpr std::size_t max_routes = 10000;
// Conversations whose owner is remembered at most, and for how long. A customer's key changes
// when WhatsApp says their number or user id changed, or when a customer known by BSUID alone
// is linked to a phone. Until the entry expires, a send may then reach the actor of their old
// key while their messages reach the new one: two actors for one customer, which the outbox's
// SQL guards already serve (a second process's sends, DESIGN.md §4.4): order and one attempt
// hold, the recipient is read from the visitor at each attempt, and Meta's 131050 opts out the
// message's customer, found by the message.
constexpr std::size_t max_owners = 100000;
constexpr auto owner_kept = std::chrono::seconds(60);

struct directory_state {
  site_directory_settings settings;
  std::shared_ptr<infra::metrics> metrics;
  infra::metrics::gauge* live_conversations = nullptr;
  std::unique_ptr<pqxx::connection> conn;
  // After a failed connect, none is tried before this: an unreachable server (each try may take
  // the connect timeout) must not hold up the directory's every turn.
  std::chrono::steady_clock::time_point connect_after{};
  std::unique_ptr<infra::site_settings_listener> listener;
  bool listening = false;  // for logging the listener's outages once each
  std::unordered_map<std::string, site_actor> sites;
  // Phone number id -> site (none: no site has it). Forgotten on every settings change.
  std::unordered_map<std::string, std::optional<std::string>> routes;
  std::vector<route_watcher> watchers;  // told to forget the routes they were given
  // Conversation id -> its site and customer's key, for sends (the dashboard's commonest write).
  struct known_owner {
    infra::conversation_owner owner;
    std::chrono::steady_clock::time_point until;
  };
  std::unordered_map<std::int64_t, known_owner> owners;
  std::chrono::steady_clock::time_point next_sweep{};
  static inline const char* name = "site_directory";
};

using self_ptr = site_directory_actor::stateful_pointer<directory_state>;

infra::site_settings_store store(self_ptr self) {
  auto& st = self->state;
  if (!st.conn || !st.conn->is_open()) {
    st.conn.reset();
    const auto now = std::chrono::steady_clock::now();
    if (now < st.connect_after) {
      throw std::runtime_error("the database could not be reached a moment ago");
    }
    try {
      st.conn = std::make_unique<pqxx::connection>(st.settings.database_url);
    } catch (...) {
      st.connect_after = now + std::chrono::milliseconds(500);
      throw;
    }
  }
  return infra::site_settings_store{*st.conn, *st.settings.cfg};
}

// Drops a broken connection so that the next use connects again.
void forget_broken(self_ptr self) {
  if (self->state.conn && !self->state.conn->is_open()) {
    self->state.conn.reset();
  }
}

// The site's actor, spawned with its settings on first use; none when there is no such site.
// Throws when the database cannot be read.
std::optional<site_actor> site_for(self_ptr self, const std::string& site_id) {
  auto& st = self->state;
  if (auto it = st.sites.find(site_id); it != st.sites.end()) {
    return it->second;
  }
  auto loaded = store(self).load(site_id);
  if (!loaded) {
    return std::nullopt;
  }
  site_actor_settings s;
  s.settings = std::move(*loaded);
  s.conversations = st.settings.conversations;
  s.directory = site_directory_actor{self};
  s.cfg = st.settings.cfg;
  s.graph = st.settings.graph;
  s.live_conversations = st.live_conversations;
  auto actor = spawn_site_actor(self->home_system(), std::move(s));
  st.sites.emplace(site_id, actor);
  return actor;
}

// The conversation's site and customer key, remembered a while; none when there is no such
// conversation (not remembered: it may be created next). Throws when the database cannot be read.
std::optional<infra::conversation_owner> owner_for(self_ptr self, std::int64_t conversation_id) {
  auto& st = self->state;
  const auto now = std::chrono::steady_clock::now();
  if (auto it = st.owners.find(conversation_id); it != st.owners.end() && now < it->second.until) {
    return it->second.owner;
  }
  store(self);  // (re)connects
  auto owner = infra::find_conversation_owner(*st.conn, conversation_id);
  if (owner) {
    if (st.owners.size() >= max_owners) {
      st.owners.clear();
    }
    st.owners.insert_or_assign(conversation_id, directory_state::known_owner{*owner, now + owner_kept});
  }
  return owner;
}

// Reads the site's settings again and hands them to its actor (if it has one).
void reload(self_ptr self, const std::string& site_id) {
  auto it = self->state.sites.find(site_id);
  if (it == self->state.sites.end()) {
    return;
  }
  if (auto s = store(self).load(site_id)) {
    self->send(it->second, refresh_atom::value, std::move(*s));
  }
}

// Settings changed somewhere: routes are looked up again, live sites reloaded.
void changed(self_ptr self, const std::vector<std::string>& sites, bool everything) {
  auto& st = self->state;
  st.routes.clear();
  for (const auto& w : st.watchers) {
    self->send(w, forget_atom::value);
  }
  if (everything) {
    for (const auto& [id, actor] : st.sites) {
      reload(self, id);
    }
    return;
  }
  for (const auto& id : sites) {
    reload(self, id);
  }
}

void listen(self_ptr self) {
  auto& st = self->state;
  try {
    if (!st.listener) {
      st.listener = std::make_unique<infra::site_settings_listener>(st.settings.database_url);
    }
    auto heard = st.listener->poll();
    if (!st.listening) {
      st.listening = true;
      infra::log_info("site_settings_listening");
    }
    if (heard.everything || !heard.sites.empty()) {
      changed(self, heard.sites, heard.everything);
    }
  } catch (const std::exception& e) {
    forget_broken(self);
    if (st.listening) {
      st.listening = false;
      infra::log_warn("site_settings_listen_failed", {{"error", e.what()}});
    }
  }
}

// The site and actor of each phone number id, in order; throws when the database cannot be read.
site_routes routes_for(self_ptr self, const std::vector<std::string>& phone_ids) {
  auto& st = self->state;
  site_routes out;
  out.sites.reserve(phone_ids.size());
  out.actors.reserve(phone_ids.size());
  for (const auto& phone_id : phone_ids) {
    std::optional<std::string> site_id;
    if (!phone_id.empty()) {
      auto it = st.routes.find(phone_id);
      if (it == st.routes.end()) {
        if (st.routes.size() >= max_routes) {
          st.routes.clear();
        }
        it = st.routes.emplace(phone_id, store(self).site_for_phone(phone_id)).first;
      }
      site_id = it->second;
    }
    std::optional<site_actor> actor;
    if (site_id) {
      actor = site_for(self, *site_id);
    }
    out.sites.push_back(actor ? *site_id : std::string{});
    out.actors.push_back(actor ? *actor : site_actor{});
  }
  return out;
}

site_answer no_site() {
  site_answer a;
  a.what = site_answer::kind::not_found;
  a.message = "No such site.";
  return a;
}

site_answer db_down(const std::exception& e) {
  site_answer a;
  a.what = site_answer::kind::unavailable;
  a.message = std::string{"The database could not be reached: "} + e.what();
  return a;
}

// Runs one settings write for a site actor, then reloads what is stored now.
template <class Write>
settings_written write(self_ptr self, const std::string& site_id, Write&& fn) {
  settings_written w;
  try {
    auto s = store(self);
    w.result = fn(s);
    changed(self, {}, false);  // routes may differ from now on
    w.settings = s.load(site_id);
  } catch (const std::exception& e) {
    forget_broken(self);
    w.failed = true;
    w.error = e.what();
  }
  return w;
}

// Hands the outbox entries nobody is on to their conversations' actors (any process may: the
// claim of an attempt lets one through).
void sweep(self_ptr self) {
  auto& st = self->state;
  auto now = std::chrono::steady_clock::now();
  if (now < st.next_sweep) {
    return;
  }
  st.next_sweep = now + st.settings.outbox_sweep;
  try {
    store(self);  // (re)connects
    for (auto& r : infra::sweep_outbox(*st.conn, st.settings.conversations.send_doubt.count(), 500)) {
      if (auto site = site_for(self, r.site)) {
        self->send(*site, resume_atom::value, r.key, r.message_id);
      }
    }
  } catch (const std::exception& e) {
    forget_broken(self);
    infra::log_warn("outbox_sweep_failed", {{"error", e.what()}});
  }
}

site_directory_actor::behavior_type directory(self_ptr self, site_directory_settings settings,
                                              std::shared_ptr<infra::metrics> metrics) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.metrics = std::move(metrics);
  st.live_conversations =
      &st.metrics->get_gauge("wachat_conversation_actors", "Conversation actors alive in this process.");
  self->send(self, tick_atom::value);
  // Forwards a dashboard request to the site's actor, or answers for a site that is not there.
  auto to_site = [self](const std::string& site_id, auto... xs) -> caf::result<site_answer> {
    try {
      if (auto site = site_for(self, site_id)) {
        return self->delegate(*site, xs...);
      }
      return no_site();
    } catch (const std::exception& e) {
      forget_broken(self);
      return db_down(e);
    }
  };
  return {
      [=](route_atom, const std::vector<std::string>& phone_ids) {
        try {
          return routes_for(self, phone_ids);
        } catch (const std::exception& e) {
          forget_broken(self);
          site_routes failed;
          failed.error = std::string{"routing failed: "} + e.what();
          return failed;
        }
      },
      [=](read_atom, const std::string& site) { return to_site(site, read_atom::value); },
      [=](change_atom, const std::string& site, infra::site_settings_update& u) {
        return to_site(site, change_atom::value, std::move(u));
      },
      [=](remove_atom, const std::string& site) { return to_site(site, remove_atom::value); },
      [=](check_atom, const std::string& site) { return to_site(site, check_atom::value); },
      [=](testmsg_atom, const std::string& site, std::string& to, domain::outbound_request& r) {
        return to_site(site, testmsg_atom::value, std::move(to), std::move(r));
      },
      [=](templates_atom, const std::string& site, bool refresh) {
        return to_site(site, templates_atom::value, refresh);
      },
      [=](patch_atom, const std::string& site, const std::string& key,
          infra::conversation_change& change) -> caf::result<conversation_reply> {
        try {
          if (auto actor = site_for(self, site)) {
            return self->delegate(*actor, patch_atom::value, key, std::move(change));
          }
          conversation_reply r;
          r.result = infra::conversation_write::not_found;
          return r;
        } catch (const std::exception& e) {
          forget_broken(self);
          conversation_reply r;
          r.failed = true;
          r.error = e.what();
          return r;
        }
      },
      [=](send_atom, const std::string& caller_site, outbound_send& s) -> caf::result<send_reply> {
        try {
          auto owner = owner_for(self, s.conversation_id);
          std::optional<site_actor> actor;
          if (owner && (caller_site.empty() || caller_site == owner->site)) {
            actor = site_for(self, owner->site);
          }
          if (actor) {
            s.site = owner->site;
            return self->delegate(*actor, send_atom::value, owner->key, std::move(s));
          }
          send_reply r;
          r.what = send_reply::kind::not_found;
          return r;
        } catch (const std::exception& e) {
          forget_broken(self);
          send_reply r;
          r.error = e.what();
          return r;
        }
      },
      [=](tchanged_atom, const std::string& waba) {
        try {
          // Only sites with a live actor hold a cache; the others load theirs when first asked.
          for (const auto& site : store(self).sites_for_waba(waba)) {
            if (auto it = self->state.sites.find(site); it != self->state.sites.end()) {
              self->send(it->second, tchanged_atom::value);
            }
          }
        } catch (const std::exception& e) {
          forget_broken(self);
          infra::log_warn("template_change_not_applied", {{"waba", waba}, {"error", e.what()}});
        }
      },
      [=](watch_atom, route_watcher& w) { self->state.watchers.push_back(std::move(w)); },
      [=](verify_atom, const std::string& token) {
        try {
          return store(self).verify_token_known(token);
        } catch (const std::exception& e) {
          forget_broken(self);
          infra::log_warn("verify_token_lookup_failed", {{"error", e.what()}});
          return false;  // Meta asks again
        }
      },
      [=](save_atom, const std::string& site, const infra::site_settings_update& u) {
        return write(self, site, [&](infra::site_settings_store& s) { return s.save(site, u); });
      },
      [=](clear_atom, const std::string& site) {
        return write(self, site, [&](infra::site_settings_store& s) { return s.clear(site); });
      },
      [=](record_atom, const std::string& site, bool ok, const std::string& error) {
        return write(self, site, [&](infra::site_settings_store& s) {
          s.record_check(site, ok, error.empty() ? std::nullopt : std::optional<std::string>{error});
          return infra::settings_write::done;
        });
      },
      [=](tick_atom) {
        listen(self);
        sweep(self);
        self->delayed_send(self, self->state.settings.listen_poll, tick_atom::value);
      },
      [=](stop_atom) {
        for (auto& [id, site] : self->state.sites) {
          self->send(site, stop_atom::value);
        }
        self->state.sites.clear();
        self->quit();
      },
  };
}

}  // namespace

site_directory_actor spawn_site_directory(caf::actor_system& sys, site_directory_settings settings,
                                          std::shared_ptr<infra::metrics> metrics) {
  return sys.spawn<caf::detached>(directory, std::move(settings), std::move(metrics));
}

}  // namespace wachat::actors

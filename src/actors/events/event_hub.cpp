#include "actors/events/event_hub.hpp"

#include <caf/all.hpp>

#include <fmt/format.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <set>
#include <vector>

#include "actors/events/events_interfaces.hpp"
#include "actors/supervision/stop_and_wait.hpp"
#include "infra/chat_views.hpp"
#include "infra/cached_statement.hpp"
#include "infra/event_log.hpp"
#include "infra/log.hpp"

namespace wachat::actors {
namespace {

using infra::check_event_row;
using infra::dump;
using infra::event_conversation;
using infra::event_message;
using infra::event_notification;
using infra::events_with_objects_sql;

using clock = std::chrono::steady_clock;

struct subscriber {
  std::shared_ptr<http::stream_sink> sink;
  std::int64_t cursor = 0;  // last event id written to it
};

// The conversations and messages a run of events names, serialized once each: a message's
// events (message.created, conversation.updated, ...) share them.
struct event_objects {
  std::map<std::int64_t, std::string> conversations;  // id -> JSON text
  std::map<std::int64_t, std::string> messages;
};

event_objects render_objects(const pqxx::result& rows) {
  event_objects out;
  for (const auto& row : rows) {
    check_event_row(row);
    if (!row[3].is_null() && out.conversations.count(row[3].as<std::int64_t>()) == 0) {
      if (auto c = event_conversation(row)) {
        out.conversations.emplace(row[3].as<std::int64_t>(), dump(*c));
      }
    }
    if (!row[4].is_null() && out.messages.count(row[4].as<std::int64_t>()) == 0) {
      if (auto m = event_message(row)) {
        out.messages.emplace(row[4].as<std::int64_t>(), dump(*m));
      }
    }
  }
  return out;
}

// `id:`, `event:` and `data:` of one event. The data object is written member by member: the
// scalar members through the JSON writer, the conversation and message as the JSON text
// serialized above (each a complete JSON value), so nothing is escaped by hand.
std::string render_frame(const pqxx::row& ev, const event_objects& objects) {
  auto type = ev[2].as<std::string>();
  std::string data = "{\"type\":" + dump(nlohmann::json(type)) +
                     ",\"site_id\":" + dump(nlohmann::json(ev[1].as<std::string>())) +
                     ",\"conversation_id\":" +
                     (ev[3].is_null() ? std::string{"null"} : dump(nlohmann::json(ev[3].c_str())));
  if (!ev[3].is_null()) {
    if (auto c = objects.conversations.find(ev[3].as<std::int64_t>());
        c != objects.conversations.end()) {
      data += ",\"conversation\":" + c->second;
    }
  }
  if (!ev[4].is_null()) {
    if (auto m = objects.messages.find(ev[4].as<std::int64_t>()); m != objects.messages.end()) {
      data += ",\"message\":" + m->second;
    }
  }
  if (auto n = event_notification(ev)) {
    data += ",\"notification\":" + dump(*n);
  }
  data += '}';
  return fmt::format("id: {}\nevent: {}\ndata: {}\n\n", ev[0].as<std::int64_t>(), type, data);
}

// Hears NOTIFY on the events channel: the payload is the site whose events were appended.
class receiver : public pqxx::notification_receiver {
 public:
  receiver(pqxx::connection_base& c, std::set<std::string>& dirty)
      : pqxx::notification_receiver(c, infra::events_channel), dirty_(dirty) {}
  void operator()(const std::string& payload, int) override { dirty_.insert(payload); }

 private:
  std::set<std::string>& dirty_;
};

struct hub_state {
  std::string url;
  infra::metrics::gauge* subscribers_gauge = nullptr;
  std::unique_ptr<pqxx::connection> conn;
  std::unique_ptr<receiver> rec;  // after conn: destroyed (unlistened) first
  std::set<std::string> dirty;    // sites with events not delivered yet
  std::map<std::string, std::vector<subscriber>> subs;
  std::vector<event_subscription> pending;  // taken on the next turn
  clock::time_point last_ping = clock::now();
  static inline const char* name = "event_hub";
};

using self_ptr = event_hub_actor::stateful_pointer<hub_state>;

void deliver(hub_state& st, const std::string& site) {
  auto it = st.subs.find(site);
  if (it == st.subs.end() || it->second.empty()) {
    return;
  }
  std::int64_t from = INT64_MAX;
  for (auto& s : it->second) {
    from = std::min(from, s.cursor);
  }
  // One statement in autocommit: the events with the objects they name, one round trip.
  pqxx::nontransaction tx{*st.conn};
  auto rows = infra::exec_cached(tx, "hub_events", events_with_objects_sql, site, from, std::int64_t{5000});
  if (rows.size() == 5000) {
    st.dirty.insert(site);  // more to come: continue on the next turn
  }
  // Objects as they are now, not when the event was written: a replayed event shows the
  // current state of its conversation and message; API.md §3.5 asks for the objects, and the
  // latest state is what a dashboard that reconnects must show anyway.
  auto objects = render_objects(rows);
  // One write per subscriber for the whole run, of the frames it has not seen yet.
  std::vector<std::string> chunks(it->second.size());
  for (const auto& ev : rows) {
    auto id = ev[0].as<std::int64_t>();
    auto frame = render_frame(ev, objects);
    for (std::size_t i = 0; i < it->second.size(); ++i) {
      auto& s = it->second[i];
      if (s.cursor < id) {
        chunks[i] += frame;
        s.cursor = id;
      }
    }
  }
  for (std::size_t i = 0; i < it->second.size(); ++i) {
    if (!chunks[i].empty()) {
      it->second[i].sink->send(std::move(chunks[i]));
    }
  }
}

void prune_and_ping(hub_state& st, bool ping) {
  std::int64_t count = 0;
  for (auto it = st.subs.begin(); it != st.subs.end();) {
    auto& v = it->second;
    std::erase_if(v, [](const subscriber& s) { return !s.sink->is_open(); });
    if (ping) {
      for (auto& s : v) {
        s.sink->send(": keep-alive\n\n");
      }
    }
    count += static_cast<std::int64_t>(v.size());
    it = v.empty() ? st.subs.erase(it) : std::next(it);
  }
  st.subscribers_gauge->store(count);
}

bool connected(self_ptr self) {
  auto& st = self->state;
  if (st.conn && st.conn->is_open()) {
    return true;
  }
  st.rec.reset();
  st.conn.reset();
  try {
    // Probes only, so that the prepared query's generic plan stays index-driven.
    st.conn = infra::connect_for_probes(st.url);
    st.rec = std::make_unique<receiver>(*st.conn, st.dirty);
    // Anything published while we were away: deliver to whoever is subscribed.
    for (const auto& [site, _] : st.subs) {
      st.dirty.insert(site);
    }
    return true;
  } catch (const std::exception& e) {
    st.rec.reset();
    st.conn.reset();
    infra::log_warn("event_hub_reconnect", {{"error", e.what()}});
    return false;
  }
}

// One turn: wait (at most 100 ms) for a notification unless work is queued, take the new
// subscribers (each replayed from its cursor at once), deliver what the notified sites have.
// The mailbox (new subscribers, stop) is read between turns.
void turn(self_ptr self) {
  auto& st = self->state;
  if (!connected(self)) {
    self->delayed_send(self, std::chrono::seconds(1), poll_atom::value);
    return;
  }
  try {
    if (st.dirty.empty() && st.pending.empty()) {
      st.conn->await_notification(0, 100000);
    } else {
      st.conn->get_notifs();
    }
    auto fresh = std::move(st.pending);
    st.pending.clear();
    for (auto& p : fresh) {
      st.subs[p.site].push_back(subscriber{std::move(p.sink), p.after});
      st.dirty.insert(p.site);
    }
    auto sites = std::move(st.dirty);
    st.dirty.clear();
    for (const auto& site : sites) {
      deliver(st, site);
    }
    bool ping = clock::now() - st.last_ping > std::chrono::seconds(15);
    if (ping) {
      st.last_ping = clock::now();
    }
    prune_and_ping(st, ping);
  } catch (const std::exception& e) {
    infra::log_warn("event_hub_reconnect", {{"error", e.what()}});
    st.rec.reset();
    st.conn.reset();
    self->delayed_send(self, std::chrono::seconds(1), poll_atom::value);
    return;
  }
  self->send(self, poll_atom::value);
}

event_hub_actor::behavior_type hub(self_ptr self, std::string url, infra::metrics::gauge* gauge) {
  self->state.url = std::move(url);
  self->state.subscribers_gauge = gauge;
  self->send(self, poll_atom::value);
  return {
      [=](subscribe_atom, event_subscription& sub) {
        sub.sink->send(": connected\nretry: 2000\n\n");
        self->state.pending.push_back(std::move(sub));
      },
      [=](poll_atom) { turn(self); },
      [=](stop_atom) {
        auto& st = self->state;
        for (auto& [site, v] : st.subs) {
          for (auto& s : v) {
            s.sink->close();
          }
        }
        for (auto& p : st.pending) {
          p.sink->close();
        }
        st.subs.clear();
        st.pending.clear();
        st.subscribers_gauge->store(0);
        self->quit();
      },
  };
}

}  // namespace

struct event_hub::impl {
  caf::actor_system* sys = nullptr;
  caf::actor actor;
};

event_hub::event_hub(caf::actor_system& sys, std::string database_url, std::shared_ptr<infra::metrics> metrics)
    : impl_(std::make_unique<impl>()) {
  impl_->sys = &sys;
  auto* gauge = &metrics->get_gauge("wachat_sse_subscribers", "Open live-event streams.");
  impl_->actor = caf::actor_cast<caf::actor>(sys.spawn<caf::detached>(hub, std::move(database_url), gauge));
}

event_hub::~event_hub() { stop(); }

void event_hub::subscribe(const std::string& site_id, std::int64_t after, std::shared_ptr<http::stream_sink> sink) {
  caf::anon_send(caf::actor_cast<event_hub_actor>(impl_->actor), subscribe_atom::value,
                 event_subscription{site_id, after, std::move(sink)});
}

void event_hub::stop() { stop_and_wait(*impl_->sys, impl_->actor); }

}  // namespace wachat::actors

#include "http/event_hub.hpp"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <set>
#include <thread>
#include <vector>

#include "http/chat_views.hpp"
#include "infra/cached_statement.hpp"
#include "infra/event_log.hpp"
#include "infra/log.hpp"

namespace wachat::http {
namespace {

using clock = std::chrono::steady_clock;

struct subscriber {
  std::shared_ptr<stream_sink> sink;
  std::int64_t cursor = 0;  // last event id written to it
};

struct pending_subscription {
  std::string site;
  std::optional<std::int64_t> last_event_id;
  std::shared_ptr<stream_sink> sink;
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
  data += '}';
  return fmt::format("id: {}\nevent: {}\ndata: {}\n\n", ev[0].as<std::int64_t>(), type, data);
}

}  // namespace

struct event_hub::impl {
  std::string url;
  std::shared_ptr<infra::metrics> metrics;
  infra::metrics::gauge* subscribers_gauge = nullptr;
  std::atomic<bool> stopping{false};
  std::thread thread;
  std::mutex mutex;
  std::vector<pending_subscription> pending;  // guarded by mutex
  std::set<std::string> dirty_sites;          // guarded by mutex (notifications)
  // Owned by the hub thread only:
  std::map<std::string, std::vector<subscriber>> subs;

  class receiver : public pqxx::notification_receiver {
   public:
    receiver(pqxx::connection_base& c, impl& owner)
        : pqxx::notification_receiver(c, infra::events_channel), owner_(owner) {}
    void operator()(const std::string& payload, int) override {
      std::lock_guard lock{owner_.mutex};
      owner_.dirty_sites.insert(payload);
    }

   private:
    impl& owner_;
  };

  void deliver(pqxx::connection_base& conn, const std::string& site) {
    auto it = subs.find(site);
    if (it == subs.end() || it->second.empty()) {
      return;
    }
    std::int64_t from = INT64_MAX;
    for (auto& s : it->second) {
      from = std::min(from, s.cursor);
    }
    // One statement in autocommit: the events with the objects they name, one round trip.
    pqxx::nontransaction tx{conn};
    auto rows = infra::exec_cached(tx, "hub_events", events_with_objects_sql, site, from,
                                   std::int64_t{5000});
    if (rows.size() == 5000) {
      std::lock_guard lock{mutex};
      dirty_sites.insert(site);  // more to come: continue on the next turn
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

  void add_pending(pqxx::connection_base& conn, std::vector<pending_subscription>& list) {
    for (auto& p : list) {
      std::int64_t cursor = 0;
      if (p.last_event_id) {
        cursor = *p.last_event_id;
      } else {
        pqxx::read_transaction tx{conn};
        auto r = tx.exec_params("SELECT coalesce(max(id), 0) FROM wa_events WHERE site_id = $1",
                                p.site);
        cursor = r[0][0].as<std::int64_t>();
      }
      subs[p.site].push_back(subscriber{p.sink, cursor});
      // Replays what it missed (and anything newer) right away.
      deliver(conn, p.site);
    }
  }

  void prune_and_ping(bool ping) {
    std::int64_t count = 0;
    for (auto it = subs.begin(); it != subs.end();) {
      auto& v = it->second;
      std::erase_if(v, [](const subscriber& s) { return !s.sink->is_open(); });
      if (ping) {
        for (auto& s : v) {
          s.sink->send(": keep-alive\n\n");
        }
      }
      count += static_cast<std::int64_t>(v.size());
      it = v.empty() ? subs.erase(it) : std::next(it);
    }
    subscribers_gauge->store(count);
  }

  void run() {
    auto last_ping = clock::now();
    while (!stopping) {
      try {
        // Probes only, so that the prepared query's generic plan stays index-driven.
        auto conn_ptr = infra::connect_for_probes(url);
        auto& conn = *conn_ptr;
        receiver rec{conn, *this};
        // Anything published while we were away: deliver to whoever is subscribed.
        {
          std::lock_guard lock{mutex};
          for (const auto& [site, _] : subs) {
            dirty_sites.insert(site);
          }
        }
        while (!stopping) {
          bool queued = false;
          {
            std::lock_guard lock{mutex};
            queued = !dirty_sites.empty() || !pending.empty();
          }
          // A site left marked by the last round (it had more than 5,000 events to send) or a
          // new subscriber is served at once; otherwise wait for a notification, at most
          // 100 ms, which also picks up new subscribers.
          if (queued) {
            conn.get_notifs();
          } else {
            conn.await_notification(0, 100000);
          }
          std::vector<pending_subscription> new_subs;
          std::set<std::string> sites;
          {
            std::lock_guard lock{mutex};
            new_subs.swap(pending);
            sites.swap(dirty_sites);
          }
          add_pending(conn, new_subs);
          for (const auto& site : sites) {
            deliver(conn, site);
          }
          bool ping = clock::now() - last_ping > std::chrono::seconds(15);
          if (ping) {
            last_ping = clock::now();
          }
          prune_and_ping(ping);
        }
      } catch (const std::exception& e) {
        infra::log_warn("event_hub_reconnect", {{"error", e.what()}});
        for (int i = 0; i < 10 && !stopping; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
    }
    for (auto& [site, v] : subs) {
      for (auto& s : v) {
        s.sink->close();
      }
    }
    std::lock_guard lock{mutex};
    for (auto& p : pending) {
      p.sink->close();
    }
  }
};

event_hub::event_hub(std::string database_url, std::shared_ptr<infra::metrics> metrics)
    : impl_(std::make_unique<impl>()) {
  impl_->url = std::move(database_url);
  impl_->metrics = std::move(metrics);
  impl_->subscribers_gauge =
      &impl_->metrics->get_gauge("wachat_sse_subscribers", "Open live-event streams.");
}

event_hub::~event_hub() { stop(); }

void event_hub::start() {
  impl_->thread = std::thread([this] { impl_->run(); });
}

void event_hub::stop() {
  impl_->stopping = true;
  if (impl_->thread.joinable()) {
    impl_->thread.join();
  }
}

void event_hub::subscribe(const std::string& site_id, std::optional<std::int64_t> last_event_id,
                          std::shared_ptr<stream_sink> sink) {
  sink->send(": connected\nretry: 2000\n\n");
  std::lock_guard lock{impl_->mutex};
  impl_->pending.push_back(pending_subscription{site_id, last_event_id, std::move(sink)});
}

}  // namespace wachat::http

// Two wachatd processes on one database, no balancer in front, fed interleaved and duplicated
// deliveries for the same visitors (DESIGN.md §4 invariants 3 and 4, §6): still one conversation
// per visitor, one message per wamid, unread counted once, the window from Meta's timestamps.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <ctime>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <thread>

#include "support/http_client.hpp"
#include "support/pg_control.hpp"
#include "support/wachat_fixture.hpp"

using namespace wachat;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::string phone_id = "106540352242922";
constexpr int visitors = 20;
constexpr int per_visitor = 10;

std::int64_t now_s() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::string rfc3339(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string wa_id(int visitor) { return "26097100" + std::to_string(1000 + visitor); }

struct inbound {
  int visitor;
  std::string wamid;
  std::int64_t timestamp;
  std::string text;
};

json message_json(const inbound& m) {
  return {{"from", wa_id(m.visitor)},
          {"id", m.wamid},
          {"timestamp", std::to_string(m.timestamp)},
          {"type", "text"},
          {"text", {{"body", m.text}}}};
}

json contact_json(int visitor) {
  return {{"profile", {{"name", "Visitor " + std::to_string(visitor)}}}, {"wa_id", wa_id(visitor)}};
}

json change(json value) { return {{"field", "messages"}, {"value", std::move(value)}}; }

json entry(json changes) { return {{"id", "102290129340398"}, {"changes", std::move(changes)}}; }

std::string whole_body(json entries) {
  return json{{"object", "whatsapp_business_account"}, {"entry", std::move(entries)}}.dump();
}

// One delivery carrying `batch` (messages of one or several visitors), laid out in one of the
// shapes Meta uses: all in one change, one change per message, or one entry per message.
std::string delivery(const std::vector<inbound>& batch, int layout) {
  auto value_of = [](const std::vector<inbound>& ms) {
    json contacts = json::array();
    json messages = json::array();
    std::set<int> named;
    for (const auto& m : ms) {
      if (named.insert(m.visitor).second) {
        contacts.push_back(contact_json(m.visitor));
      }
      messages.push_back(message_json(m));
    }
    return json{{"messaging_product", "whatsapp"}, {"metadata", test::metadata(phone_id)},
                {"contacts", contacts}, {"messages", messages}};
  };
  if (batch.size() == 1 || layout % 3 == 0) {
    return whole_body(json::array({entry(json::array({change(value_of(batch))}))}));
  }
  if (layout % 3 == 1) {
    json changes = json::array();
    for (const auto& m : batch) {
      changes.push_back(change(value_of({m})));
    }
    return whole_body(json::array({entry(changes)}));
  }
  json entries = json::array();
  for (const auto& m : batch) {
    entries.push_back(entry(json::array({change(value_of({m}))})));
  }
  return whole_body(entries);
}

// Splits `items` (already shuffled) into batches of 1 to `max_batch`.
template <typename T>
std::vector<std::vector<T>> batches(const std::vector<T>& items, std::mt19937& rng, int max_batch) {
  std::vector<std::vector<T>> out;
  std::uniform_int_distribution<int> size_of(1, max_batch);
  std::size_t i = 0;
  while (i < items.size()) {
    auto n = std::min<std::size_t>(static_cast<std::size_t>(size_of(rng)), items.size() - i);
    out.emplace_back(items.begin() + static_cast<std::ptrdiff_t>(i),
                     items.begin() + static_cast<std::ptrdiff_t>(i + n));
    i += n;
  }
  return out;
}

struct job {
  std::uint16_t port;
  std::string body;
};

// Posts every job (signed) from `threads` threads on kept-alive connections; answers by status.
std::map<int, int> post_all(const std::vector<job>& jobs, int threads) {
  std::atomic<std::size_t> next{0};
  std::mutex mutex;
  std::map<int, int> statuses;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      std::map<std::uint16_t, std::unique_ptr<test::http_client>> clients;
      for (auto i = next++; i < jobs.size(); i = next++) {
        const auto& j = jobs[i];
        auto& c = clients[j.port];
        if (!c) {
          c = std::make_unique<test::http_client>("127.0.0.1", j.port);
        }
        int status = -1;
        try {
          status = c->request("POST", test::webhook_path, j.body,
                              {{"X-Hub-Signature-256", test::meta_signature(test::app_secret, j.body)},
                               {"Content-Type", "application/json"}})
                       .status;
        } catch (const std::exception&) {
          c.reset();
        }
        std::lock_guard lock{mutex};
        ++statuses[status];
      }
    });
  }
  for (auto& w : workers) {
    w.join();
  }
  return statuses;
}

// Waits until the inbox holds `rows` webhooks and every one is processed.
void wait_all_processed(const std::string& db, std::size_t rows) {
  bool done = test::eventually(
      [&] {
        return test::query_scalar(db, "SELECT count(*) FROM wa_webhook_events WHERE status = 'processed'") ==
               std::to_string(rows);
      },
      90s);
  INFO("inbox: " << test::query_scalar(db, "SELECT string_agg(status || ' ' || n, ', ') FROM"
                                           " (SELECT status, count(*) n FROM wa_webhook_events GROUP BY 1) s"));
  INFO("errors: " << test::query_scalar(db, "SELECT string_agg(DISTINCT error, ' | ') FROM wa_webhook_events WHERE error IS NOT NULL"));
  REQUIRE(done);
}

std::int64_t scalar_int(const std::string& db, const std::string& sql) {
  auto v = test::query_scalar(db, sql);
  return v.empty() ? -1 : std::stoll(v);
}

}  // namespace

TEST_CASE("two processes fed interleaved, duplicated deliveries keep one conversation per visitor, one message per wamid and the right window") {
  test::wachat_fixture a;
  a.make_site("acme", phone_id);
  test::wachat_fixture b{{}, a.db};
  std::mt19937 rng{20251125};

  // 20 visitors × 10 messages; each visitor's Meta timestamps are a shuffle of its send slots,
  // so neither arrival order nor wamid order follows time.
  auto base = now_s() - 3 * 3600;
  std::vector<inbound> all;
  std::map<int, std::int64_t> newest;
  std::map<int, std::vector<inbound>> by_visitor;
  for (int v = 0; v < visitors; ++v) {
    std::vector<int> slots(per_visitor);
    std::iota(slots.begin(), slots.end(), 0);
    std::shuffle(slots.begin(), slots.end(), rng);
    for (int k = 0; k < per_visitor; ++k) {
      inbound m{v, "wamid.mp." + std::to_string(v) + "." + std::to_string(k),
                base + slots[static_cast<std::size_t>(k)] * 97 + v, "visitor " + std::to_string(v) + " says " + std::to_string(k)};
      newest[v] = std::max(newest[v], m.timestamp);
      by_visitor[v].push_back(m);
      all.push_back(m);
    }
  }

  // Two different batchings of the same messages; every delivery goes to both processes.
  std::vector<job> jobs;
  int layout = 0;
  for (int round = 0; round < 2; ++round) {
    auto order = all;
    std::shuffle(order.begin(), order.end(), rng);
    for (const auto& batch : batches(order, rng, 4)) {
      auto body = delivery(batch, layout++);
      jobs.push_back({a.port(), body});
      jobs.push_back({b.port(), body});
    }
  }
  std::shuffle(jobs.begin(), jobs.end(), rng);
  auto statuses = post_all(jobs, 6);
  CHECK(statuses == std::map<int, int>{{200, static_cast<int>(jobs.size())}});
  wait_all_processed(a.db, jobs.size());

  // In the database: one visitor, one conversation per visitor; one row per wamid.
  CHECK(scalar_int(a.db, "SELECT count(*) FROM mod_chat_visitors WHERE site_id = 'acme'") == visitors);
  CHECK(scalar_int(a.db, "SELECT count(*) FROM mod_chat_conversations WHERE site_id = 'acme'") == visitors);
  CHECK(scalar_int(a.db, "SELECT count(DISTINCT visitor_id) FROM mod_chat_conversations WHERE site_id = 'acme'") == visitors);
  CHECK(scalar_int(a.db, "SELECT count(*) FROM mod_chat_messages WHERE site_id = 'acme'") == visitors * per_visitor);
  CHECK(scalar_int(a.db, "SELECT count(DISTINCT whatsapp_message_id) FROM mod_chat_messages WHERE site_id = 'acme'") ==
        visitors * per_visitor);
  // Each visitor's messages all in that visitor's conversation.
  CHECK(scalar_int(a.db, "SELECT count(*) FROM mod_chat_messages m JOIN mod_chat_conversations c ON c.id = m.conversation_id"
                         " JOIN mod_chat_visitors v ON v.id = c.visitor_id WHERE m.sender_id <> v.whatsapp_phone") == 0);
  // Live events: one creation per conversation and per message, however often it was delivered.
  CHECK(scalar_int(a.db, "SELECT count(*) FROM wa_events WHERE type = 'conversation.created'") == visitors);
  CHECK(scalar_int(a.db, "SELECT count(*) FROM wa_events WHERE type = 'message.created'") == visitors * per_visitor);

  // Through the API, one visitor at a time.
  auto list = a.call_json("GET", "/api/sites/acme/conversations?limit=200")["conversations"];
  REQUIRE(list.size() == static_cast<std::size_t>(visitors));
  std::map<std::string, json> by_phone;
  for (const auto& c : list) {
    by_phone[c["visitor"]["whatsapp_phone"].get<std::string>()] = c;
  }
  REQUIRE(by_phone.size() == static_cast<std::size_t>(visitors));
  std::map<int, std::string> conversation_of;
  for (int v = 0; v < visitors; ++v) {
    INFO("visitor " << v);
    REQUIRE(by_phone.count(wa_id(v)) == 1);
    const auto& c = by_phone[wa_id(v)];
    auto id = c["id"].get<std::string>();
    conversation_of[v] = id;
    CHECK(c["status"] == "pending");
    CHECK(c["visitor"]["name"] == "Visitor " + std::to_string(v));
    CHECK(c["unread_count"] == per_visitor);
    CHECK(c["window"]["expires_at"] == rfc3339(newest[v] + 86400));
    CHECK(c["whatsapp_window_expires_at"] == rfc3339(newest[v] + 86400));
    CHECK(c["last_message_at"] == rfc3339(newest[v]));
    CHECK(scalar_int(a.db, "SELECT extract(epoch FROM whatsapp_window_expires_at)::bigint FROM mod_chat_conversations WHERE id = " + id) ==
          newest[v] + 86400);
    // Ordered by Meta's time, each wamid once, with its own text.
    auto expected = by_visitor[v];
    std::sort(expected.begin(), expected.end(), [](const inbound& x, const inbound& y) { return x.timestamp < y.timestamp; });
    auto msgs = a.call_json("GET", "/api/conversations/" + id + "/messages?limit=200")["messages"];
    REQUIRE(msgs.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      CHECK(msgs[i]["whatsapp_message_id"] == expected[i].wamid);
      CHECK(msgs[i]["content"] == expected[i].text);
      CHECK(msgs[i]["created_at"] == rfc3339(expected[i].timestamp));
    }
    // Both processes tell the same story.
    CHECK(b.call_json("GET", "/api/conversations/" + id)["unread_count"] == per_visitor);
  }

  // An agent's reply per conversation (as the send path stores it), then its statuses delivered
  // to both processes in reverse order: read first, then delivered, then sent.
  std::vector<std::string> out_wamids;
  for (int v = 0; v < visitors; ++v) {
    auto wamid = "wamid.mp.out." + std::to_string(v);
    out_wamids.push_back(wamid);
    test::query_scalar(a.db, "INSERT INTO mod_chat_messages (conversation_id, site_id, sender_type, sender_id, content, content_type,"
                             " whatsapp_message_id, status) VALUES (" + conversation_of[v] + ", 'acme', 'agent', 'ann', 'reply', 'text', '" +
                                 wamid + "', 'sent') RETURNING id");
  }
  auto t0 = now_s() - 120;
  std::size_t status_rows = 0;
  for (auto [status, offset] : std::vector<std::pair<std::string, int>>{{"read", 30}, {"delivered", 20}, {"sent", 10}}) {
    std::vector<int> order(visitors);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<job> phase;
    for (const auto& batch : batches(order, rng, 5)) {
      json list_of = json::array();
      for (int v : batch) {
        list_of.push_back({{"id", out_wamids[static_cast<std::size_t>(v)]}, {"status", status},
                           {"timestamp", std::to_string(t0 + offset + v)}, {"recipient_id", wa_id(v)}});
      }
      json value = {{"messaging_product", "whatsapp"}, {"metadata", test::metadata(phone_id)}, {"statuses", list_of}};
      auto body = test::envelope(value);
      phase.push_back({a.port(), body});
      phase.push_back({b.port(), body});
    }
    std::shuffle(phase.begin(), phase.end(), rng);
    INFO("status " << status);
    CHECK(post_all(phase, 4) == std::map<int, int>{{200, static_cast<int>(phase.size())}});
    status_rows += phase.size();
  }
  wait_all_processed(a.db, jobs.size() + status_rows);
  CHECK(scalar_int(a.db, "SELECT count(*) FROM wa_message_statuses WHERE whatsapp_message_id LIKE 'wamid.mp.out.%'") == 3 * visitors);
  CHECK(scalar_int(a.db, "SELECT count(*) FROM mod_chat_messages WHERE whatsapp_message_id LIKE 'wamid.mp.out.%' AND status = 'read'") == visitors);
  for (int v = 0; v < visitors; ++v) {
    INFO("visitor " << v);
    auto id = conversation_of[v];
    auto msgs = b.call_json("GET", "/api/conversations/" + id + "/messages?limit=200")["messages"];
    REQUIRE(msgs.size() == static_cast<std::size_t>(per_visitor + 1));
    auto reply = std::find_if(msgs.begin(), msgs.end(), [](const json& m) { return m["sender_type"] == "agent"; });
    REQUIRE(reply != msgs.end());
    CHECK((*reply)["status"] == "read");
    // Statuses neither count as unread nor move the window.
    auto c = a.call_json("GET", "/api/conversations/" + id);
    CHECK(c["unread_count"] == per_visitor);
    CHECK(c["window"]["expires_at"] == rfc3339(newest[v] + 86400));
  }
}

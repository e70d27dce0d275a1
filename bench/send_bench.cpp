// Agents' sends end to end (issue 13 targets): wachatd sending through the Cloud API path into
// a local fake Graph API (tests/support/fake_graph, answering as Meta documents), driven over
// real sockets by `--clients` keep-alive HTTP clients. It starts the fake and its own wachatd on
// a fresh database of WACHAT_TEST_DATABASE_URL, gives each of `--sites` sites (each its own
// phone number) `--rate` messages_per_second, makes `--conversations` customers write in (spread
// over the sites), then sends `--sends` texts spread over them and
// waits until the fake has them all. One JSON line: sends/s (first request to last send at the
// fake), the send API's latency, how the API answered, duplicates at the fake, the most sends
// in any one second at the fake, whether each conversation's sends arrived in order, and
// wachatd's CPU per send. --offered O sends at a fixed rate instead (open loop), the way a
// latency target is read: at that rate, not at whatever rate a fixed number of clients reaches.
// BENCH_TRACE=file writes each send's due time and latency (ms from start, µs), one per line,
// to file.LABEL.
#include <atomic>
#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "cli_args.hpp"
#include "latency_summary.hpp"
#include "support/fake_graph.hpp"
#include "support/pg_control.hpp"
#include "support/http_client.hpp"
#include "support/wachat_fixture.hpp"

namespace {

using nlohmann::json;
using clock_type = std::chrono::steady_clock;

// Site i is "bench<i>" with phone number id phone_base + i. Meta allows a phone number at most
// 1,000 messages/s (META.md "Limits"), and the site actor paces each number below that: a
// throughput above it needs several numbers, as a busy deployment has.
constexpr std::uint64_t phone_base = 106540352242000ULL;
std::string phone_of(std::uint64_t site) { return std::to_string(phone_base + site); }
std::string site_of(std::uint64_t site) { return "bench" + std::to_string(site); }
const std::string token = "EAABbenchToken0123456789abcd";

double cpu_seconds_of(pid_t pid) {
  std::ifstream stat{"/proc/" + std::to_string(pid) + "/stat"};
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest{text.substr(close + 2)};
  std::string field;
  double ticks = 0;
  for (int i = 3; rest >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);
    if (i == 15) break;
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

int run(int argc, char** argv) {
  wachat::bench::cli_args args{argc, argv, {"sends", "conversations", "rate", "clients", "wait-ms", "label", "sites", "offered",
                                                   "warmup"}};
  if (args.help()) {
    std::cout << "wachat_send_bench [--sends N] [--conversations C] [--rate R] [--clients K] [--wait-ms W]"
                 " [--sites S] [--offered O] [--warmup W] [--label L]\n"
                 "  --offered O: open loop, send n is due at start + n/O s and its latency counts from then\n"
                 "               (a client late for it waits in the count); 0 (default): closed loop\n"
                 "  --warmup W: W sends (default: one per conversation) before any is measured\n";
    return 0;
  }
  const auto sends = args.number("sends", 10000, 1, 10'000'000);
  const auto conversations = args.number("conversations", 100, 1, 100000);
  const auto rate = args.number("rate", 1000, 1, 1000);
  const auto clients = args.number("clients", 8, 1, 256);
  const auto wait_ms = args.number("wait-ms", 10000, 0, 600000);
  const auto sites = args.number("sites", 1, 1, 100);
  const auto offered = args.number("offered", 0, 0, 100000);
  const auto warmup = args.number("warmup", conversations, 0, 1'000'000);
  // Open loop (--offered): request n waits for its due time, and its latency counts from then, so
  // a client still busy with an earlier one when n is due counts that delay too (no coordinated
  // omission). Closed loop: now, each client sending as soon as its last answer came.
  auto due_at = [offered](clock_type::time_point start, std::uint64_t n) {
    if (offered == 0) return clock_type::now();
    auto due = start + std::chrono::nanoseconds(n * 1'000'000'000ULL / offered);
    std::this_thread::sleep_until(due);
    return due;
  };

  wachat::test::fake_graph graph;
  graph.add_token(token);
  for (std::uint64_t s = 0; s < sites; ++s) {
    graph.add_phone(phone_of(s), "+1 555-01" + std::to_string(10 + s), "Bench " + std::to_string(s));
  }
  wachat::test::wachat_fixture f{{{"WACHAT_GRAPH_BASE_URL", graph.base_url()},
                                  {"WACHAT_SEND_WAIT_MS", std::to_string(wait_ms)}}};
  for (std::uint64_t s = 0; s < sites; ++s) {
    f.call_json("POST", "/api/sites", {{"id", site_of(s)}}, 201);
    f.call_json("PUT", "/api/sites/" + site_of(s) + "/whatsapp/settings",
                {{"phone_number_id", phone_of(s)}, {"access_token", token}, {"messages_per_second", rate},
                 {"read_receipts", "off"}});
  }
  // The customers write first: each conversation's window is open.
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  for (std::uint64_t c = 0; c < conversations; ++c) {
    auto from = std::to_string(16500000000ULL + c);
    if (f.post_webhook(wachat::test::text_webhook(phone_of(c % sites), from, "wamid.B" + from, now - 60, "hi")).status != 200) {
      throw std::runtime_error("a customer's webhook was refused");
    }
  }
  std::vector<std::string> ids;
  auto deadline = clock_type::now() + std::chrono::seconds(120);
  while (ids.size() < conversations && clock_type::now() < deadline) {
    // Send i goes to ids[i % C]: the sites take turns, so the sends in flight are spread over
    // their numbers (in site order, all 32 were one site's, held to one number's rate).
    std::vector<std::vector<std::string>> by_site(sites);
    for (std::uint64_t s = 0; s < sites; ++s) {
      std::string cursor;
      do {
        auto page = f.call_json("GET", "/api/sites/" + site_of(s) + "/conversations?limit=200" +
                                           (cursor.empty() ? "" : "&cursor=" + cursor));
        for (const auto& c : page["conversations"]) by_site[s].push_back(c["id"].get<std::string>());
        cursor = page["next_cursor"].is_string() ? page["next_cursor"].get<std::string>() : "";
      } while (!cursor.empty());
    }
    ids.clear();
    for (std::size_t round = 0; ids.size() < conversations && round < conversations; ++round) {
      for (const auto& list : by_site) {
        if (round < list.size()) ids.push_back(list[round]);
      }
    }
    if (ids.size() < conversations) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (ids.size() < conversations) throw std::runtime_error("the customers' conversations did not all appear");
  // Each new conversation started follow-up jobs (auto-assignment, the CRM link): let them end
  // first, so that the sends are measured alone rather than beside the setup's own work.
  const auto jobs_since = clock_type::now();
  while (wachat::test::query_scalar(f.db, "SELECT count(*) FROM wa_conversation_jobs WHERE state IN ('ready', 'running')") !=
             "0" &&
         clock_type::now() < jobs_since + std::chrono::seconds(60)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const double jobs_waited_s = std::chrono::duration<double>(clock_type::now() - jobs_since).count();
  // A fresh wachatd's first sends pay for what a running one has long done: its connections'
  // first statements (prepared, planned for the first few runs, catalog caches filled). They go
  // first and are not measured, as any benchmark warms up; RESULTS says what the first cost.
  {
    std::atomic<std::uint64_t> next_warm{0};
    std::vector<std::thread> threads;
    for (std::uint64_t k = 0; k < clients; ++k) {
      threads.emplace_back([&] {
        wachat::test::http_client client{"127.0.0.1", f.port()};
        for (auto i = next_warm++; i < warmup; i = next_warm++) {
          json body{{"type", "text"}, {"text", "warm-up " + std::to_string(i)}, {"sender_id", "agent"},
                    {"sender_name", "Bench"}, {"client_message_id", "w-" + std::to_string(i)}};
          client.request("POST", "/api/conversations/" + ids[i % ids.size()] + "/messages", body.dump(),
                         {{"Authorization", "Bearer " + wachat::test::admin_token}, {"Content-Type", "application/json"}});
        }
      });
    }
    for (auto& t : threads) t.join();
    const auto warm_deadline = clock_type::now() + std::chrono::seconds(60);
    while (graph.sent_messages().size() < warmup && clock_type::now() < warm_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    graph.reset_calls();
  }
  graph.reset_calls();

  // The baseline in the same run: the same clients sending the same number of Meta-shaped
  // requests straight to the fake, so its own latency and throughput on this machine now are
  // known (the send API's latency target is "20 ms plus the fake's own latency").
  std::vector<std::uint32_t> direct;
  double direct_seconds = 0;
  {
    std::atomic<std::uint64_t> next_direct{0};
    std::mutex mu;
    const auto t0 = clock_type::now();
    std::vector<std::thread> threads;
    for (std::uint64_t k = 0; k < clients; ++k) {
      threads.emplace_back([&] {
        wachat::test::http_client client{"127.0.0.1", graph.port()};
        std::vector<std::uint32_t> mine;
        for (auto i = next_direct++; i < sends; i = next_direct++) {
          json body{{"messaging_product", "whatsapp"}, {"recipient_type", "individual"}, {"to", "16500000000"},
                    {"type", "text"}, {"text", {{"body", "direct " + std::to_string(i)}}},
                    {"biz_opaque_callback_data", std::to_string(i)}};
          auto t = due_at(t0, i);
          client.request("POST", "/" + graph.version() + "/" + phone_of(i % sites) + "/messages", body.dump(),
                         {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}});
          mine.push_back(static_cast<std::uint32_t>(
              std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - t).count()));
        }
        std::lock_guard lock{mu};
        direct.insert(direct.end(), mine.begin(), mine.end());
      });
    }
    for (auto& t : threads) t.join();
    direct_seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  }
  graph.reset_calls();

  std::atomic<std::uint64_t> next{0};
  std::mutex mu;
  std::vector<std::uint32_t> latencies;
  std::map<int, std::uint64_t> statuses;
  std::vector<std::uint32_t> due_ms(sends), lat_of(sends);  // for BENCH_TRACE
  const double cpu_before = cpu_seconds_of(f.server->process().pid());
  const auto started = clock_type::now();
  std::vector<std::thread> threads;
  for (std::uint64_t k = 0; k < clients; ++k) {
    threads.emplace_back([&] {
      wachat::test::http_client client{"127.0.0.1", f.port()};
      std::vector<std::uint32_t> mine;
      std::map<int, std::uint64_t> my_statuses;
      for (auto i = next++; i < sends; i = next++) {
        json body{{"type", "text"}, {"text", "reply " + std::to_string(i)}, {"sender_id", "agent"},
                  {"sender_name", "Bench"}, {"client_message_id", "b-" + std::to_string(i)}};
        auto t0 = due_at(started, i);
        auto r = client.request("POST", "/api/conversations/" + ids[i % ids.size()] + "/messages", body.dump(),
                                {{"Authorization", "Bearer " + wachat::test::admin_token},
                                 {"Content-Type", "application/json"}});
        mine.push_back(static_cast<std::uint32_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - t0).count()));
        due_ms[i] = static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(t0 - started).count());
        lat_of[i] = mine.back();
        ++my_statuses[r.status];
      }
      std::lock_guard lock{mu};
      latencies.insert(latencies.end(), mine.begin(), mine.end());
      for (auto [s, n] : my_statuses) statuses[s] += n;
    });
  }
  for (auto& t : threads) t.join();
  const auto accepted = clock_type::now();
  if (const char* trace = std::getenv("BENCH_TRACE")) {
    // One file per phase: sending.sh runs several in a row.
    std::ofstream out{std::string{trace} + "." + args.text("label", "sends")};
    for (std::uint64_t i = 0; i < sends; ++i) out << due_ms[i] << ' ' << lat_of[i] << '\n';
  }
  deadline = accepted + std::chrono::seconds(30) + std::chrono::seconds(sends / (rate * sites));
  while (graph.sent_messages().size() < sends && clock_type::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const auto finished = clock_type::now();
  const double cpu = cpu_seconds_of(f.server->process().pid()) - cpu_before;
  std::this_thread::sleep_for(std::chrono::seconds(1));  // anything sent twice shows up now

  auto sent = graph.sent_messages();
  std::set<std::string> distinct;
  std::map<std::string, long> last_per_recipient;
  bool in_order = true;
  for (const auto& m : sent) {
    auto id = m.value("biz_opaque_callback_data", "");
    distinct.insert(id);
    auto& last = last_per_recipient[m.value("to", "")];
    long n = std::stol(id);
    in_order = in_order && n > last;
    last = n;
  }
  const double seconds = std::chrono::duration<double>(finished - started).count();
  auto lat = wachat::bench::latency_summary::of(latencies);
  json status_counts = json::object();
  for (auto [s, n] : statuses) status_counts[std::to_string(s)] = n;
  json out{{"label", args.text("label", "sends")},
           {"sends", sends},
           {"conversations", conversations},
           {"rate_setting", rate},
           {"sites", sites},
           {"clients", clients},
           {"offered_per_s", offered},
           {"setup_jobs_waited_s", jobs_waited_s},
           {"warmup_sends", warmup},
           {"delivered", sent.size()},
           {"duplicates", sent.size() - distinct.size()},
           {"in_order_per_conversation", in_order},
           {"sends_per_s", static_cast<double>(sent.size()) / seconds},
           {"accept_s", std::chrono::duration<double>(accepted - started).count()},
           {"max_sends_in_1s", graph.max_sends_within(std::chrono::seconds(1))},
           {"api_status", status_counts},
           {"api_latency", lat.to_json()},
           {"sends_slot_missed", f.metric("wachat_sends_slot_missed_total")},
           {"wachatd_cpu_us_per_send", sent.empty() ? 0.0 : cpu * 1e6 / static_cast<double>(sent.size())},
           {"fake_direct", {{"requests_per_s", static_cast<double>(sends) / direct_seconds},
                            {"latency", wachat::bench::latency_summary::of(direct).to_json()}}}};
  std::cout << out.dump() << std::endl;
  return sent.size() == sends && distinct.size() == sends ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return wachat::bench::run_tool("wachat_send_bench", argc, argv, run); }

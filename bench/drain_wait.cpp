// wachat_drain_wait: waits until wachatd has processed every inbox row (none 'pending' or
// 'processing'), printing the completion rate each second, then reports how long processing
// took from a given start (wachatd's start for a backlog, the first delivery for live load) to
// the last row finished, and what was stored.
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <thread>
#include <vector>

#include "cli_args.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using namespace wachat;
using bench::cli_args;
using bench::usage_error;
using bench::own_cpu_seconds;
using bench::unix_us_now;

constexpr const char* help_text =
    "Usage: wachat_drain_wait --db URL --since-us T [options]\n\n"
    "Polls wa_webhook_events until no row is 'pending' or 'processing' (and, with --expect,\n"
    "at least that many messages are stored), then reports the drain time and rate.\n\n"
    "  --db URL            libpq URI (else $WACHAT_DATABASE_URL)\n"
    "  --since-us T        start of the measurement, unix microseconds (wall clock)\n"
    "  --expect N          messages that must be in mod_chat_messages   [0]\n"
    "  --poll-ms N         poll interval                                [100]\n"
    "  --timeout S         give up after this                           [600]\n"
    "  --pid PID           also sample VmRSS of this process each second\n\n"
    "Prints a line per second, then one JSON line. Exit 1 on timeout.\n";

// VmRSS of a process in KiB, 0 when it is gone.
std::int64_t rss_kib(const std::string& pid) {
  std::ifstream in{"/proc/" + pid + "/status"};
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stoll(line.substr(6));
    }
  }
  return 0;
}

double median(std::vector<double> v) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

int run(int argc, char** argv) {
  cli_args args{argc, argv, {"db", "since-us", "expect", "poll-ms", "timeout", "pid"}};
  if (args.help()) {
    std::cout << help_text;
    return 0;
  }
  std::string url = args.text("db", "");
  if (url.empty()) {
    if (const char* env = std::getenv("WACHAT_DATABASE_URL"); env != nullptr) {
      url = env;
    }
  }
  if (url.empty() || !args.has("since-us")) {
    throw usage_error("--db and --since-us are required");
  }
  const auto since_us = static_cast<std::int64_t>(args.number("since-us", 0, 1, INT64_MAX));
  const auto expect = args.number("expect", 0, 0, 1000000000);
  const auto poll = std::chrono::milliseconds(args.number("poll-ms", 100, 1, 10000));
  const double timeout = args.seconds("timeout", 600, 1, 86400);
  const auto pid = args.text("pid", "");

  pqxx::connection conn{url};
  const auto deadline = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                                std::chrono::duration<double>(timeout));
  // Polling must cost PostgreSQL next to nothing: it shares 2 cores with what it measures. A
  // count(*) of the open rows visits every one of them (about 40 ms at 30,000 open rows, and
  // it ran 20 times a second in the first version of this tool); EXISTS stops at the first.
  auto any_open = [&conn] {
    pqxx::nontransaction nt{conn};
    return nt.exec("SELECT EXISTS (SELECT 1 FROM wa_webhook_events"
                   " WHERE status IN ('pending', 'processing'))")[0][0]
        .as<bool>();
  };
  // Progress: message ids handed out so far (one per stored message; a rolled-back insert
  // also takes one, so this is an estimate), read from the sequence without touching the table.
  auto message_ids = [&conn] {
    pqxx::nontransaction nt{conn};
    auto r = nt.exec("SELECT coalesce(pg_sequence_last_value("
                     "pg_get_serial_sequence('mod_chat_messages', 'id')), 0)");
    return r[0][0].as<std::int64_t>();
  };
  auto stored_messages = [&conn] {
    pqxx::nontransaction nt{conn};
    return nt.exec("SELECT count(*) FROM mod_chat_messages")[0][0].as<std::uint64_t>();
  };
  std::vector<double> rates;  // messages stored per whole second while rows were open
  std::int64_t peak_rss = 0;
  std::int64_t last_ids = message_ids();
  auto next_report = clock_type::now() + std::chrono::seconds(1);
  std::int64_t done_at_us = 0;
  bool timed_out = false;
  while (true) {
    const bool open = any_open();
    const auto now = clock_type::now();
    if (now >= next_report) {
      const auto rss = pid.empty() ? 0 : rss_kib(pid);
      peak_rss = std::max(peak_rss, rss);
      const auto ids = message_ids();
      if (open) {
        rates.push_back(static_cast<double>(ids - last_ids));
      }
      fmt::print("t={:.1f}s messages stored {} (+{} in the last second){}\n",
                 (unix_us_now() - since_us) / 1e6, ids, ids - last_ids,
                 pid.empty() ? "" : fmt::format(", wachatd VmRSS {} MiB", rss / 1024));
      std::fflush(stdout);
      last_ids = ids;
      next_report += std::chrono::seconds(1);
    }
    if (!open && (expect == 0 || stored_messages() >= expect)) {
      done_at_us = unix_us_now();
      break;
    }
    if (now >= deadline) {
      timed_out = true;
      done_at_us = unix_us_now();
      break;
    }
    std::this_thread::sleep_for(poll);
  }

  pqxx::nontransaction nt{conn};
  auto t = nt.exec(
      "SELECT (extract(epoch from max(processed_at)) * 1e6)::bigint,"
      " (extract(epoch from min(received_at)) * 1e6)::bigint FROM wa_webhook_events")[0];
  const auto last_processed_us = t[0].is_null() ? done_at_us : t[0].as<std::int64_t>();
  nlohmann::ordered_json by_status = nlohmann::ordered_json::object();
  for (const auto& row : nt.exec("SELECT status, count(*) FROM wa_webhook_events GROUP BY 1 ORDER BY 1")) {
    by_status[row[0].as<std::string>()] = row[1].as<std::int64_t>();
  }
  auto c = nt.exec(
      "SELECT (SELECT count(*) FROM mod_chat_messages), (SELECT count(*) FROM mod_chat_visitors),"
      " (SELECT count(*) FROM mod_chat_conversations), (SELECT count(*) FROM wa_events)")[0];
  const auto messages = c[0].as<std::uint64_t>();
  const double drain_s = (last_processed_us - since_us) / 1e6;
  const double detected_s = (done_at_us - since_us) / 1e6;
  const double mps = drain_s > 0 ? messages / drain_s : 0;
  fmt::print(
      "{}: {} messages stored ({} visitors, {} conversations, {} live events); last row "
      "finished {:.2f} s after the start ({:.0f} messages/s), seen {:.2f} s after; median "
      "{:.0f} messages stored per second\n",
      timed_out ? "TIMED OUT" : "drained", messages, c[1].as<std::int64_t>(),
      c[2].as<std::int64_t>(), c[3].as<std::int64_t>(), drain_s, mps, detected_s, median(rates));
  nlohmann::ordered_json report = {{"tool", "wachat_drain_wait"},
                                   {"ok", !timed_out && (expect == 0 || messages >= expect)},
                                   {"messages", messages},
                                   {"expected", expect},
                                   {"visitors", c[1].as<std::int64_t>()},
                                   {"conversations", c[2].as<std::int64_t>()},
                                   {"events", c[3].as<std::int64_t>()},
                                   {"inbox", by_status},
                                   {"drain_s", drain_s},
                                   {"detected_s", detected_s},
                                   {"messages_per_s", mps},
                                   {"median_messages_per_s", median(rates)},
                                   {"per_second", rates},
                                   {"peak_rss_kib", peak_rss},
                                   {"cpu_s", own_cpu_seconds()}};
  std::cout << report.dump() << std::endl;
  return report["ok"].get<bool>() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return wachat::bench::run_tool("wachat_drain_wait", argc, argv, run);
}

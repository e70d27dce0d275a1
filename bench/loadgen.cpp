// wachat_loadgen: keeps N keep-alive connections busy with distinct, correctly signed Meta
// webhooks for a fixed time (or a fixed count, optionally at a fixed rate), then reports 2xx/s,
// statuses and latency percentiles, and (with --check-db) proves that every acknowledged
// webhook is in wa_webhook_events.
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <thread>
#include <vector>

#include "cli_args.hpp"
#include "infra/crypto.hpp"
#include "latency_summary.hpp"
#include "webhook_generator.hpp"

namespace {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;
using namespace wachat;
using bench::cli_args;
using bench::usage_error;
using bench::own_cpu_seconds;
using bench::unix_us_now;

constexpr const char* help_text =
    "Usage: wachat_loadgen [options]\n\n"
    "Sends distinct, signed WhatsApp webhooks over keep-alive connections (each connection has\n"
    "one request in flight; closed loop unless --rate) and reports 2xx/s and latency.\n\n"
    "  --host H            server address (IP)                         [127.0.0.1]\n"
    "  --port P            server port                                 [8080]\n"
    "  --path P            webhook path   [/api/modules/live-chat/webhooks/whatsapp]\n"
    "  --connections N     keep-alive connections                      [64]\n"
    "  --threads N         io_context threads (connections spread)     [1]\n"
    "  --duration S        measured seconds                            [20]\n"
    "  --warmup S          seconds sent before measuring (not counted) [1]\n"
    "  --timeout S         per-request timeout                         [10]\n"
    "  --secret S          app secret (else $WHATSAPP_APP_SECRET)\n"
    "  --body-bytes N      approximate body size                       [1024]\n"
    "  --run-id ID         [A-Za-z0-9_-]{1,64}, in every wamid         [random]\n"
    "  --check-db URL      afterwards, require a stored row for every 2xx\n"
    "  --visitors N        fixed number of distinct senders, 0 = a new one nearly every body [0]\n"
    "  --rate R            open loop: request k is sent at start + k/R (if a connection is\n"
    "                      free by then), 0 = as fast as answers come back [0]\n"
    "  --count N           send at most N requests (0 = until --duration ends) [0]\n"
    "  --start-seq S       number of the first body (wamid and sender derive from it) [0]\n"
    "  --ack-log FILE      afterwards, write \"<seq> <unix us>\" per 2xx (wall clock at the\n"
    "                      answer), renamed into place when complete\n\n"
    "Prints human-readable lines, then one JSON line. Exit 0; 1 when --check-db finds a 2xx\n"
    "that is not stored (or cannot check); 2 on a bad command line.\n";

// What every connection needs and nobody changes once the run starts.
struct run_plan {
  tcp::endpoint endpoint;
  std::string host_header;
  std::string path;
  clock_type::time_point measure_from;
  clock_type::time_point stop_at;
  std::chrono::milliseconds request_timeout{10000};
  const bench::webhook_generator* generator = nullptr;
  const infra::hmac_sha256_key* key = nullptr;
  std::atomic<std::uint64_t>* next_seq = nullptr;
  std::uint64_t start_seq = 0;
  std::uint64_t end_seq = UINT64_MAX;  // first seq not to send (--count)
  double rate = 0;                     // requests per second, 0: closed loop
  clock_type::time_point pace_from;    // when request start_seq is due
  bool log_acks = false;
};

// Counts of one io_context thread; only that thread's connections touch it.
struct thread_tally {
  // Connections of this thread still working, and the timer that gives up on them at the hard
  // stop: cancelled when the last one finishes, so that io_context::run() returns at once.
  std::size_t live = 0;
  net::steady_timer* hard_stop = nullptr;
  std::map<int, std::uint64_t> by_status;  // every response of the run
  std::uint64_t sent = 0;
  std::uint64_t acked = 0;            // 2xx of the whole run: what --check-db must find
  std::uint64_t acked_in_window = 0;  // 2xx sent and answered inside the measured window
  std::uint64_t connect_errors = 0;
  std::uint64_t io_errors = 0;
  std::uint64_t timeouts = 0;
  std::vector<std::uint32_t> latencies_us;  // every response sent and answered in the window
  std::vector<std::pair<std::uint64_t, std::int64_t>> acks;  // (seq, unix us) with --ack-log
  std::int64_t first_send_us = INT64_MAX;
  std::int64_t last_ack_us = 0;

  void merge(const thread_tally& o) {
    acks.insert(acks.end(), o.acks.begin(), o.acks.end());
    first_send_us = std::min(first_send_us, o.first_send_us);
    last_ack_us = std::max(last_ack_us, o.last_ack_us);
    for (const auto& [status, n] : o.by_status) {
      by_status[status] += n;
    }
    sent += o.sent;
    acked += o.acked;
    acked_in_window += o.acked_in_window;
    connect_errors += o.connect_errors;
    io_errors += o.io_errors;
    timeouts += o.timeouts;
    latencies_us.insert(latencies_us.end(), o.latencies_us.begin(), o.latencies_us.end());
  }
};

// One keep-alive connection: connect, then write/read one webhook at a time until stop_at;
// reconnects when the server closes or an error cuts the connection.
class connection : public std::enable_shared_from_this<connection> {
 public:
  connection(net::io_context& ioc, const run_plan& plan, thread_tally& tally)
      : stream_(ioc), retry_timer_(ioc), plan_(plan), tally_(tally) {
    req_.method(bhttp::verb::post);
    req_.target(plan_.path);
    req_.version(11);
    req_.set(bhttp::field::host, plan_.host_header);
    req_.set(bhttp::field::user_agent, "facebookexternalua");
    req_.set(bhttp::field::content_type, "application/json");
    req_.keep_alive(true);
  }

  void start() {
    ++tally_.live;
    do_connect();
  }

 private:
  // The run is over for this connection: no new request, no reconnect.
  void finish() {
    close();
    if (!finished_) {
      finished_ = true;
      if (--tally_.live == 0 && tally_.hard_stop != nullptr) {
        tally_.hard_stop->cancel();
      }
    }
  }

  void do_connect() {
    if (clock_type::now() >= plan_.stop_at) {
      return finish();
    }
    buffer_.clear();
    stream_.expires_after(std::chrono::seconds(5));
    stream_.async_connect(plan_.endpoint,
                          beast::bind_front_handler(&connection::on_connect, shared_from_this()));
  }

  void on_connect(beast::error_code ec) {
    if (ec) {
      ++tally_.connect_errors;
      return retry_later();
    }
    stream_.socket().set_option(tcp::no_delay(true), ec);
    do_request();
  }

  // A refused connect is retried, but not in a hot loop that would eat the server's CPU.
  void retry_later() {
    close();
    if (clock_type::now() >= plan_.stop_at) {
      return finish();
    }
    retry_timer_.expires_after(std::chrono::milliseconds(100));
    retry_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) {
        self->do_connect();
      }
    });
  }

  void do_request() {
    const auto now = clock_type::now();
    if (now >= plan_.stop_at) {
      return finish();
    }
    seq_ = plan_.next_seq->fetch_add(1, std::memory_order_relaxed);
    if (seq_ >= plan_.end_seq) {
      return finish();
    }
    if (plan_.rate > 0) {
      // Open loop: wait for this request's turn; a late one goes at once.
      const auto due = plan_.pace_from + std::chrono::duration_cast<clock_type::duration>(
                                             std::chrono::duration<double>(
                                                 static_cast<double>(seq_ - plan_.start_seq) /
                                                 plan_.rate));
      if (due > now) {
        retry_timer_.expires_at(due);
        retry_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
          if (!ec) {
            self->send_request();
          }
        });
        return;
      }
    }
    send_request();
  }

  void send_request() {
    const auto seq = seq_;
    const auto unix_now = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
    plan_.generator->render(seq, unix_now, req_.body());
    const auto mac = plan_.key->sign(req_.body());
    req_.set("X-Hub-Signature-256", "sha256=" + infra::hex_encode(mac.data(), mac.size()));
    req_.content_length(req_.body().size());
    ++tally_.sent;
    started_ = clock_type::now();
    tally_.first_send_us = std::min(tally_.first_send_us, unix_us_now());
    stream_.expires_after(plan_.request_timeout);
    bhttp::async_write(stream_, req_,
                       beast::bind_front_handler(&connection::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    if (ec) {
      return on_failure(ec);
    }
    res_.emplace();
    res_->body_limit(64 * 1024);
    bhttp::async_read(stream_, buffer_, *res_,
                      beast::bind_front_handler(&connection::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    const auto done = clock_type::now();
    if (ec) {
      return on_failure(ec);
    }
    const auto& res = res_->get();
    const int status = static_cast<int>(res.result_int());
    const bool acked = status >= 200 && status < 300;
    ++tally_.by_status[status];
    if (acked) {
      ++tally_.acked;
      const auto at = unix_us_now();
      tally_.last_ack_us = std::max(tally_.last_ack_us, at);
      if (plan_.log_acks) {
        tally_.acks.emplace_back(seq_, at);
      }
    }
    if (started_ >= plan_.measure_from && done <= plan_.stop_at) {
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(done - started_).count();
      tally_.latencies_us.push_back(
          static_cast<std::uint32_t>(std::min<long long>(us, UINT32_MAX)));
      if (acked) {
        ++tally_.acked_in_window;
      }
    }
    if (!res.keep_alive()) {
      close();
      return do_connect();
    }
    do_request();
  }

  void on_failure(beast::error_code ec) {
    if (ec == beast::error::timeout) {
      ++tally_.timeouts;
    } else {
      ++tally_.io_errors;
    }
    retry_later();
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  net::steady_timer retry_timer_;
  const run_plan& plan_;
  thread_tally& tally_;
  beast::flat_buffer buffer_;
  bhttp::request<bhttp::string_body> req_;
  std::optional<bhttp::response_parser<bhttp::string_body>> res_;
  clock_type::time_point started_{};
  std::uint64_t seq_ = 0;
  bool finished_ = false;
};

struct db_check {
  bool ran = false;
  bool ok = false;
  std::uint64_t rows = 0;
  std::string error;
};

// Every 2xx must have its row; more rows than 2xx is fine (a commit may land after a 503 or a
// client-side timeout, and Meta would simply deliver again).
db_check check_db(const std::string& url, const std::string& marker, std::uint64_t acked) {
  db_check out;
  out.ran = true;
  try {
    pqxx::connection conn{url};
    pqxx::nontransaction tx{conn};
    auto r = tx.exec_params(
        "SELECT count(*) FROM wa_webhook_events WHERE position(convert_to($1, 'UTF8') in body) > 0",
        marker);
    out.rows = r[0][0].as<std::uint64_t>();
    out.ok = out.rows >= acked;
  } catch (const std::exception& e) {
    out.error = e.what();
    out.ok = false;
  }
  return out;
}

// This process's user + system CPU: on 2 shared cores, what the client costs is part of the result.
double round1(double v) {
  return std::round(v * 10.0) / 10.0;
}

int run(int argc, char** argv) {
  cli_args args{argc,
                argv,
                {"host", "port", "path", "connections", "threads", "duration", "warmup", "timeout",
                 "secret", "body-bytes", "run-id", "check-db", "visitors", "rate", "count",
                 "start-seq", "ack-log"}};
  if (args.help()) {
    std::cout << help_text;
    return 0;
  }
  const auto host = args.text("host", "127.0.0.1");
  const auto port = static_cast<std::uint16_t>(args.number("port", 8080, 1, 65535));
  const auto connections = args.number("connections", 64, 1, 10000);
  // A thread without connections would only wait for the hard stop.
  const auto threads = std::min(args.number("threads", 1, 1, 64), connections);
  const double duration = args.seconds("duration", 20, 0.1, 86400);
  const double warmup = args.seconds("warmup", 1, 0, 3600);
  const double timeout = args.seconds("timeout", 10, 0.1, 600);
  const auto body_bytes = args.number("body-bytes", 1024, 0, 4 * 1024 * 1024);
  std::string secret = args.text("secret", "");
  if (secret.empty()) {
    if (const char* env = std::getenv("WHATSAPP_APP_SECRET"); env != nullptr) {
      secret = env;
    }
  }
  if (secret.empty()) {
    throw usage_error("--secret (or WHATSAPP_APP_SECRET) is required");
  }
  const auto run_id = args.text("run-id", "lg-" + infra::random_hex(6));
  if (!bench::webhook_generator::valid_run_id(run_id)) {
    throw usage_error("--run-id must be 1-64 characters of [A-Za-z0-9_-]");
  }
  const auto check_url = args.text("check-db", "");
  const auto visitors = args.number("visitors", 0, 0, 100000000);
  const double rate = args.real("rate", 0, 0, 1e7);
  const auto count = args.number("count", 0, 0, UINT64_MAX / 2);
  const auto start_seq = args.number("start-seq", 0, 0, UINT64_MAX / 2);
  const auto ack_log = args.text("ack-log", "");
  boost::system::error_code ec;
  const auto address = net::ip::make_address(host, ec);
  if (ec) {
    throw usage_error(fmt::format("--host must be an IP address, got '{}'", host));
  }

  const bench::webhook_generator generator{run_id, body_bytes, visitors};
  const infra::hmac_sha256_key key{secret};
  std::atomic<std::uint64_t> next_seq{start_seq};

  run_plan plan;
  plan.endpoint = tcp::endpoint{address, port};
  plan.host_header = fmt::format("{}:{}", host, port);
  plan.path = args.text("path", "/api/modules/live-chat/webhooks/whatsapp");
  plan.request_timeout = std::chrono::milliseconds(static_cast<long long>(timeout * 1000));
  plan.generator = &generator;
  plan.key = &key;
  plan.next_seq = &next_seq;
  plan.start_seq = start_seq;
  plan.end_seq = count > 0 ? start_seq + count : UINT64_MAX;
  plan.rate = rate;
  plan.log_acks = !ack_log.empty();
  const auto start = clock_type::now();
  plan.pace_from = start;
  auto to_duration = [](double s) {
    return std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(s));
  };
  plan.measure_from = start + to_duration(warmup);
  plan.stop_at = plan.measure_from + to_duration(duration);
  // Requests still out at stop_at get their full timeout to answer, then we give up on them.
  const auto hard_stop = plan.stop_at + plan.request_timeout + std::chrono::seconds(1);

  fmt::print(
      "wachat_loadgen: run_id={} target={}:{}{} connections={} threads={} warmup={}s "
      "duration={}s body_bytes={} visitors={} rate={} count={} start_seq={}\n",
      run_id, host, port, plan.path, connections, threads, warmup, duration, generator.body_size(),
      visitors, rate, count, start_seq);
  std::fflush(stdout);

  // Tallies outlive the contexts whose pending handlers still refer to them.
  std::vector<thread_tally> tallies(threads);
  std::vector<std::unique_ptr<net::io_context>> contexts;
  std::vector<std::unique_ptr<net::steady_timer>> hard_stops;
  for (std::uint64_t t = 0; t < threads; ++t) {
    contexts.push_back(std::make_unique<net::io_context>(1));
    hard_stops.push_back(std::make_unique<net::steady_timer>(*contexts[t], hard_stop));
    hard_stops[t]->async_wait([&ctx = *contexts[t]](beast::error_code ec) {
      if (!ec) {
        ctx.stop();
      }
    });
    tallies[t].hard_stop = hard_stops[t].get();
  }
  for (std::uint64_t c = 0; c < connections; ++c) {
    auto t = c % threads;
    std::make_shared<connection>(*contexts[t], plan, tallies[t])->start();
  }
  std::vector<std::thread> workers;
  for (std::uint64_t t = 0; t < threads; ++t) {
    workers.emplace_back([&ctx = *contexts[t]] { ctx.run(); });
  }
  for (auto& w : workers) {
    w.join();
  }
  const double window_s = std::chrono::duration<double>(plan.stop_at - plan.measure_from).count();

  thread_tally total;
  for (const auto& t : tallies) {
    total.merge(t);
  }
  std::uint64_t responses = 0;
  for (const auto& [status, n] : total.by_status) {
    responses += n;
  }
  const auto unfinished = total.sent - responses - total.io_errors - total.timeouts;
  const auto latency = bench::latency_summary::of(total.latencies_us);
  const double throughput = static_cast<double>(total.acked_in_window) / window_s;

  std::string statuses;
  nlohmann::ordered_json status_json = nlohmann::ordered_json::object();
  for (const auto& [status, n] : total.by_status) {
    statuses += fmt::format(" {}={}", status, n);
    status_json[std::to_string(status)] = n;
  }
  fmt::print("requests: sent={} responses={} 2xx={} by status:{}\n", total.sent, responses,
             total.acked, statuses.empty() ? " (none)" : statuses);
  fmt::print("errors: connect={} io={} timeout={} unfinished={}\n", total.connect_errors,
             total.io_errors, total.timeouts, unfinished);
  fmt::print("throughput: {:.1f} 2xx/s over the {:.1f} s window ({} 2xx)\n", throughput, window_s,
             total.acked_in_window);
  fmt::print("latency ms: p50={:.3f} p90={:.3f} p99={:.3f} p99.9={:.3f} max={:.3f} (n={})\n",
             latency.p50_ms, latency.p90_ms, latency.p99_ms, latency.p999_ms, latency.max_ms,
             latency.count);

  if (!ack_log.empty()) {
    // Written under a temporary name and renamed: a reader waiting for the file sees it whole.
    const auto tmp = ack_log + ".tmp";
    {
      std::ofstream out{tmp, std::ios::trunc};
      for (const auto& [seq, at] : total.acks) {
        out << seq << ' ' << at << '\n';
      }
      if (!out) {
        throw std::runtime_error("cannot write " + tmp);
      }
    }
    if (std::rename(tmp.c_str(), ack_log.c_str()) != 0) {
      throw std::runtime_error("cannot rename " + tmp + " to " + ack_log);
    }
  }
  const double active_s =
      total.last_ack_us > total.first_send_us ? (total.last_ack_us - total.first_send_us) / 1e6 : 0;
  fmt::print("first send to last 2xx: {:.3f} s, {:.1f} 2xx/s over it\n", active_s,
             active_s > 0 ? static_cast<double>(total.acked) / active_s : 0.0);

  db_check check;
  if (!check_url.empty()) {
    check = check_db(check_url, generator.run_marker(), total.acked);
    if (!check.error.empty()) {
      fmt::print("check-db: FAILED to check: {}\n", check.error);
    } else {
      fmt::print("check-db: {} rows stored for run {}, {} acknowledged: {}\n", check.rows, run_id,
                 total.acked,
                 check.ok ? "OK, nothing acknowledged is missing"
                          : fmt::format("LOST {} acknowledged webhooks", total.acked - check.rows));
    }
  }

  nlohmann::ordered_json report = {
      {"tool", "wachat_loadgen"},
      {"run_id", run_id},
      {"connections", connections},
      {"threads", threads},
      {"warmup_s", warmup},
      {"duration_s", duration},
      {"body_bytes", generator.body_size()},
      {"sent", total.sent},
      {"responses", responses},
      {"acked", total.acked},
      {"acked_in_window", total.acked_in_window},
      {"throughput_2xx_per_s", round1(throughput)},
      {"by_status", status_json},
      {"errors",
       {{"connect", total.connect_errors},
        {"io", total.io_errors},
        {"timeout", total.timeouts},
        {"unfinished", unfinished}}},
      {"latency_ms", latency.to_json()},
      {"visitors", visitors},
      {"rate", rate},
      {"first_send_unix_us", total.first_send_us == INT64_MAX ? 0 : total.first_send_us},
      {"last_ack_unix_us", total.last_ack_us},
      {"cpu_s", round1(own_cpu_seconds())},
      {"check_db", nullptr},
  };
  if (check.ran) {
    report["check_db"] = {{"ok", check.ok},
                          {"rows", check.rows},
                          {"acked", total.acked},
                          {"error", check.error.empty() ? nlohmann::ordered_json(nullptr)
                                                        : nlohmann::ordered_json(check.error)}};
  }
  std::cout << report.dump() << std::endl;
  return check.ran && !check.ok ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  return wachat::bench::run_tool("wachat_loadgen", argc, argv, run);
}

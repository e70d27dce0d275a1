// wachat_sse_latency: one SSE subscriber on GET /api/sites/{site}/events that notes when each
// `message.created` event of a loadgen run arrives, then joins those times with the loadgen's
// --ack-log (when each webhook was answered 2xx) and reports webhook acknowledged -> event
// latency percentiles. Both tools stamp with the wall clock of this one machine.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/stat.h>
#include <unordered_map>
#include <vector>

#include "cli_args.hpp"
#include "latency_summary.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using namespace wachat;
using bench::cli_args;
using bench::usage_error;
using bench::own_cpu_seconds;
using bench::unix_us_now;

constexpr const char* help_text =
    "Usage: wachat_sse_latency --port P --site S --token T --run-id ID --ack-log FILE [options]\n\n"
    "Subscribes to the site's live events, waits for FILE (written by wachat_loadgen --ack-log\n"
    "when it is done), then until every acknowledged webhook's message.created event arrived\n"
    "or --grace ran out, and reports acknowledged -> event latency.\n\n"
    "  --host H            server IP                                  [127.0.0.1]\n"
    "  --port P            server port\n"
    "  --site S            site id\n"
    "  --token T           bearer token that may see the site (admin or site token)\n"
    "  --run-id ID         the loadgen's run id (in every wamid)\n"
    "  --ack-log FILE      the loadgen's ack log\n"
    "  --grace S           after FILE appears, wait at most this for missing events [10]\n"
    "  --timeout S         give up after this in all                 [600]\n"
    "  --ready-file F      touched once the stream is open\n\n"
    "Prints human-readable lines, then one JSON line. Exit 1 when the stream fails.\n";

bool file_exists(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0;
}

// Splits the stream into SSE frames and notes the arrival of each message.created of the run.
class frame_reader {
 public:
  explicit frame_reader(std::string marker) : marker_("\"wamid." + std::move(marker) + ".") {}

  // Returns false when the HTTP response is not a 200 stream.
  bool feed(const char* data, std::size_t n, std::int64_t at_us) {
    buf_.append(data, n);
    if (!header_done_) {
      auto end = buf_.find("\r\n\r\n");
      if (end == std::string::npos) {
        return true;
      }
      if (buf_.rfind("HTTP/1.1 200", 0) != 0) {
        std::fprintf(stderr, "wachat_sse_latency: %s\n", buf_.substr(0, end).c_str());
        return false;
      }
      header_done_ = true;
      buf_.erase(0, end + 4);
    }
    std::size_t from = 0;
    for (auto end = buf_.find("\n\n", from); end != std::string::npos;
         end = buf_.find("\n\n", from)) {
      frame(std::string_view{buf_}.substr(from, end - from), at_us);
      from = end + 2;
    }
    buf_.erase(0, from);
    return true;
  }

  std::unordered_map<std::uint64_t, std::int64_t> seen;  // seq -> arrival, unix us
  std::uint64_t frames = 0;
  std::uint64_t created = 0;  // message.created frames, of any run

 private:
  void frame(std::string_view f, std::int64_t at_us) {
    if (f.empty() || f.front() == ':') {
      return;  // comment: connected, keep-alive
    }
    ++frames;
    if (f.find("\nevent: message.created\n") == std::string_view::npos) {
      return;
    }
    ++created;
    auto at = f.find(marker_);
    if (at == std::string_view::npos) {
      return;
    }
    auto digits = f.substr(at + marker_.size(), 12);
    std::uint64_t seq = 0;
    for (char c : digits) {
      seq = seq * 10 + static_cast<std::uint64_t>(c - '0');
    }
    seen.emplace(seq, at_us);
  }

  std::string marker_;
  std::string buf_;
  bool header_done_ = false;
};

int connect_stream(const std::string& host, int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (fd < 0 || ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::runtime_error(fmt::format("cannot connect to {}:{}: {}", host, port,
                                         std::strerror(errno)));
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    throw std::runtime_error("cannot send the request");
  }
  return fd;
}

std::vector<std::pair<std::uint64_t, std::int64_t>> read_acks(const std::string& path) {
  std::vector<std::pair<std::uint64_t, std::int64_t>> out;
  std::ifstream in{path};
  std::uint64_t seq = 0;
  std::int64_t at = 0;
  while (in >> seq >> at) {
    out.emplace_back(seq, at);
  }
  return out;
}

int run(int argc, char** argv) {
  cli_args args{argc,
                argv,
                {"host", "port", "site", "token", "run-id", "ack-log", "grace", "timeout",
                 "ready-file"}};
  if (args.help()) {
    std::cout << help_text;
    return 0;
  }
  for (const char* required : {"port", "site", "token", "run-id", "ack-log"}) {
    if (!args.has(required)) {
      throw usage_error(fmt::format("--{} is required", required));
    }
  }
  const auto host = args.text("host", "127.0.0.1");
  const auto port = static_cast<int>(args.number("port", 0, 1, 65535));
  const auto site = args.text("site", "");
  const auto ack_log = args.text("ack-log", "");
  const double grace = args.seconds("grace", 10, 0, 3600);
  const double timeout = args.seconds("timeout", 600, 1, 86400);
  const auto ready_file = args.text("ready-file", "");

  const auto request = fmt::format(
      "GET /api/sites/{}/events HTTP/1.1\r\nHost: {}:{}\r\nAccept: text/event-stream\r\n"
      "Authorization: Bearer {}\r\n\r\n",
      site, host, port, args.text("token", ""));
  const int fd = connect_stream(host, port, request);
  frame_reader reader{args.text("run-id", "")};
  const auto began = clock_type::now();
  auto seconds_since = [](clock_type::time_point t) {
    return std::chrono::duration<double>(clock_type::now() - t).count();
  };
  std::vector<std::pair<std::uint64_t, std::int64_t>> acks;
  bool have_acks = false;
  clock_type::time_point acks_at{};
  bool ready = false;
  auto next_check = clock_type::now();
  std::string failure;
  std::vector<char> chunk(1 << 16);
  while (true) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      auto n = ::recv(fd, chunk.data(), chunk.size(), 0);
      const auto at = unix_us_now();
      if (n <= 0) {
        failure = n == 0 ? "the server closed the stream" : std::strerror(errno);
        break;
      }
      if (!reader.feed(chunk.data(), static_cast<std::size_t>(n), at)) {
        failure = "the server refused the stream";
        break;
      }
      if (!ready && !ready_file.empty()) {
        std::ofstream{ready_file} << "ready\n";
        ready = true;
      }
    }
    if (!have_acks && file_exists(ack_log)) {
      acks = read_acks(ack_log);
      have_acks = true;
      acks_at = clock_type::now();
    }
    if (have_acks && clock_type::now() >= next_check) {
      next_check = clock_type::now() + std::chrono::milliseconds(100);
      std::size_t missing = 0;
      for (const auto& [seq, at] : acks) {
        missing += reader.seen.contains(seq) ? 0 : 1;
      }
      if (missing == 0 || seconds_since(acks_at) > grace) {
        break;
      }
    }
    if (seconds_since(began) > timeout) {
      failure = "timed out";
      break;
    }
  }
  ::close(fd);

  std::vector<std::uint32_t> latencies_us;
  // By the second of the run in which the webhook was acknowledged: whether the tail is spread
  // over the run or comes from a few stalls.
  std::map<std::int64_t, std::vector<std::uint32_t>> by_second;
  std::int64_t first_at = INT64_MAX;
  for (const auto& [seq, at] : acks) {
    first_at = std::min(first_at, at);
  }
  std::uint64_t missing = 0;
  std::uint64_t early = 0;  // event seen before the loadgen read the 2xx: counted as 0
  std::int64_t first_ack = INT64_MAX;
  std::int64_t last_event = 0;
  for (const auto& [seq, at] : acks) {
    auto it = reader.seen.find(seq);
    if (it == reader.seen.end()) {
      ++missing;
      continue;
    }
    first_ack = std::min(first_ack, at);
    last_event = std::max(last_event, it->second);
    auto d = it->second - at;
    early += d < 0 ? 1 : 0;
    latencies_us.push_back(static_cast<std::uint32_t>(std::clamp<std::int64_t>(d, 0, UINT32_MAX)));
    by_second[(at - first_at) / 1000000].push_back(latencies_us.back());
  }
  std::string seconds;
  for (auto& [second, samples] : by_second) {
    const auto s = bench::latency_summary::of(samples);
    seconds += fmt::format(" {}:{:.0f}/{:.0f}", second, s.p99_ms, s.max_ms);
  }
  const auto latency = bench::latency_summary::of(latencies_us);
  fmt::print("sse: {} frames, {} message.created; {} acknowledged webhooks, {} matched, {} missing\n",
             reader.frames, reader.created, acks.size(), latency.count, missing);
  fmt::print("acknowledged -> message.created ms: p50={:.1f} p95={:.1f} p99={:.1f} "
             "p99.9={:.1f} max={:.1f} (n={}, {} before the ack)\n",
             latency.p50_ms, latency.p95_ms, latency.p99_ms, latency.p999_ms, latency.max_ms,
             latency.count, early);
  fmt::print("p99/max ms by second of the run:{}\n", seconds);
  if (!failure.empty()) {
    fmt::print("sse: FAILED: {}\n", failure);
  }
  nlohmann::ordered_json report = {
      {"tool", "wachat_sse_latency"},
      {"ok", failure.empty() && have_acks && missing == 0},
      {"frames", reader.frames},
      {"message_created", reader.created},
      {"acked", acks.size()},
      {"matched", latency.count},
      {"missing", missing},
      {"event_before_ack", early},
      {"latency_ms", latency.to_json()},
      {"cpu_s", own_cpu_seconds()},
      {"first_ack_to_last_event_s",
       last_event > first_ack ? (last_event - first_ack) / 1e6 : 0.0},
      {"error", failure.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(failure)}};
  std::cout << report.dump() << std::endl;
  return report["ok"].get<bool>() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return wachat::bench::run_tool("wachat_sse_latency", argc, argv, run);
}

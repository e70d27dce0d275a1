// Customers' media (issue 14 targets), end to end into a local fake Graph API
// (tests/support/fake_graph) on a fresh database of WACHAT_TEST_DATABASE_URL:
//   --mode large   one document of --size-mb MB: the time to store it, and how much wachatd's
//                  resident memory grew meanwhile (VmRSS sampled every 5 ms against the level
//                  before) - the file must stream to disk, never whole in memory
//   --mode mixed   --texts text webhooks from as many customers, timed until all are stored:
//                  alone (A), then while --media image webhooks of --size-kb KB each (stored as
//                  messages first) are being downloaded (B), then alone again (A'); the ratio
//                  B / mean(A, A') is the slowdown of text processing, and the media's
//                  completion time is reported
// One JSON line each.
#include <atomic>
#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <random>
#include <thread>

#include "cli_args.hpp"
#include "infra/crypto.hpp"
#include "support/fake_graph.hpp"
#include "support/pg_control.hpp"
#include "support/wachat_fixture.hpp"

namespace {

using nlohmann::json;
using clock_type = std::chrono::steady_clock;

const std::string phone_id = "106540352242922";
const std::string token = "EAABbenchToken0123456789abcd";

long rss_kib(pid_t pid) {
  std::ifstream status{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937_64 gen{seed};
  std::string s(n, '\0');
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    auto v = gen();
    std::memcpy(s.data() + i, &v, 8);
  }
  return s;
}

std::string media_webhook(const std::string& from, const std::string& wamid, const std::string& type,
                          const json& media) {
  json value = {{"messaging_product", "whatsapp"},
                {"metadata", wachat::test::metadata(phone_id)},
                {"contacts", {{{"profile", {{"name", "Bench"}}}, {"wa_id", from}}}},
                {"messages",
                 {{{"from", from}, {"id", wamid}, {"timestamp", std::to_string(std::time(nullptr))}, {"type", type},
                   {type, media}}}}};
  return wachat::test::envelope(value);
}

wachat::test::fake_graph::options fake_options() {
  wachat::test::fake_graph::options o;
  // Meta serves the files from its own machines: here the fake does, on the same two cores, so
  // it yields to wachatd and PostgreSQL instead of taking its share as Meta never would.
  o.background = true;
  return o;
}

struct site {
  wachat::test::fake_graph graph{fake_options()};
  std::unique_ptr<wachat::test::wachat_fixture> f;
  explicit site(std::map<std::string, std::string> env) {
    graph.add_token(token);
    graph.add_phone(phone_id, "+1 555-0100", "Bench");
    env["WACHAT_GRAPH_BASE_URL"] = graph.base_url();
    f = std::make_unique<wachat::test::wachat_fixture>(env);
    f->call_json("POST", "/api/sites", {{"id", "bench"}}, 201);
    f->call_json("PUT", "/api/sites/bench/whatsapp/settings",
                 {{"phone_number_id", phone_id}, {"access_token", token}, {"read_receipts", "off"}, {"crm_sync", false}});
  }
  std::int64_t count(const std::string& where) {
    return std::stoll(wachat::test::query_scalar(f->db, "SELECT count(*) FROM mod_chat_messages WHERE " + where));
  }
  void wait(const std::string& where, std::int64_t n, std::chrono::seconds limit) {
    auto deadline = clock_type::now() + limit;
    while (count(where) < n) {
      if (clock_type::now() > deadline) throw std::runtime_error("timed out waiting for " + where);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
};

// Posts `n` text webhooks (customers `base`...) and waits until all are stored: seconds.
double text_round(site& s, std::uint64_t base, std::uint64_t n) {
  const auto before = s.count("content_type = 'text'");
  const auto t0 = clock_type::now();
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  for (std::uint64_t i = 0; i < n; ++i) {
    auto from = std::to_string(base + i);
    if (s.f->post_webhook(wachat::test::text_webhook(phone_id, from, "wamid.T" + from, now, "hello")).status != 200) {
      throw std::runtime_error("a text webhook was refused");
    }
  }
  s.wait("content_type = 'text'", before + static_cast<std::int64_t>(n), std::chrono::seconds(300));
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

int run(int argc, char** argv) {
  wachat::bench::cli_args args{argc, argv, {"mode", "size-mb", "size-kb", "media", "texts", "workers", "yield-ms", "label"}};
  if (args.help()) {
    std::cout << "wachat_media_bench --mode large [--size-mb 100] | --mode mixed [--media 200] [--size-kb 1024]"
                 " [--texts 1000] [--workers 4] [--yield-ms 1000] [--label L]\n";
    return 0;
  }
  const auto mode = args.text("mode", "large");
  const auto workers = args.number("workers", 4, 1, 256);
  // WACHAT_MEDIA_YIELD_MS: 0 lets downloads compete with the texts (the behaviour before the
  // media pool held back for inbound work).
  const auto yield_ms = args.number("yield-ms", 1000, 0, 60000);
  site s{{{"WACHAT_MEDIA_WORKERS", std::to_string(workers)}, {"WACHAT_MEDIA_YIELD_MS", std::to_string(yield_ms)}}};
  const pid_t pid = s.f->server->process().pid();
  json out{{"label", args.text("label", mode)}, {"mode", mode}, {"media_workers", workers}, {"media_yield_ms", yield_ms}};

  if (mode == "large") {
    const auto mb = args.number("size-mb", 100, 1, 100);
    const auto bytes = random_bytes(mb * 1024 * 1024, 7);
    auto digest = wachat::infra::sha256(bytes);
    s.graph.add_media("media-large", "application/pdf", bytes);
    // Warm up: one small file, so the lazily made parts (connections, buffers) exist before
    // the baseline is taken.
    s.graph.add_media("media-warm", "application/pdf", random_bytes(64 * 1024, 8));
    s.f->post_webhook(media_webhook("16500000001", "wamid.W", "document", {{"id", "media-warm"}, {"mime_type", "application/pdf"}}));
    s.wait("media_status = 'stored'", 1, std::chrono::seconds(60));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const long base = rss_kib(pid);
    long peak = base;
    std::atomic<bool> done{false};
    std::thread sampler([&] {
      while (!done) {
        peak = std::max(peak, rss_kib(pid));
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
    const auto t0 = clock_type::now();
    s.f->post_webhook(media_webhook("16500000002", "wamid.L", "document",
                                    {{"id", "media-large"}, {"mime_type", "application/pdf"}, {"filename", "big.pdf"},
                                     {"sha256", wachat::infra::hex_encode(digest.data(), digest.size())}}));
    s.wait("media_status = 'stored'", 2, std::chrono::seconds(600));
    const double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
    done = true;
    sampler.join();
    out["size_mb"] = mb;
    out["seconds"] = secs;
    out["rss_before_mib"] = base / 1024.0;
    out["rss_peak_mib"] = peak / 1024.0;
    out["rss_growth_mib"] = (peak - base) / 1024.0;
    out["failed"] = s.count("media_status = 'failed'");
  } else {
    const auto media = args.number("media", 200, 1, 100000);
    const auto kb = args.number("size-kb", 1024, 1, 16384);
    const auto texts = args.number("texts", 1000, 1, 1000000);
    const auto payload = random_bytes(kb * 1024, 9);
    auto digest = wachat::infra::sha256(payload);
    const auto hex = wachat::infra::hex_encode(digest.data(), digest.size());
    for (std::uint64_t i = 0; i < media; ++i) s.graph.add_media("media-" + std::to_string(i), "image/jpeg", payload);
    text_round(s, 16510000000ULL, 50);  // warm-up
    const double a1 = text_round(s, 16520000000ULL, texts);
    // B: the media webhooks first, stored as messages (their inbound processing is not the
    // downloads' cost), then the texts while the downloads run.
    const auto m0 = clock_type::now();
    for (std::uint64_t i = 0; i < media; ++i) {
      auto from = std::to_string(16530000000ULL + i);
      s.f->post_webhook(media_webhook(from, "wamid.M" + from, "image",
                                      {{"id", "media-" + std::to_string(i)}, {"mime_type", "image/jpeg"}, {"sha256", hex}}));
    }
    s.wait("content_type = 'image'", static_cast<std::int64_t>(media), std::chrono::seconds(120));
    const auto media_pending_before_b = s.count("media_status = 'pending'");
    const double b = text_round(s, 16540000000ULL, texts);
    const auto media_pending_after_b = s.count("media_status = 'pending'");
    s.wait("media_status = 'stored'", static_cast<std::int64_t>(media), std::chrono::seconds(600));
    const double media_secs = std::chrono::duration<double>(clock_type::now() - m0).count();
    const double a2 = text_round(s, 16550000000ULL, texts);
    const double a = (a1 + a2) / 2;
    out["texts"] = texts;
    out["media"] = media;
    out["size_kb"] = kb;
    out["text_seconds_alone"] = {a1, a2};
    out["text_seconds_with_media"] = b;
    out["slowdown"] = b / a;
    out["media_pending_when_texts_began"] = media_pending_before_b;
    out["media_still_pending_when_texts_done"] = media_pending_after_b;
    out["media_seconds"] = media_secs;
    out["media_mb_per_s"] = media * kb / 1024.0 / media_secs;
    out["failed"] = s.count("media_status = 'failed'");
  }
  std::cout << out.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "wachat_media_bench: " << e.what() << "\n";
    return 1;
  }
}

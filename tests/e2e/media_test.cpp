// Customers' media (API.md §3.6, DESIGN.md §3 item 6): the real wachatd fetches what customers
// send from a fake Graph API answering as Meta documents, stores it, and serves it through
// signed URLs; faults end in `failed` with a reason, never in a stuck or lost message.
#include <catch2/catch.hpp>

#include <atomic>
#include <ctime>
#include <filesystem>
#include <random>
#include <thread>

#include "infra/crypto.hpp"
#include "support/fake_graph.hpp"
#include "support/pg_control.hpp"
#include "support/wachat_fixture.hpp"
#include "support/whatsapp_site.hpp"

using namespace wachat;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

using test::customer;
using test::phone_id;

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 gen{seed};
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen() & 0xFF);
  return s;
}

std::string hex_sha256(const std::string& bytes) {
  auto d = infra::sha256(bytes);
  return infra::hex_encode(d.data(), d.size());
}

struct media_site : test::whatsapp_site {
  explicit media_site(std::map<std::string, std::string> env = {}, std::string binary = {})
      : test::whatsapp_site(60, with_fast_retries(std::move(env)), std::move(binary)) {}

  static std::map<std::string, std::string> with_fast_retries(std::map<std::string, std::string> env) {
    env.emplace("WACHAT_MEDIA_RETRY_MS", "50");
    return env;
  }

  // The customer sends a `type` message whose media object is `media`.
  void post(const std::string& wamid, const std::string& type, const json& media) {
    json value = {{"messaging_product", "whatsapp"},
                  {"metadata", test::metadata(phone_id)},
                  {"contacts", {{{"profile", {{"name", "Sheena Nelson"}}}, {"wa_id", customer}}}},
                  {"messages",
                   {{{"from", customer},
                     {"id", wamid},
                     {"timestamp", std::to_string(std::time(nullptr))},
                     {"type", type},
                     {type, media}}}}};
    REQUIRE(f->post_webhook(test::envelope(value)).status == 200);
  }

  std::optional<json> message(const std::string& wamid) {
    auto page = f->call_json("GET", "/api/conversations/" + conversation + "/messages?limit=100")["messages"];
    for (const auto& m : page) {
      if (m["whatsapp_message_id"] == wamid) return m;
    }
    return std::nullopt;
  }

  // The message once its media_status is `status` (fails the test if it never is).
  json settled(const std::string& wamid, const std::string& status, std::chrono::milliseconds within = 15s) {
    json last;
    bool ok = test::eventually(
        [&] {
          auto m = message(wamid);
          if (!m) return false;
          last = *m;
          return (*m)["media_status"] == status;
        },
        within);
    INFO(last.dump());
    REQUIRE(ok);
    return last;
  }

  // GET of a file_url (or of any /media target), through a real socket.
  test::http_result fetch(const std::string& url, std::map<std::string, std::string> headers = {}) {
    auto at = url.find("/media/");
    REQUIRE(at != std::string::npos);
    return test::http_get(f->port(), url.substr(at), headers);
  }
};

}  // namespace

TEST_CASE("a customer's image is fetched from Meta, stored, announced, and served through its signed URL") {
  media_site s;
  const auto bytes = random_bytes(300 * 1024, 1);
  s.graph.add_media("media-img-1", "image/jpeg", bytes);
  s.post("wamid.IMG1", "image",
         {{"id", "media-img-1"}, {"mime_type", "image/jpeg"}, {"sha256", hex_sha256(bytes)}, {"caption", "my receipt"}});
  auto m = s.settled("wamid.IMG1", "stored");
  CHECK(m["content_type"] == "image");
  CHECK(m["content"] == "my receipt");
  CHECK(m["file_name"] == "image_" + m["id"].get<std::string>() + ".jpg");
  CHECK(m["file_size"] == bytes.size());
  CHECK(m["file_mime_type"] == "image/jpeg");
  CHECK(m["error"].is_null());
  const auto url = m["file_url"].get<std::string>();
  CHECK(url.rfind("http://127.0.0.1:" + std::to_string(s.f->port()) + "/media/chat/acme/", 0) == 0);
  CHECK(url.find("?exp=") != std::string::npos);
  CHECK(url.find("&sig=") != std::string::npos);

  // Meta was asked with the site's token, then the file downloaded with it.
  auto lookups = s.graph.calls_matching("GET", "/v24.0/media-img-1");
  REQUIRE(lookups.size() == 1);
  CHECK(lookups[0].headers["authorization"] == "Bearer " + test::token);
  auto downloads = s.graph.calls_matching("GET", "/whatsapp_business/attachments/*");
  REQUIRE(downloads.size() == 1);
  CHECK(downloads[0].headers["authorization"] == "Bearer " + test::token);
  // The change was a message.updated event.
  CHECK(s.scalar("SELECT count(*) FROM wa_events WHERE type = 'message.updated' AND message_id = " +
                 m["id"].get<std::string>()) != "0");
  CHECK(s.scalar("SELECT count(*) FROM wa_media_jobs") == "0");

  auto got = s.fetch(url);
  REQUIRE(got.status == 200);
  CHECK(got.body == bytes);
  CHECK(got.headers["content-type"] == "image/jpeg");
  CHECK(got.headers["content-disposition"].rfind("inline", 0) == 0);
  CHECK(got.headers["x-content-type-options"] == "nosniff");
  CHECK(got.headers["accept-ranges"] == "bytes");

  // Byte ranges, and one past the end.
  auto part = s.fetch(url, {{"Range", "bytes=100-199"}});
  REQUIRE(part.status == 206);
  CHECK(part.body == bytes.substr(100, 100));
  CHECK(part.headers["content-range"] == "bytes 100-199/" + std::to_string(bytes.size()));
  auto tail = s.fetch(url, {{"Range", "bytes=-10"}});
  REQUIRE(tail.status == 206);
  CHECK(tail.body == bytes.substr(bytes.size() - 10));
  auto past = s.fetch(url, {{"Range", "bytes=" + std::to_string(bytes.size()) + "-"}});
  CHECK(past.status == 416);
  CHECK(past.headers["content-range"] == "bytes */" + std::to_string(bytes.size()));

  // A tampered, missing or moved signature is refused, and tells nothing more.
  auto tampered = url;
  tampered.back() = tampered.back() == '0' ? '1' : '0';
  CHECK(s.fetch(tampered).status == 403);
  CHECK(s.fetch(url.substr(0, url.find('?'))).status == 403);
  auto later = url;
  auto exp_at = later.find("exp=") + 4;
  later.replace(exp_at, 1, std::string(1, later[exp_at] == '9' ? '8' : static_cast<char>(later[exp_at] + 1)));
  CHECK(s.fetch(later).status == 403);
  auto other_file = url;
  // Another file's path with this one's signature (a character changed, never to itself).
  auto& c = other_file[other_file.find("/media/chat/acme/") + 17];
  c = c == '0' ? '1' : '0';
  CHECK(s.fetch(other_file).status == 403);
  CHECK(test::http_get(s.f->port(), "/media/chat/acme/..%2F..%2Fetc%2Fpasswd?exp=9999999999&sig=00").status == 403);

  // The file sits under chat/acme/ in the media directory.
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(s.f->server->media_dir() + "/chat/acme")) {
    files += e.is_regular_file() ? 1 : 0;
  }
  CHECK(files == 1);
}

TEST_CASE("a signed media URL expires; reading the message again gives a fresh one") {
  media_site s{{{"WACHAT_MEDIA_URL_TTL", "1"}}};
  const auto bytes = random_bytes(1000, 2);
  s.graph.add_media("media-img-2", "image/png", bytes);
  s.post("wamid.IMG2", "image", {{"id", "media-img-2"}, {"mime_type", "image/png"}, {"sha256", hex_sha256(bytes)}});
  auto url = s.settled("wamid.IMG2", "stored")["file_url"].get<std::string>();
  std::this_thread::sleep_for(2100ms);
  CHECK(s.fetch(url).status == 403);
  auto fresh = (*s.message("wamid.IMG2"))["file_url"].get<std::string>();
  CHECK(fresh != url);
  auto got = s.fetch(fresh);
  CHECK(got.status == 200);
  CHECK(got.body == bytes);
}

TEST_CASE("a document keeps the customer's filename made safe and downloads as an attachment; a voice note plays by ranges") {
  media_site s;
  const auto doc = random_bytes(50 * 1024, 3);
  s.graph.add_media("media-doc-1", "application/pdf", doc);
  std::string hostile = "../../etc/" + std::string(2000, 'x') + ".pdf";
  s.post("wamid.DOC1", "document",
         {{"id", "media-doc-1"}, {"mime_type", "application/pdf"}, {"sha256", hex_sha256(doc)}, {"filename", hostile}});
  auto m = s.settled("wamid.DOC1", "stored");
  auto name = m["file_name"].get<std::string>();
  CHECK(name.size() <= 120);
  CHECK(name.find('/') == std::string::npos);
  CHECK(name.substr(name.size() - 4) == ".pdf");
  auto got = s.fetch(m["file_url"].get<std::string>());
  REQUIRE(got.status == 200);
  CHECK(got.body == doc);
  CHECK(got.headers["content-type"] == "application/pdf");
  CHECK(got.headers["content-disposition"].rfind("attachment; filename=\"", 0) == 0);

  const auto voice = random_bytes(20 * 1024, 4);
  s.graph.add_media("media-voice-1", "audio/ogg; codecs=opus", voice);
  s.post("wamid.VOICE1", "audio",
         {{"id", "media-voice-1"}, {"mime_type", "audio/ogg; codecs=opus"}, {"sha256", hex_sha256(voice)}, {"voice", true}});
  auto v = s.settled("wamid.VOICE1", "stored");
  CHECK(v["file_mime_type"] == "audio/ogg; codecs=opus");
  CHECK(v["file_name"].get<std::string>().substr(v["file_name"].get<std::string>().size() - 4) == ".ogg");
  auto part = s.fetch(v["file_url"].get<std::string>(), {{"Range", "bytes=0-1023"}});
  CHECK(part.status == 206);
  CHECK(part.body == voice.substr(0, 1024));
  CHECK(part.headers["content-type"] == "audio/ogg; codecs=opus");
}

TEST_CASE("media that breaks Meta's rules or cannot be fetched ends failed with its reason; text flows on") {
  media_site s;
  const auto big = random_bytes(64 * 1024, 5);
  auto big_url = s.graph.add_media("media-big", "image/jpeg", big);

  // Announced beyond the 5 MB image limit: failed at once, nothing downloaded.
  s.graph.script("GET", "/v24.0/media-big",
                 test::scripted_response::json(200, json{{"url", big_url}, {"mime_type", "image/jpeg"},
                                                          {"sha256", hex_sha256(big)}, {"file_size", 6 * 1024 * 1024},
                                                          {"id", "media-big"}}.dump()));
  s.post("wamid.BIG", "image", {{"id", "media-big"}, {"mime_type", "image/jpeg"}});
  auto m = s.settled("wamid.BIG", "failed");
  CHECK(m["error"]["code"] == 131052);
  CHECK(m["error"]["details"].get<std::string>().find("5 MB") != std::string::npos);
  CHECK(m["file_url"].is_null());

  // Larger than announced: cut off at the announced size, failed.
  s.graph.script("GET", "/v24.0/media-big",
                 test::scripted_response::json(200, json{{"url", big_url}, {"mime_type", "image/jpeg"},
                                                          {"sha256", hex_sha256(big)}, {"file_size", 1000},
                                                          {"id", "media-big"}}.dump()));
  s.post("wamid.BIG2", "image", {{"id", "media-big"}, {"mime_type", "image/jpeg"}});
  m = s.settled("wamid.BIG2", "failed");
  CHECK(m["error"]["details"].get<std::string>().find("larger than the 1000 bytes") != std::string::npos);

  // A type Meta never sends for images.
  s.graph.add_media("media-html", "text/html", "<script>alert(1)</script>");
  s.post("wamid.HTML", "image", {{"id", "media-html"}, {"mime_type", "text/html"}});
  m = s.settled("wamid.HTML", "failed");
  CHECK(m["error"]["details"].get<std::string>().find("text/html") != std::string::npos);

  // A media id Meta no longer knows (ids live 7 days).
  s.post("wamid.GONE", "image", {{"id", "media-expired"}, {"mime_type", "image/jpeg"}});
  m = s.settled("wamid.GONE", "failed");
  CHECK(m["error"]["details"].get<std::string>().find("no longer has this media") != std::string::npos);

  // A sha256 that never matches: tried five times, then failed.
  const auto odd = random_bytes(2000, 6);
  auto odd_url = s.graph.add_media("media-odd", "image/jpeg", odd);
  s.graph.script("GET", "/v24.0/media-odd",
                 test::scripted_response::json(200, json{{"url", odd_url}, {"mime_type", "image/jpeg"},
                                                          {"sha256", std::string(64, 'a')}, {"file_size", odd.size()},
                                                          {"id", "media-odd"}}.dump()),
                 -1);
  s.post("wamid.ODD", "image", {{"id", "media-odd"}, {"mime_type", "image/jpeg"}});
  m = s.settled("wamid.ODD", "failed", 20s);
  CHECK(m["error"]["details"].get<std::string>().find("sha256") != std::string::npos);
  CHECK(s.graph.calls_matching("GET", "/v24.0/media-odd").size() == 5);
  s.graph.clear_scripts();

  // None of it left a file behind, nor a job.
  std::size_t files = 0;
  if (std::filesystem::exists(s.f->server->media_dir() + "/chat/acme")) {
    for (const auto& e : std::filesystem::directory_iterator(s.f->server->media_dir() + "/chat/acme")) {
      files += e.is_regular_file() ? 1 : 0;
    }
  }
  CHECK(files == 0);
  CHECK(s.scalar("SELECT count(*) FROM wa_media_jobs") == "0");

  // Text goes on as ever.
  REQUIRE(s.f->post_webhook(test::text_webhook(phone_id, customer, "wamid.TXT-after", std::time(nullptr), "still there?"))
              .status == 200);
  CHECK(test::eventually([&] { return s.message("wamid.TXT-after").has_value(); }));
}

TEST_CASE("a download that answers 401, 404 or stalls is tried again and stored once it works") {
  media_site s{{{"WACHAT_MEDIA_STALL_MS", "500"}}};
  const auto bytes = random_bytes(100 * 1024, 7);
  s.graph.add_media("media-flaky", "image/jpeg", bytes);
  s.graph.script("GET", "/whatsapp_business/attachments/*",
                 test::scripted_response::graph_error(401, 190, "Invalid OAuth access token"));
  s.graph.script("GET", "/whatsapp_business/attachments/*", test::scripted_response::json(404, "Not Found"));
  s.graph.script("GET", "/whatsapp_business/attachments/*", test::scripted_response::delayed(3s));
  s.post("wamid.FLAKY", "image", {{"id", "media-flaky"}, {"mime_type", "image/jpeg"}, {"sha256", hex_sha256(bytes)}});
  auto m = s.settled("wamid.FLAKY", "stored", 20s);
  CHECK(s.graph.calls_matching("GET", "/whatsapp_business/attachments/*").size() == 4);
  // Each try asked Meta for a fresh URL first.
  CHECK(s.graph.calls_matching("GET", "/v24.0/media-flaky").size() == 4);
  CHECK(s.fetch(m["file_url"].get<std::string>()).body == bytes);
}

TEST_CASE("POST .../media/retry fetches a failed media message again; other messages answer 409 or 404") {
  media_site s;
  s.post("wamid.LATE", "image", {{"id", "media-late"}, {"mime_type", "image/jpeg"}});
  auto m = s.settled("wamid.LATE", "failed");
  const auto id = m["id"].get<std::string>();
  const auto retry = "/api/conversations/" + s.conversation + "/messages/" + id + "/media/retry";

  const auto bytes = random_bytes(4000, 8);
  s.graph.add_media("media-late", "image/jpeg", bytes);
  auto r = s.f->call("POST", retry);
  REQUIRE(r.status == 202);
  CHECK(json::parse(r.body)["message"]["media_status"] == "pending");
  CHECK(json::parse(r.body)["message"]["error"].is_null());
  m = s.settled("wamid.LATE", "stored");
  CHECK(s.fetch(m["file_url"].get<std::string>()).body == bytes);

  auto again = s.f->call("POST", retry);
  CHECK(again.status == 409);
  CHECK(json::parse(again.body)["error"]["code"] == "invalid_state");
  // The customer's text message has no media to fetch.
  auto text_id = (*s.message("wamid.IN1"))["id"].get<std::string>();
  CHECK(s.f->call("POST", "/api/conversations/" + s.conversation + "/messages/" + text_id + "/media/retry").status == 409);
  CHECK(s.f->call("POST", "/api/conversations/" + s.conversation + "/messages/999999/media/retry").status == 404);
  CHECK(s.f->call("POST", "/api/conversations/" + s.conversation + "/messages/x'--/media/retry").status == 404);
  // Another site's token sees nothing.
  s.f->call_json("POST", "/api/sites", {{"id", "other"}}, 201);
  auto other = s.f->site_token("other");
  CHECK(s.f->call("POST", retry, "", other).status == 404);
}

TEST_CASE("a media worker that dies holding a job is restarted and the job done; a file that kills every worker ends failed") {
  SECTION("one crash") {
    media_site s{{{"WACHAT_FAULT_INJECT", "media_worker:1"}}, test::wachatd::faults_binary()};
    const auto bytes = random_bytes(3000, 9);
    s.graph.add_media("media-crash", "image/jpeg", bytes);
    s.post("wamid.CRASH", "image", {{"id", "media-crash"}, {"mime_type", "image/jpeg"}, {"sha256", hex_sha256(bytes)}});
    auto m = s.settled("wamid.CRASH", "stored");
    CHECK(s.fetch(m["file_url"].get<std::string>()).body == bytes);
    auto metrics = test::http_get(s.f->port(), "/metrics").body;
    CHECK(metrics.find("wachat_media_worker_restarts_total 1") != std::string::npos);
    CHECK(metrics.find("wachat_media_stored_total 1") != std::string::npos);
  }
  SECTION("a poison job") {
    media_site s{{{"WACHAT_FAULT_INJECT", "media_worker:1*"}}, test::wachatd::faults_binary()};
    s.post("wamid.POISON", "image", {{"id", "media-poison"}, {"mime_type", "image/jpeg"}});
    auto m = s.settled("wamid.POISON", "failed", 60s);
    CHECK(m["error"]["details"] == "the media worker stopped while fetching this file");
    auto metrics = test::http_get(s.f->port(), "/metrics").body;
    CHECK(metrics.find("wachat_media_failed_total 1") != std::string::npos);
    CHECK(metrics.find("wachat_media_worker_restarts_total 0") == std::string::npos);
    // The server goes on taking messages.
    REQUIRE(s.f->post_webhook(test::text_webhook(phone_id, customer, "wamid.TXT-p", std::time(nullptr), "hello?"))
                .status == 200);
    CHECK(test::eventually([&] { return s.message("wamid.TXT-p").has_value(); }));
  }
}

TEST_CASE("a disk that fills up fails the file it cannot hold, not the server; smaller files still store") {
  media_site s{{{"TEST_FILE_SIZE_LIMIT", std::to_string(256 * 1024)}}};
  const auto big = random_bytes(1024 * 1024, 10);
  s.graph.add_media("media-full", "image/jpeg", big);
  s.post("wamid.FULL", "image", {{"id", "media-full"}, {"mime_type", "image/jpeg"}, {"sha256", hex_sha256(big)}});
  auto m = s.settled("wamid.FULL", "failed", 20s);
  CHECK(m["error"]["details"].get<std::string>().find("storing the file failed") != std::string::npos);
  const auto small = random_bytes(10 * 1024, 11);
  s.graph.add_media("media-small", "image/jpeg", small);
  s.post("wamid.SMALL", "image", {{"id", "media-small"}, {"mime_type", "image/jpeg"}, {"sha256", hex_sha256(small)}});
  auto ok = s.settled("wamid.SMALL", "stored");
  CHECK(s.fetch(ok["file_url"].get<std::string>()).body == small);
  // Only the small file is on disk: the failed one left no partial file.
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(s.f->server->media_dir() + "/chat/acme")) {
    files += e.is_regular_file() ? 1 : 0;
  }
  CHECK(files == 1);
}

TEST_CASE("while customers keep writing, downloads hold back for their messages but are never starved") {
  media_site s{{{"WACHAT_MEDIA_YIELD_MS", "500"}}};
  // Texts from other customers every 30 ms (up to 400, 12 s or more): inbound is never quiet
  // for 250 ms while the images are fetched.
  std::atomic<bool> stop{false};
  std::atomic<int> posted{0};
  std::thread writer{[&] {
    for (int i = 0; !stop && i < 400; ++i) {
      json value = {{"messaging_product", "whatsapp"},
                    {"metadata", test::metadata(phone_id)},
                    {"contacts", {{{"profile", {{"name", "Busy"}}}, {"wa_id", std::to_string(4477000000 + i)}}}},
                    {"messages",
                     {{{"from", std::to_string(4477000000 + i)},
                       {"id", "wamid.BUSY" + std::to_string(i)},
                       {"timestamp", std::to_string(std::time(nullptr))},
                       {"type", "text"},
                       {"text", {{"body", "hello " + std::to_string(i)}}}}}}};
      auto body = test::envelope(value);
      if (test::http_post(s.f->port(), test::webhook_path, body,
                          {{"X-Hub-Signature-256", test::meta_signature(test::app_secret, body)}})
              .status == 200) {
        ++posted;
      }
      std::this_thread::sleep_for(30ms);
    }
  }};
  std::this_thread::sleep_for(500ms);
  std::vector<std::string> files;
  for (int i = 0; i < 3; ++i) {
    files.push_back(random_bytes(64 * 1024, 40 + i));
    s.graph.add_media("media-busy-" + std::to_string(i), "image/png", files.back());
    s.post("wamid.BUSYIMG" + std::to_string(i), "image",
           {{"id", "media-busy-" + std::to_string(i)}, {"mime_type", "image/png"}, {"sha256", hex_sha256(files.back())}});
  }
  // At least one download per 500 ms gets through while the texts flow: all three well before
  // the writer is done.
  for (int i = 0; i < 3; ++i) {
    s.settled("wamid.BUSYIMG" + std::to_string(i), "stored", 5s);
  }
  const bool texts_still_flowing = !stop && posted < 400;
  stop = true;
  writer.join();
  CHECK(texts_still_flowing);
  CHECK(posted > 0);
}

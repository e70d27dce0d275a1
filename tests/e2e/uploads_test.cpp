// Sending a file wachat holds (issue 14 item 7): an agent uploads it (POST /api/sites/{site}/media),
// then sends it by media_id; wachat uploads it to Meta's media endpoint once per number and sends
// by Meta's id. The real wachatd, PostgreSQL and a fake Graph API reading the multipart upload.
#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <ctime>
#include <random>
#include <thread>

#include "support/fake_graph.hpp"
#include "support/pg_control.hpp"
#include "support/wachat_fixture.hpp"
#include "support/whatsapp_site.hpp"

using namespace wachat;
using nlohmann::json;

namespace {

std::string bytes_of(std::size_t n, unsigned seed) {
  std::mt19937 gen{seed};
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen() & 0xFF);
  return s;
}

test::http_result upload(test::whatsapp_site& s, const std::string& body, const std::string& content_type,
                         const std::string& query = "", const std::string& token = test::admin_token) {
  test::http_client c{"127.0.0.1", s.f->port()};
  return c.request("POST", "/api/sites/acme/media" + query, body,
                   {{"Authorization", "Bearer " + token}, {"Content-Type", content_type}});
}

json agent(json body) {
  body["sender_id"] = "agent-7";
  body["sender_name"] = "Ann";
  return body;
}

}  // namespace

TEST_CASE("an uploaded image is sent by Meta's id after one upload to Meta; the message shows the stored file") {
  test::whatsapp_site s;
  const auto photo = bytes_of(200 * 1024, 1);
  auto up = upload(s, photo, "image/jpeg", "?filename=receipt.jpg");
  REQUIRE(up.status == 201);
  auto media = json::parse(up.body)["media"];
  CHECK(media["type"] == "image");
  CHECK(media["file_name"] == "receipt.jpg");
  CHECK(media["file_size"] == photo.size());
  CHECK(media["file_mime_type"] == "image/jpeg");
  // The file is served back by its signed URL.
  auto url = media["file_url"].get<std::string>();
  CHECK(test::http_get(s.f->port(), url.substr(url.find("/media/"))).body == photo);

  auto r = s.send(agent({{"type", "image"}, {"media_id", media["id"]}, {"caption", "Your receipt"}}));
  REQUIRE(r.status == 201);
  auto m = json::parse(r.body)["message"];
  CHECK(m["status"] == "sent");
  CHECK(m["content"] == "Your receipt");
  CHECK(m["media_status"] == "stored");
  CHECK(m["file_name"] == "receipt.jpg");
  CHECK(m["file_mime_type"] == "image/jpeg");
  CHECK(m["file_url"].get<std::string>().find("/media/chat/acme/") != std::string::npos);

  auto uploads = s.graph.uploads();
  REQUIRE(uploads.size() == 1);
  CHECK(uploads[0].phone_number_id == test::phone_id);
  CHECK(uploads[0].messaging_product == "whatsapp");
  CHECK(uploads[0].type == "image/jpeg");
  CHECK(uploads[0].content_type == "image/jpeg");
  CHECK(uploads[0].filename == "receipt.jpg");
  CHECK(uploads[0].bytes == photo);
  auto sent = s.graph.sent_messages();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0]["image"]["id"] == uploads[0].id);
  CHECK(sent[0]["image"]["caption"] == "Your receipt");
  CHECK_FALSE(sent[0]["image"].contains("link"));
  CHECK_FALSE(sent[0].contains("wachat_upload"));

  // Sent again: Meta keeps the file 30 days, so no second upload.
  REQUIRE(s.send(agent({{"type", "image"}, {"media_id", media["id"]}})).status == 201);
  CHECK(s.graph.uploads().size() == 1);
  CHECK(s.graph.sent_messages().back()["image"]["id"] == uploads[0].id);
}

TEST_CASE("an uploaded document keeps its name; a failed upload to Meta fails the send with Meta's error") {
  test::whatsapp_site s;
  const auto pdf = bytes_of(30 * 1024, 2);
  auto up = upload(s, pdf, "application/pdf", "?filename=invoice%20%2342.pdf");
  REQUIRE(up.status == 201);
  auto id = json::parse(up.body)["media"]["id"];
  auto r = s.send(agent({{"type", "document"}, {"media_id", id}}));
  REQUIRE(r.status == 201);
  CHECK(s.graph.sent_messages().back()["document"]["filename"] == "invoice #42.pdf");
  CHECK(s.graph.uploads().back().bytes == pdf);

  auto up2 = upload(s, bytes_of(1000, 3), "application/pdf");
  auto id2 = json::parse(up2.body)["media"]["id"];
  s.graph.fail_next("*/media", 1, 400, 131053, "Media upload error");
  auto failed = s.send(agent({{"type", "document"}, {"media_id", id2}, {"filename", "x.pdf"}}));
  CHECK(failed.status == 502);
  CHECK(json::parse(failed.body)["error"]["graph"]["code"] == 131053);
  CHECK(json::parse(failed.body)["message"]["status"] == "failed");
}

TEST_CASE("uploads and sends by media_id refuse what WhatsApp would not take, and other sites' files") {
  test::whatsapp_site s;
  CHECK(upload(s, "not a png", "image/png", "?type=image").status == 201);  // bytes are the sender's business
  CHECK(upload(s, "GIF89a", "image/gif", "?type=image").status == 422);
  CHECK(upload(s, "", "image/jpeg").status == 422);
  CHECK(upload(s, "{}", "application/json").status == 415);
  CHECK(upload(s, "x", "image/jpeg", "?type=video").status == 422);
  auto big = upload(s, std::string(5 * 1024 * 1024 + 1, 'x'), "image/jpeg");
  CHECK(big.status == 413);
  CHECK(json::parse(big.body)["error"]["message"].get<std::string>().find("5 MB") != std::string::npos);
  CHECK(upload(s, "x", "image/jpeg", "", "").status == 401);

  // Neither or both of url and media_id; an unknown id; a document sent as an image.
  CHECK(s.send(agent({{"type", "image"}})).status == 422);
  CHECK(s.send(agent({{"type", "image"}, {"url", "https://x.example/a.jpg"}, {"media_id", "x"}})).status == 422);
  CHECK(s.send(agent({{"type", "image"}, {"media_id", "chat/acme/nothing.jpg"}})).status == 422);
  auto doc = json::parse(upload(s, "%PDF", "application/pdf").body)["media"]["id"];
  CHECK(s.send(agent({{"type", "image"}, {"media_id", doc}})).status == 422);
  // Another site's upload is not this site's to send.
  s.f->call_json("POST", "/api/sites", {{"id", "other"}}, 201);
  auto theirs = json::parse(upload(s, "abc", "image/jpeg", "", s.f->site_token("acme")).body);
  CHECK(theirs["media"]["id"].is_string());
  test::http_client c{"127.0.0.1", s.f->port()};
  auto other_up = c.request("POST", "/api/sites/other/media", "abc",
                            {{"Authorization", "Bearer " + test::admin_token}, {"Content-Type", "image/jpeg"}});
  REQUIRE(other_up.status == 201);
  auto other_id = json::parse(other_up.body)["media"]["id"];
  CHECK(s.send(agent({{"type", "image"}, {"media_id", other_id}})).status == 422);
  CHECK(c.request("POST", "/api/sites/acme/media", "abc",
                  {{"Authorization", "Bearer " + s.f->site_token("other")}, {"Content-Type", "image/jpeg"}})
            .status == 404);
  CHECK(s.graph.uploads().empty());
  CHECK(s.graph.sent_messages().empty());
}

TEST_CASE("while an agent's file is on its way to Meta, other conversations' texts go out") {
  test::whatsapp_site s;
  // A second customer writes in: a conversation of its own.
  auto ts = static_cast<std::int64_t>(std::time(nullptr)) - 30;
  REQUIRE(s.f->post_webhook(test::text_webhook(test::phone_id, "16505550042", "wamid.IN2", ts, "me too")).status == 200);
  std::string other;
  REQUIRE(test::eventually([&] {
    other = s.scalar("SELECT coalesce(max(id)::text, '') FROM mod_chat_conversations WHERE id <> " + s.conversation);
    return !other.empty();
  }));
  auto up = upload(s, bytes_of(50 * 1024, 4), "application/pdf", "?filename=slow.pdf");
  REQUIRE(up.status == 201);
  // Meta takes 3 s to take the file.
  s.graph.script("POST", "*/media", test::scripted_response::delayed(std::chrono::milliseconds(3000)));
  std::atomic<int> file_status{0};
  std::thread file_send{[&] {
    file_status = s.send(agent({{"type", "document"}, {"media_id", json::parse(up.body)["media"]["id"]}})).status;
  }};
  REQUIRE(test::eventually([&] { return !s.graph.calls_matching("POST", "*/media").empty(); }));
  auto started = std::chrono::steady_clock::now();
  auto text = s.f->call("POST", "/api/conversations/" + other + "/messages",
                        agent({{"type", "text"}, {"text", "on its way"}}).dump());
  auto waited = std::chrono::steady_clock::now() - started;
  file_send.join();
  CHECK(text.status == 201);
  CHECK(waited < std::chrono::milliseconds(1500));  // not behind the 3 s upload
  CHECK(file_status == 201);
  auto sent = s.graph.sent_messages();
  REQUIRE(sent.size() == 2);
  CHECK(sent[0]["text"]["body"] == "on its way");
  CHECK(sent[1]["document"]["filename"] == "slow.pdf");
}

TEST_CASE("one file sent to many customers at once is uploaded to Meta by at most two uploads at a time") {
  test::whatsapp_site s;
  auto ts = static_cast<std::int64_t>(std::time(nullptr)) - 30;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(s.f->post_webhook(test::text_webhook(test::phone_id, "1650555010" + std::to_string(i),
                                                 "wamid.MANY" + std::to_string(i), ts, "hello"))
                .status == 200);
  }
  std::vector<std::string> conversations;
  REQUIRE(test::eventually([&] {
    auto n = s.scalar("SELECT count(*) FROM mod_chat_conversations");
    return n == "4";
  }));
  for (int i = 1; i <= 4; ++i) {
    conversations.push_back(s.scalar("SELECT id FROM mod_chat_conversations ORDER BY id OFFSET " + std::to_string(i - 1) + " LIMIT 1"));
  }
  auto up = upload(s, bytes_of(40 * 1024, 5), "application/pdf", "?filename=brochure.pdf");
  REQUIRE(up.status == 201);
  auto id = json::parse(up.body)["media"]["id"];
  // Meta takes a second per upload: without a bound every send would upload the file at once.
  s.graph.script("POST", "*/media", test::scripted_response::delayed(std::chrono::milliseconds(1000)), 4);
  std::vector<std::thread> agents;
  std::vector<int> statuses(conversations.size());
  for (std::size_t i = 0; i < conversations.size(); ++i) {
    agents.emplace_back([&, i] {
      statuses[i] = s.f->call("POST", "/api/conversations/" + conversations[i] + "/messages",
                              agent({{"type", "document"}, {"media_id", id}}).dump())
                        .status;
    });
  }
  for (auto& t : agents) t.join();
  CHECK(statuses == std::vector<int>(conversations.size(), 201));
  // Two ran at once; the two after them found Meta's id of the file and uploaded nothing.
  CHECK(s.graph.uploads().size() == 2);
  auto sent = s.graph.sent_messages();
  REQUIRE(sent.size() == 4);
  for (const auto& m : sent) {
    CHECK(m["document"]["filename"] == "brochure.pdf");
  }
}

TEST_CASE("a file whose upload outlasts the doubt period is still sent once, though another process sweeps the outbox") {
  // Both processes share the database and the files; the doubt period is its shortest (1 s) and
  // Meta takes 6 s to take each file: longer than the doubt period and the sweep's 3 s wait
  // before it hands an entry nobody is on to a live process. Unless the sending process keeps its
  // claim alive while the file is on its way, the other one claims the entry, uploads the file
  // again and sends it a second time.
  const auto media_dir = "/tmp/wachat-media-shared-" + std::to_string(std::random_device{}());
  const std::map<std::string, std::string> env{
      {"WACHAT_SEND_DOUBT_MS", "1000"}, {"WACHAT_SEND_WAIT_MS", "0"}, {"WACHAT_MEDIA_DIR", media_dir}};
  test::whatsapp_site s{60, env};
  auto other_env = env;
  other_env["WACHAT_GRAPH_BASE_URL"] = s.graph.base_url();
  test::wachat_fixture other{other_env, s.f->db};
  auto up = upload(s, bytes_of(40 * 1024, 9), "application/pdf", "?filename=contract.pdf");
  REQUIRE(up.status == 201);
  s.graph.script("POST", "*/media", test::scripted_response::delayed(std::chrono::milliseconds(6000)), -1);

  auto r = s.send(agent({{"type", "document"}, {"media_id", json::parse(up.body)["media"]["id"]}}));
  CHECK(r.status == 202);
  const auto message = json::parse(r.body)["message"]["id"];
  const auto id = message.is_string() ? message.get<std::string>() : message.dump();
  REQUIRE(test::eventually([&] { return !s.graph.sent_messages().empty(); }, std::chrono::seconds(20)));
  // Long enough for a second claim's upload (6 s) to end as well.
  std::this_thread::sleep_for(std::chrono::seconds(8));
  CHECK(s.graph.sent_messages().size() == 1);
  CHECK(s.graph.uploads().size() == 1);
  CHECK(s.scalar("SELECT status FROM mod_chat_messages WHERE id = " + id) == "sent");
  CHECK(s.scalar("SELECT count(*) FROM wa_outbox WHERE message_id = " + id) == "0");
  std::error_code ec;
  std::filesystem::remove_all(media_dir, ec);
}

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "infra/config.hpp"

using namespace wachat::infra;

namespace {
settings_map minimal() { return {{"WACHAT_DATABASE_URL", "postgresql://x@127.0.0.1/db"}}; }
}  // namespace

TEST_CASE("defaults follow API.md") {
  auto c = std::get<config>(build_config({}, minimal()));
  CHECK(c.listen_host == "127.0.0.1");
  CHECK(c.listen_port == 8080);
  CHECK(c.public_url == "http://127.0.0.1:8080");
  CHECK(c.webhook_max_bytes == 4194304);
  CHECK(c.send_wait_ms == 10000);
  CHECK(c.send_doubt_ms == 120000);
  CHECK(c.media_url_ttl == 86400);
  CHECK(c.graph_base_url == "https://graph.facebook.com");
  CHECK(c.graph_version == "v24.0");  // v21.0 expires in 2027
  CHECK(c.media_dir == "./var/media");
  CHECK_FALSE(c.admin_token);
  CHECK_FALSE(c.master_key);
  CHECK_FALSE(c.app_secret);
}

TEST_CASE("the environment wins over the config file") {
  settings_map file = {{"WACHAT_DATABASE_URL", "postgresql://file/db"}, {"WACHAT_LISTEN", "0.0.0.0:9000"}};
  settings_map env = {{"WACHAT_LISTEN", "127.0.0.1:9001"}};
  auto c = std::get<config>(build_config(file, env));
  CHECK(c.database_url == "postgresql://file/db");
  CHECK(c.listen_port == 9001);
}

TEST_CASE("unusable settings give one clear line") {
  CHECK(std::get<std::string>(build_config({}, {})).find("WACHAT_DATABASE_URL") != std::string::npos);
  auto bad = [](const char* k, const char* v) {
    auto s = minimal();
    s[k] = v;
    auto r = build_config({}, s);
    REQUIRE(std::holds_alternative<std::string>(r));
    auto msg = std::get<std::string>(r);
    CHECK(msg.find(k) != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);
  };
  bad("WACHAT_LISTEN", "nohostport");
  bad("WACHAT_LISTEN", "127.0.0.1:99999");
  bad("WACHAT_MASTER_KEY", "short");
  bad("WACHAT_MASTER_KEY", "!!!!");
  bad("WACHAT_WEBHOOK_MAX_BYTES", "12abc");
  bad("WACHAT_WEBHOOK_MAX_BYTES", "-1");
  bad("WACHAT_GRAPH_BASE_URL", "ftp://x");
  bad("WACHAT_ADMIN_TOKEN", "short");
}

TEST_CASE("a 32-byte base64 master key is accepted") {
  auto s = minimal();
  s["WACHAT_MASTER_KEY"] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  auto c = std::get<config>(build_config({}, s));
  REQUIRE(c.master_key);
  CHECK((*c.master_key)[0] == 0);
  CHECK((*c.master_key)[31] == 31);
}

TEST_CASE("config file lines: comments, quotes, unknown keys") {
  auto ok = parse_config_file("# comment\n\nWACHAT_LISTEN = \"127.0.0.1:1\"\nWACHAT_MEDIA_DIR=/m\n");
  auto m = std::get<settings_map>(ok);
  CHECK(m["WACHAT_LISTEN"] == "127.0.0.1:1");
  CHECK(m["WACHAT_MEDIA_DIR"] == "/m");
  CHECK(std::get<std::string>(parse_config_file("WACHAT_NOPE=1\n")).find("line 1") != std::string::npos);
  CHECK(std::get<std::string>(parse_config_file("\nJUST_TEXT\n")).find("line 2") != std::string::npos);
}

TEST_CASE("the example config file documents every known key and parses") {
  std::ifstream in{WACHAT_SOURCE_DIR "/config/wachat.example.conf"};
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  auto parsed = parse_config_file(text.str());
  REQUIRE(std::holds_alternative<settings_map>(parsed));
  for (const auto& [key, doc] : known_settings()) {
    INFO(key);
    CHECK(text.str().find(key) != std::string::npos);
  }
}

TEST_CASE("help lists every setting") {
  auto h = help_text();
  for (const auto& [key, doc] : known_settings()) {
    CHECK(h.find(key) != std::string::npos);
  }
}

#include <catch2/catch.hpp>

#include "domain/console_policy.hpp"

using namespace wachat::domain;

TEST_CASE("the origin of the public URL is scheme, host and port, lower-cased") {
  CHECK(url_origin("https://Chat.Example.com/base/path?x=1") == "https://chat.example.com");
  CHECK(url_origin("http://127.0.0.1:8080") == "http://127.0.0.1:8080");
  CHECK(url_origin("HTTP://[::1]:9000/") == "http://[::1]:9000");
  CHECK_FALSE(url_origin("ftp://example.com"));
  CHECK_FALSE(url_origin("/relative"));
  CHECK_FALSE(url_origin("https://"));
  // Nothing that could end the directive or add another one reaches the header.
  CHECK_FALSE(url_origin("https://evil.com; script-src *"));
  CHECK_FALSE(url_origin("https://user:pw@example.com"));
  CHECK_FALSE(url_origin("https://exa'mple.com"));
}

TEST_CASE("the console's policy allows its own code and the media host, nothing inline") {
  auto csp = console_csp("https://media.example.com/wachat");
  CHECK(csp.find("default-src 'none'") != std::string::npos);
  CHECK(csp.find("script-src 'self';") != std::string::npos);
  CHECK(csp.find("img-src 'self' https://media.example.com;") != std::string::npos);
  CHECK(csp.find("media-src 'self' https://media.example.com;") != std::string::npos);
  CHECK(csp.find("connect-src 'self';") != std::string::npos);
  CHECK(csp.find("frame-ancestors 'none'") != std::string::npos);
  CHECK(csp.find("unsafe") == std::string::npos);
  // An unusable public URL only drops the extra media origin.
  CHECK(console_csp("nonsense; script-src *").find("img-src 'self';") != std::string::npos);
  CHECK(console_csp("nonsense; script-src *").find('*') == std::string::npos);
}

TEST_CASE("console files are served with their type, others not at all") {
  CHECK(console_content_type("index.html") == "text/html; charset=utf-8");
  CHECK(console_content_type("app.js") == "text/javascript; charset=utf-8");
  CHECK(console_content_type("console.css") == "text/css; charset=utf-8");
  CHECK(console_content_type("icon.svg") == "image/svg+xml");
  CHECK_FALSE(console_content_type("README"));
  CHECK_FALSE(console_content_type("app.js.map"));
}
